"""From a notebook to a served, gated and monitored model on scikit-learn's breast-cancer data.

    python examples/breast_cancer.py [--out DIR]      # store: YARD_URI, else ./.yard

Every step uses the README's Python API: split 70/30 stratified, version the training split,
validate the test split (must pass) and a corrupted batch (must fail, naming what broke), track a
training run, register the model, evaluate and gate it, move `production` through the gates,
serve it and send real requests (JSON records, CSV, a headerless CSV, a misspelt column, class
probabilities), and check replayed traffic for drift against the training data (must be none).
It writes four HTML reports to DIR and exits 1 when a check of the walk-through fails. Rerunnable:
the second run finds the data unchanged and registers the next model version.

The same walk from the shell: `yard data add`, `yard data schema`, `yard validate data`,
`yard evaluate`, `yard gate`, `yard models alias`, `yard serve`, `yard monitor drift` (README).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

import modelyard as yard

MODEL = "breast-cancer-clf"
GATES = """\
protected: [production]
data:      {{dataset: {test}, label: target}}
metrics:   {{roc_auc: {{min: 0.95}}, f1: {{min: 0.90}}}}
champion:  {{alias: production, roc_auc: {{max_drop: 0.01}}, if_missing: pass}}
slices:    {{"mean radius:4": {{roc_auc: {{min: 0.80}}, min_rows: 30}}}}
behavior:  {{invariance: [{{column: mean symmetry, perturb: noise, max_fraction: 0.2}}]}}
"""


def corrupt(batch: pd.DataFrame) -> pd.DataFrame:
    """What a broken upstream job sends: a column of nulls, an impossible value, a renamed column."""
    bad = batch.copy()
    bad["mean texture"] = np.nan
    bad.loc[bad.index[3], "mean radius"] = 250.0   # the training data tops out near 28
    return bad.rename(columns={"worst area": "worst_area"})


async def send_requests(server: Any, X: pd.DataFrame, say: Callable[[str], None]) -> dict[str, int]:
    """The requests a client sends, over the ASGI app (README: httpx.ASGITransport)."""
    import httpx

    url = f"/v1/models/{MODEL}/predict"
    csv = {"content-type": "text/csv"}
    status: dict[str, int] = {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://yard") as client:
        calls = {
            "JSON records": client.post(url, json={"records": X.head(3).to_dict("records")}),
            "CSV with a header": client.post("/invocations", content=X.head(3).to_csv(index=False), headers=csv),
            "CSV without a header": client.post("/invocations", content=X.head(3).to_csv(index=False, header=False),
                                                headers=csv),
            "a misspelt column": client.post(url, json={"records": X.head(1).rename(
                columns={"mean radius": "mean raduis"}).to_dict("records")}),
            "class probabilities": client.post(f"{url}?proba=true", json={"records": X.head(2).to_dict("records")}),
            "a null value": client.post(url, json={"records": [{**X.iloc[0].to_dict(), "mean area": None}]}),
        }
        for what, call in calls.items():
            r = await call
            status[what] = r.status_code
            body = r.json()
            shown = body.get("predictions") if r.status_code == 200 else (body.get("problems") or [body.get("error")])
            say(f"  {what:<22} → {r.status_code}: {str(shown)[:110]}")
        # replay the test rows as live traffic, one small request at a time (as clients would)
        rows = X.to_dict("records")
        for start in range(0, len(rows), 20):
            r = await client.post(url, json={"records": rows[start:start + 20]})
            status["replay"] = max(status.get("replay", 0), r.status_code)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="breast-cancer-walk", help="Folder for the data and the HTML reports.")
    args = parser.parse_args(argv)
    out = Path(args.out)
    (out / "data").mkdir(parents=True, exist_ok=True)
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("  ok    " if ok else "  FAIL  ") + what)
        if not ok:
            problems.append(what)

    # 1. data: a stratified 70/30 split, the training split versioned
    df = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(df, test_size=0.3, stratify=df["target"], random_state=0)
    train.to_parquet(out / "data/train.parquet", index=False)
    test.to_parquet(out / "data/test.parquet", index=False)
    corrupt(test).to_parquet(out / "data/corrupt.parquet", index=False)
    ds = yard.data.add(out / "data/train.parquet", name="bc-train")
    test_ds = yard.data.add(out / "data/test.parquet", name="bc-test")
    print(f"▸ data: {ds.ref} ({ds.rows} rows{', unchanged' if not ds.created else ''}), "
          f"{test_ds.ref} ({test_ds.rows} rows)")

    # 2. validation: expectations inferred from the training version
    clean = yard.validate(out / "data/test.parquet", against=ds.ref)
    (out / "validation-test.html").write_text(clean.to_html())
    print(f"▸ validate the test split: {len(clean.failures)} failed")
    check(clean.ok, "the clean test split passes every inferred expectation (no false alarm)")
    bad = yard.validate(out / "data/corrupt.parquet", against=ds.ref)
    (out / "validation-corrupt.html").write_text(bad.to_html())
    print(f"▸ validate the corrupted batch: {len(bad.failures)} failed")
    for f in bad.failures:
        print(f"    ✗ {f.column}.{f.expectation}: {f.detail}")
    caught = {(f.column, f.expectation) for f in bad.failures}
    check(("mean texture", "max_null_fraction") in caught, "the column of nulls is caught")
    check(("mean radius", "max") in caught, "the out-of-range value is caught")
    check(("worst area", "column_present") in caught, "the renamed column is caught")

    # 3. a tracked training run that registers the model
    with yard.start_run(experiment="breast-cancer", name="random-forest",
                        params={"n_estimators": 100, "max_depth": 5}) as run:
        data = run.use_dataset(ds.ref)
        X, y = data.drop(columns="target"), data["target"]
        model = RandomForestClassifier(n_estimators=100, max_depth=5, random_state=0).fit(X, y)
        mv = run.log_model(model, name=MODEL, input_example=X.head(5))
    print(f"▸ registered {MODEL}/{mv.version} from run {run.id[:12]}")

    # 4. evaluate and gate; the policy guards `production`
    ev = yard.evaluate(f"{MODEL}/{mv.version}", test_ds.ref, label="target", slices=["mean radius:4"])
    print(f"▸ evaluate on {test_ds.ref}: " + ", ".join(f"{k} {ev.metrics[k]:.3f}" for k in ("accuracy", "f1", "roc_auc")))
    (out / "gates.yaml").write_text(GATES.format(test=test_ds.ref))
    gates = yard.run_gates(f"{MODEL}/{mv.version}", out / "gates.yaml")
    for g in gates.results:
        print(f"    {g.status.value:<6} {g.gate}: {g.explanation}")
    check(gates.passed, "the model passes its gates")
    yard.attach_policy(MODEL, out / "gates.yaml")
    yard.registry.set_alias(MODEL, "production", mv.version, reason="passes the breast-cancer gates")
    (out / "model-card.html").write_text(yard.registry.model_card(MODEL, mv.version).to_html())

    # 5. serve production and send what clients send
    print(f"▸ serve {MODEL}@production")
    server = yard.build_app({"models": {"primary": f"{MODEL}@production"}, "timeout_ms": 60_000},
                            prediction_log=False)
    try:
        status = asyncio.run(send_requests(server, test.drop(columns="target"), print))
    finally:
        server.close()
    check(status["JSON records"] == status["CSV with a header"] == status["class probabilities"] == 200,
          "records, CSV and probabilities are answered")
    check(status["CSV without a header"] == status["a misspelt column"] == status["a null value"] == 422,
          "a headerless CSV, a misspelt column and a null are refused with 422 and the reason")
    check(status["replay"] == 200, "every replayed request is answered")

    # 6. monitoring: replayed traffic (each test row seen many times) against the training data
    replayed = test.drop(columns="target").sample(n=1000, replace=True, random_state=1)
    report = yard.drift(reference=train.drop(columns="target"), current=replayed)
    report.to_html(str(out / "drift.html"))
    print(f"▸ drift of 1,000 replayed test rows vs training: {len(report.drifted_columns)} of "
          f"{len(report.columns)} columns drifted")
    check(not report.drifted_columns, "no column of replayed test traffic is called drifted (no false alarm)")
    shifted = replayed.assign(**{"mean radius": replayed["mean radius"] * 1.3})
    check("mean radius" in yard.drift(reference=train.drop(columns="target"), current=shifted).drifted_columns,
          "a 30 % shift of mean radius is called drifted")

    print(f"▸ reports: {', '.join(sorted(p.name for p in out.glob('*.html')))} in {out}")
    if problems:
        print(f"{len(problems)} check(s) of the walk-through failed: {'; '.join(problems)}")
        return 1
    print("walk-through passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
