"""``yard quickstart``: an end-to-end demo on the embedded store, one chapter per feature.

Each chapter is a function ``(ctx) -> None`` listed in :data:`CHAPTERS`; later features add
their chapter to the table. ``ctx.state`` carries what earlier chapters made (the run id, the
model, the data) to later ones.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHAPTERS", "QuickstartContext", "run_quickstart"]


@dataclass
class QuickstartContext:
    """What a quickstart chapter works with."""

    uri: str | None
    say: Callable[[str], None]
    state: dict[str, Any] = field(default_factory=dict)
    seed: int = 7


def _make_data(seed: int, n: int = 2000) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    monthly = rng.normal(70, 20, n).round(2)
    plan = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.35, 0.15])
    support = rng.poisson(1.5, n)
    logit = -1.2 - 0.04 * tenure + 0.02 * (monthly - 70) + 0.45 * support + np.where(plan == "basic", 0.6, -0.2)
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {"tenure": tenure, "monthly_charges": monthly, "plan": plan, "support_calls": support, "churned": churned}
    )


def chapter_tracking(ctx: QuickstartContext) -> None:
    """Train a small churn model on generated data and track the run."""
    import numpy as np
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split

    import modelyard as yard

    df = _make_data(ctx.seed)
    ctx.state["data"] = df
    X = df[["tenure", "monthly_charges", "support_calls"]].to_numpy(dtype=float)
    X = np.column_stack([X, (df["plan"] == "basic").to_numpy(float), (df["plan"] == "pro").to_numpy(float)])
    y = df["churned"].to_numpy()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=ctx.seed, stratify=y)
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0) + 1e-9
    X_tr, X_te = (X_tr - mean) / std, (X_te - mean) / std
    params = {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-4, "epochs": 20}
    with yard.start_run(experiment="quickstart", name="churn-baseline", params=params, uri=ctx.uri) as run:
        clf = SGDClassifier(loss="log_loss", alpha=params["alpha"], random_state=ctx.seed)
        classes = np.unique(y_tr)
        for epoch in range(params["epochs"]):
            clf.partial_fit(X_tr, y_tr, classes=classes)
            proba = clf.predict_proba(X_te)[:, 1]
            loss = float(-np.mean(y_te * np.log(proba + 1e-12) + (1 - y_te) * np.log(1 - proba + 1e-12)))
            run.log_metric("val_loss", loss, step=epoch)
        pred = clf.predict(X_te)
        metrics = {
            "accuracy": float(accuracy_score(y_te, pred)),
            "f1": float(f1_score(y_te, pred)),
            "roc_auc": float(roc_auc_score(y_te, clf.predict_proba(X_te)[:, 1])),
        }
        run.log_metrics(metrics)
        run.set_tags({"team": "quickstart", "data": "generated"})
        run.log_dict({"columns": list(df.columns), "rows": len(df)}, "data/summary.json")
        run.log_text(df.head(50).to_csv(index=False), "data/sample.csv")
    ctx.state.update(run_id=run.id, metrics=metrics, model=clf)
    ctx.say(
        f"Tracked run [bold]{run.name}[/] ({run.id[:12]}): accuracy {metrics['accuracy']:.3f}, "
        f"f1 {metrics['f1']:.3f}, roc_auc {metrics['roc_auc']:.3f}, 20 epochs of val_loss."
    )
    ctx.say(f"  look:  yard runs show {run.id[:12]}    yard runs list -e quickstart")


def chapter_data(ctx: QuickstartContext) -> None:
    """Version the training data, link it to the run, and validate a shifted batch against it."""
    from pathlib import Path

    import numpy as np

    import modelyard as yard
    from modelyard.data import DataService

    df = ctx.state.get("data")
    if df is None:
        df = _make_data(ctx.seed)
    ds = yard.data.add(df, name="churn-train", description="generated churn data", uri=ctx.uri)
    svc = DataService(yard.get_workspace(ctx.uri))
    if ctx.state.get("run_id"):
        svc.record_input(ctx.state["run_id"], ds)  # lineage: churn-train@vN → the tracked run
    ctx.say(f"Versioned [bold]{ds.ref}[/] ({ds.rows:,} rows, digest {ds.manifest_digest[:12]}){'' if ds.created else ' (unchanged)'}.")
    ok = yard.validate(_make_data(ctx.seed + 1, 500), against=ds.ref, uri=ctx.uri)
    ctx.say(f"A fresh batch like the training data: {len(ok.results) - len(ok.failures)}/{len(ok.results)} checks pass.")
    rng = np.random.default_rng(ctx.seed)
    shifted = _make_data(ctx.seed + 2, 500)
    shifted["monthly_charges"] = shifted["monthly_charges"] + 35  # prices went up
    shifted.loc[rng.random(len(shifted)) < 0.1, "plan"] = "enterprise"  # a plan the model never saw
    report = yard.validate(shifted, against=ds.ref, uri=ctx.uri)
    root = yard.get_workspace(ctx.uri).location.root or Path.cwd()
    html = Path(root) / "quickstart-validation.html"
    html.write_text(report.to_html(), encoding="utf-8")
    ctx.state.update(dataset=ds.ref, validation=report)
    failed = ", ".join(sorted({f.name for f in report.failures}))
    ctx.say(f"A shifted batch: [red]{len(report.failures)} check(s) fail[/] ({failed}).")
    ctx.say(f"  look:  yard data show {ds.ref}    open {html}")
    ctx.say(f"  try:   yard data schema {ds.ref} > expectations.yaml && yard validate data BATCH.parquet --suite expectations.yaml")


def chapter_monitoring(ctx: QuickstartContext) -> None:
    """Drift of a shifted batch against the training data: which columns moved, and how much."""
    from pathlib import Path

    import numpy as np

    import modelyard as yard

    train = ctx.state.get("data")
    if train is None:
        train = _make_data(ctx.seed)
    live = _make_data(ctx.seed + 3, 1500)
    live["monthly_charges"] = live["monthly_charges"] * 1.25  # prices went up
    rng = np.random.default_rng(ctx.seed + 3)
    live.loc[rng.random(len(live)) < 0.15, "support_calls"] = np.nan  # a broken upstream field
    report = yard.drift(reference=train.drop(columns="churned"), current=live.drop(columns="churned"))
    ctx.say(
        f"Drift of a new batch vs the training data: [bold]{len(report.drifted_columns)}/"
        f"{len(report.evaluated_columns)}[/] columns drifted (dataset drift: {'yes' if report.dataset_drift else 'no'})."
    )
    for c in sorted(report.columns.values(), key=lambda c: -c.score):
        mark = "[red]drift[/]" if c.drifted else "ok   "
        p = "-" if c.p_value is None else f"{c.p_value:.1e}"
        why = " null share" if c.null_drift else ""
        ctx.say(f"  {mark} {c.name:<16} {c.method or '-':<13} effect {c.score:5.3f}  p {p:>7}{why}")
    root = Path(yard.get_workspace(ctx.uri).location.root or Path.cwd())
    root.mkdir(parents=True, exist_ok=True)
    html = root / "quickstart-drift.html"
    report.to_html(str(html))
    ctx.state["drift"] = report
    ctx.say(f"  look:  open {html}")
    ctx.say("  try:   yard monitor drift train.parquet batch.parquet --html drift.html")


#: The quickstart's chapters, in order. Features add theirs here.
CHAPTERS: list[tuple[str, Callable[[QuickstartContext], None]]] = [
    ("tracking", chapter_tracking),
    ("data", chapter_data),
    ("monitoring", chapter_monitoring),
]


def run_quickstart(uri: str | None = None, say: Callable[[str], None] | None = None) -> QuickstartContext:
    """Run every chapter against the store at ``uri`` (default ./.yard) and return the context."""
    from modelyard.tracking import init

    def _plain(text: str) -> None:
        import re

        print(re.sub(r"\[/?[a-z ]+\]", "", text))

    ctx = QuickstartContext(uri=uri, say=say or _plain)
    ws = init(uri)
    ctx.say(f"modelyard quickstart — store at {ws.location.root or ws.location.uri}")
    t0 = time.perf_counter()
    for name, chapter in CHAPTERS:
        ctx.say(f"\n[bold cyan]▸ {name}[/]")
        chapter(ctx)
    ctx.say(f"\nDone in {time.perf_counter() - t0:.1f}s. Everything above is stored in {ws.location.root or ws.location.uri}.")
    return ctx


if __name__ == "__main__":  # pragma: no cover
    run_quickstart(os.environ.get("YARD_URI"))
