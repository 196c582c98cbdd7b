"""``yard quickstart``: an end-to-end demo on the embedded store, one chapter per feature.

Each chapter is a function ``(ctx) -> None`` listed in :data:`CHAPTERS`; later features add
their chapter to the table. ``ctx.state`` carries what earlier chapters made (the run id, the
model, the data) to later ones.

Why this module is past ~600 lines: it is one idea, the demo script a new user reads top to bottom
(`yard quickstart` prints what each chapter does), and each chapter is a short function of its own.
When a chapter grows past ~150 lines or a new feature adds one, move chapters to a
``quickstart/`` package with a module per chapter and keep :data:`CHAPTERS` as the table.
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
    logit = (
        -1.2 - 0.04 * tenure + 0.02 * (monthly - 70) + 0.45 * support + np.where(plan == "basic", 0.6, -0.2)
    )
    churned = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "tenure": tenure,
            "monthly_charges": monthly,
            "plan": plan,
            "support_calls": support,
            "churned": churned,
        }
    )


def chapter_tracking(ctx: QuickstartContext) -> None:
    """Train a small churn model on generated data and track the run."""
    import numpy as np
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    import modelyard as yard

    df = _make_data(ctx.seed)
    ctx.state["data"] = df
    features = df[["tenure", "monthly_charges", "plan", "support_calls"]]
    y = df["churned"].to_numpy()
    F_tr, F_te, y_tr, y_te = train_test_split(features, y, test_size=0.25, random_state=ctx.seed, stratify=y)
    prep = make_column_transformer(
        (StandardScaler(), ["tenure", "monthly_charges", "support_calls"]),
        (OneHotEncoder(drop="first"), ["plan"]),
    ).fit(F_tr)
    X_tr, X_te = prep.transform(F_tr), prep.transform(F_te)
    params: dict[str, Any] = {"model": "SGDClassifier", "loss": "log_loss", "alpha": 1e-4, "epochs": 20}
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
    # The model takes the raw DataFrame (named, typed columns): preprocessing + classifier.
    model = Pipeline([("prep", prep), ("clf", clf)])
    ctx.state.update(run_id=run.id, metrics=metrics, model=model, features=F_te)
    ctx.say(
        f"Tracked run [bold]{run.name}[/] ({run.id[:12]}): accuracy {metrics['accuracy']:.3f}, "
        f"f1 {metrics['f1']:.3f}, roc_auc {metrics['roc_auc']:.3f}, 20 epochs of val_loss."
    )
    ctx.say(f"  look:  yard runs show {run.id[:12]}    yard runs list -e quickstart")


def chapter_pipelines(ctx: QuickstartContext) -> None:
    """Train the churn model as a small cached pipeline; the second run is served from the cache."""
    import time

    import numpy as np
    import pandas as pd

    import modelyard as yard

    @yard.step
    def features(df: pd.DataFrame) -> pd.DataFrame:
        out = df[["tenure", "monthly_charges", "support_calls", "churned"]].astype(float)
        out["basic"] = (df["plan"] == "basic").astype(float)
        return out

    @yard.step
    def train(table: pd.DataFrame, alpha: float = 1e-4) -> dict:
        # The weights as plain data keep the demo quick; a step may return the estimator itself
        # (stored with skops), at the price of importing skops.
        from sklearn.linear_model import SGDClassifier

        X, y = table.drop(columns="churned").to_numpy(), table["churned"].to_numpy()
        mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
        clf = SGDClassifier(loss="log_loss", alpha=alpha, random_state=0).fit((X - mean) / scale, y)
        return {
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "coef": clf.coef_[0].tolist(),
            "intercept": float(clf.intercept_[0]),
        }

    @yard.step
    def evaluate(model: dict, table: pd.DataFrame) -> dict:
        X, y = table.drop(columns="churned").to_numpy(), table["churned"].to_numpy()
        z = ((X - np.array(model["mean"])) / np.array(model["scale"])) @ np.array(model["coef"]) + model[
            "intercept"
        ]
        return {"accuracy": float(np.mean((z > 0).astype(int) == y))}

    @yard.pipeline(experiment="quickstart")
    def churn_pipeline(data: str = "churn-train@latest", alpha: float = 1e-4):
        table = features(yard.pipelines.dataset(data))  # a dataset version as input: lineage + cache key
        return evaluate(train(table, alpha=alpha), table)

    ref = ctx.state.get("dataset") or yard.data.add(_make_data(ctx.seed), name="churn-train", uri=ctx.uri).ref
    t0 = time.perf_counter()
    first = churn_pipeline.run(data=ref, executor="local", uri=ctx.uri, progress=False)
    t1 = time.perf_counter()
    second = churn_pipeline.run(data=ref, executor="local", uri=ctx.uri, progress=False)
    t2 = time.perf_counter()
    ctx.state.update(pipeline_run_id=second.run_id, pipeline=churn_pipeline)
    ctx.say(
        f"Pipeline [bold]churn_pipeline[/] on {ref}: {len(first.executed)} steps ran in {t1 - t0:.2f}s "
        f"(accuracy {first.value['accuracy']:.3f}); the second run took {t2 - t1:.2f}s with "
        f"{len(second.cached)} of {len(second.steps)} steps cached."
    )
    why = {s.node: s.reason for s in churn_pipeline.status(data=ref, alpha=1e-3, uri=ctx.uri)}
    ctx.say(f"  with alpha=1e-3 only train and evaluate would rerun: train because {why['train']}")
    ctx.say(f"  look:  yard pipeline show {second.run_id[:12]}")


def chapter_registry(ctx: QuickstartContext) -> None:
    """Register the tracked model, point `production` at it, load it back and predict."""
    import modelyard as yard
    from modelyard.errors import SignatureError

    features = ctx.state["features"]
    mv = yard.registry.register_model(
        ctx.state["model"],
        "quickstart-churn",
        run_id=ctx.state["run_id"],
        input_example=features.head(5),
        model_description="Predicts which customers churn next month (quickstart demo).",
        uri=ctx.uri,
    )
    yard.registry.set_alias(
        "quickstart-churn", "production", version=mv.version, reason="quickstart: first model", uri=ctx.uri
    )
    model = yard.load_model("quickstart-churn@production", uri=ctx.uri)
    proba = model.predict_proba(features.head(3).to_dict("records"))[:, 1]
    ctx.state.update(model_name="quickstart-churn", model_version=mv.version)
    cols = ", ".join(f"{c.name}:{c.dtype}" for c in mv.signature.inputs) if mv.signature else "-"
    ctx.say(
        f"Registered [bold]quickstart-churn[/] version {mv.version} ({mv.flavor}, skops format; "
        f"signature {cols}) "
        f"and pointed [cyan]production[/] at it."
    )
    ctx.say(
        f"  loaded quickstart-churn@production, churn probability of 3 customers: "
        f"{', '.join(f'{p:.2f}' for p in proba)}"
    )
    try:
        model.predict([{"tenure": "long", "plan": "pro"}])
    except SignatureError as exc:
        ctx.say(f"  a bad input is refused with every problem at once: {'; '.join(exc.problems)}")
    # A model file that runs code when loaded (here a pickle, as an untrusted upload could be) is refused.
    from types import SimpleNamespace

    from modelyard._workspace import get_workspace
    from modelyard.errors import SerializationError
    from modelyard.registry._model import load_package, pack_model

    ws = get_workspace(ctx.uri)
    upload = pack_model(ws, SimpleNamespace(predict=lambda df: df), flavor="pyfunc")  # stored, not registered
    try:
        load_package(ws, upload.manifest_digest, label="untrusted-upload")
    except SerializationError as exc:
        ctx.say(f"  an untrusted model is refused before any of it runs: {str(exc).split(' Only if')[0]}")
    ctx.say(
        "  look:  yard models show quickstart-churn    yard models card quickstart-churn "
        "production --html card.html"
    )


def _served_model_name(ctx: QuickstartContext) -> str:
    """The model the registry chapter set to ``production`` (registered here when it has not run)."""
    from modelyard.registry import list_models

    for key in ("model_name", "registered_model"):
        name = ctx.state.get(key)
        if isinstance(name, str):
            return name
    mv = ctx.state.get("model_version")
    if mv is not None and getattr(mv, "name", None):
        return str(mv.name)
    with_prod = [m.name for m in list_models(uri=ctx.uri) if "production" in m.aliases]
    if with_prod:
        return "churn-clf" if "churn-clf" in with_prod else with_prod[0]
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from modelyard.registry import register_model, set_alias

    df = ctx.state.get("data")
    if df is None:
        df = _make_data(ctx.seed)
    X, y = df.drop(columns=["churned"]), df["churned"]
    pre = ColumnTransformer(
        [
            ("num", StandardScaler(), ["tenure", "monthly_charges", "support_calls"]),
            ("plan", OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=500)).fit(X, y)
    mv = register_model(model, "churn-clf", input_example=X.head(5), uri=ctx.uri)
    set_alias("churn-clf", "production", mv.version, uri=ctx.uri)
    return "churn-clf"


def chapter_serving(ctx: QuickstartContext) -> None:
    """Serve the production model on a free loopback port, send it requests, stop the server."""
    import httpx

    from modelyard.registry import load_model
    from modelyard.serving import build_app
    from modelyard.serving._server import running

    name = _served_model_name(ctx)
    model = load_model(f"{name}@production", ctx.uri)
    columns = model.signature.input_names if model.signature else []
    df = ctx.state.get("data")
    if df is None:
        df = _make_data(ctx.seed)
    rows = df[[c for c in columns if c in df.columns]].head(3)
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in rows.to_dict("records")
    ]
    # a generous timeout: on a busy machine the demo still shows the model answering, not the fallback
    app = build_app(
        {"models": {"primary": f"{name}@production"}, "fallback": {"constant": 0}, "timeout_ms": 30_000},
        uri=ctx.uri,
    )
    try:
        with running(app) as server:
            url = server.url
            ctx.say(f"Serving {name}/{model.version} on {url} (adaptive batching, fallback: constant 0)")
            r = httpx.post(f"{url}/v1/models/{name}/predict", json={"records": records}, timeout=30)
            body = r.json()
            ctx.say(
                f"  POST /v1/models/{name}/predict ({len(records)} rows) → {r.status_code} "
                f"version {body.get('version')}: {body.get('predictions')}"
            )
            split = {
                "dataframe_split": {
                    "columns": list(rows.columns),
                    "data": [list(rec.values()) for rec in records],
                }
            }
            r = httpx.post(f"{url}/invocations", json=split, timeout=30)
            ctx.say(
                f"  POST /invocations (MLflow dataframe_split) → {r.status_code}: "
                f"{r.json().get('predictions')}"
            )
            bad = httpx.post(
                f"{url}/v1/models/{name}/predict", json={"records": [{"tenure": "long"}]}, timeout=30
            )
            problems = bad.json().get("problems", [])
            ctx.say(f"  a bad row → {bad.status_code} with {len(problems)} problems, e.g. {problems[:1]}")
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
            served = sum(
                float(line.rsplit(" ", 1)[1])
                for line in metrics.splitlines()
                if line.startswith("yard_serving_requests_total{")
            )
            ready = httpx.get(f"{url}/health/ready", timeout=30).json()["status"]
            ctx.say(f"  /health/ready: {ready}; /metrics counted {served:.0f} requests")
        ctx.state["served"] = {"name": name, "version": model.version, "predictions": body.get("predictions")}
    finally:
        app.close()
    ctx.say(
        f"  yourself:  yard serve {name}@production --port 8080   (then curl "
        f"localhost:8080/v1/models/{name}/predict)"
    )


class _FlakyChurn:
    """A deliberately broken model version for the rollout chapter: raises on 20% of calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def predict(self, df: Any) -> Any:
        import random

        if random.random() < 0.2:
            raise RuntimeError("broken on purpose")
        return self.inner.predict(df)


#: The rollout chapter's canary: judged on sample counts (never on how fast this machine is):
#: a step passes once 50 candidate requests were answered within the limits.
ROLLOUT_OPTIONS: dict[str, Any] = dict(
    steps=[50, 100],
    interval_s="500ms",
    min_requests=50,
    max_wait_s="5m",
    max_error_rate="2%",
    max_drift=0.5,
    tick_s=0.2,
)


def _abort_leftovers(
    svc: Any,
    name: str,
    say: Callable[[str], None],
    target: Any = None,
    why: str = "left over from an interrupted run",
) -> None:
    """Abort an active rollout of ``name``: one an interrupted earlier run left (its in-process
    server died with it), or, given ``target``, this run's after an error (traffic rolls back)."""
    from modelyard.errors import NotFoundError
    from modelyard.rollout._target import TargetError

    try:
        r = svc.latest(name)
    except NotFoundError:
        return
    if r.state.finished:
        return
    try:
        svc.abort(name, target=target, reason=f"quickstart: {why}")
    except TargetError:
        pass  # recorded as aborted; the in-process server it drove ended with that run
    say(f"(aborted rollout {r.id}, {r.state.value}: {why})")


def chapter_rollout(ctx: QuickstartContext) -> None:
    """Canary a second version under live traffic (promoted automatically), then a broken one
    (rolled back automatically), printing each decision. Each step is judged on sample counts; on
    any failure the rollout is aborted and the clients and the server are stopped."""
    import threading
    import warnings

    import httpx
    from sklearn.base import clone

    from modelyard.registry import get_model, load_model, register_model
    from modelyard.rollout import Controller, RolloutService
    from modelyard.serving import build_app
    from modelyard.serving._server import running

    name = _served_model_name(ctx)
    current = load_model(f"{name}@production", ctx.uri)
    columns = current.signature.input_names if current.signature else []
    df = ctx.state.get("data")
    if df is None:
        df = _make_data(ctx.seed)
    X, y = df[columns], df["churned"]
    inner = getattr(current, "raw", None) or getattr(current, "model", None) or ctx.state.get("model")
    base = inner if inner is not None and hasattr(inner, "fit") else None
    if base is None:
        from sklearn.linear_model import LogisticRegression

        base = LogisticRegression(max_iter=500)
    retrained = clone(base)
    if "clf" in getattr(retrained, "named_steps", {}):
        from sklearn.linear_model import LogisticRegression

        # The retrain: same features, all the data, a solver that converges (the baseline ran 20 SGD epochs).
        retrained.set_params(clf=LogisticRegression(max_iter=500))
    v2 = register_model(
        retrained.fit(X, y),
        name,
        input_example=X.head(5),
        uri=ctx.uri,
        model_description="retrained (quickstart rollout chapter)",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        broken = register_model(
            _FlakyChurn(clone(base).fit(X, y)),
            name,
            flavor="pyfunc",
            input_example=X.head(5),
            uri=ctx.uri,
            model_description="broken on purpose (quickstart)",
        )
    records = [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in X.head(200).to_dict("records")
    ]
    # a generous timeout: a slow machine must not turn answers into timeouts (they count as errors)
    app = build_app(
        {
            "models": {"primary": f"{name}@production"},
            "fallback": {"constant": 0},
            "timeout_ms": 30_000,
            "prediction_log": {"enabled": False},
            "allow_pickle": True,
        },  # the broken-on-purpose version is a pyfunc we made above
        uri=ctx.uri,
    )
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"sent": 0, "failed": 0}

    def client(offset: int) -> None:
        with httpx.Client(timeout=60) as c:
            i = offset
            while not stop.is_set():
                with lock:
                    if counts["sent"] >= 20_000:
                        return
                    counts["sent"] += 1
                try:
                    ok = (
                        c.post(
                            f"{url}/v1/models/{name}/predict", json={"records": [records[i % len(records)]]}
                        ).status_code
                        == 200
                    )
                except httpx.HTTPError:
                    ok = stop.is_set()  # the server stopping under a request in flight is not a failure
                with lock:
                    counts["failed"] += not ok
                i += 7

    def say(msg: str) -> None:
        ctx.say("  " + msg)

    svc = RolloutService(ctx.uri, say=say)
    _abort_leftovers(svc, name, say)

    def drive(version: int) -> Any:
        r = svc.start(name, version, target=app, **ROLLOUT_OPTIONS)
        # The analysis waits for samples (at most max-wait per step); this bound is only a backstop.
        r = Controller(ctx.uri, target=app, say=say).run(r.id, timeout=900)[0]
        if not r.state.finished:
            from modelyard.errors import ConflictError

            raise ConflictError(f"The quickstart's rollout {r.id} stopped {r.state.value}: {r.reason}")
        return r

    threads: list[threading.Thread] = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with running(app) as server:
                url = server.url
                try:
                    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(3)]
                    for t in threads:
                        t.start()
                    ctx.say(
                        f"Serving {name}/{current.version} on {url} with 3 clients sending "
                        f"requests; canary of "
                        f"version {v2.version}, each step judged on "
                        f"{ROLLOUT_OPTIONS['min_requests']} requests:"
                    )
                    r = drive(v2.version)
                    ctx.say(f"Now a broken version {broken.version} (raises on 20% of requests):")
                    r2 = drive(broken.version)
                finally:
                    stop.set()
                    for t in threads:
                        t.join(60)
                    _abort_leftovers(svc, name, say, target=app, why="the quickstart stopped on an error")
    finally:
        stop.set()
        app.close()
    prod = get_model(name, uri=ctx.uri).aliases.get("production")
    ctx.say(
        f"  rollout {r.id}: {r.state.value}; rollout {r2.id}: {r2.state.value}; production is "
        f"version {prod}; "
        f"{counts['sent']} client requests, {counts['failed']} failed (the fallback answered the "
        f"broken ones)."
    )
    ctx.state["rollouts"] = {"promoted": r.id, "rolled_back": r2.id, "production": prod}
    ctx.say(f"  look:  yard rollout status {name}    yard models show {name}")
    ctx.say(f"  try:   yard rollout start {name} --to N --server URL --min-requests 200")


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
    ctx.say(
        f"Versioned [bold]{ds.ref}[/] ({ds.rows:,} rows, digest "
        f"{ds.manifest_digest[:12]}){'' if ds.created else ' (unchanged)'}."
    )
    ok = yard.validate(_make_data(ctx.seed + 1, 500), against=ds.ref, uri=ctx.uri)
    ctx.say(
        f"A fresh batch like the training data: "
        f"{len(ok.results) - len(ok.failures)}/{len(ok.results)} checks pass."
    )
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
    ctx.say(
        f"  try:   yard data schema {ds.ref} > expectations.yaml && yard validate data "
        f"BATCH.parquet --suite expectations.yaml"
    )


def chapter_evaluation(ctx: QuickstartContext) -> None:
    """Evaluate the production model on held-out data by slice, then guard `production` with gates."""
    from pathlib import Path

    from sklearn.dummy import DummyClassifier

    import modelyard as yard
    from modelyard.evaluation import GateFailed

    name = ctx.state.get("model_name", "quickstart-churn")
    test = _make_data(ctx.seed + 11, 1500)
    ds = yard.data.add(test, name="churn-test", description="held-out churn data", uri=ctx.uri)
    ev = yard.evaluate(f"{name}@production", ds.ref, label="churned", slices="plan", uri=ctx.uri)
    worst = min(ev.slices["plan"].items(), key=lambda kv: kv[1]["roc_auc"])
    ctx.say(
        f"Evaluated {ev.model} on [bold]{ds.ref}[/] ({ev.n_rows:,} rows): roc_auc "
        f"{ev.metrics['roc_auc']:.3f}, "
        f"f1 {ev.metrics['f1']:.3f}; weakest plan slice {worst[0]} at roc_auc {worst[1]['roc_auc']:.3f}."
    )
    root = Path(yard.get_workspace(ctx.uri).location.root or Path.cwd())
    policy = root / "quickstart-gates.yaml"
    policy.write_text(
        f"data:     {{dataset: {ds.ref}, label: churned}}\n"
        "metrics:  {roc_auc: {min: 0.65}}\n"
        "champion: {alias: production, roc_auc: {max_drop: 0.01}}\n"
        "slices:   {plan: {roc_auc: {min: 0.6}, min_rows: 100}}\n"
        # generous: a busy machine is no model regression
        "latency:  {p95_ms: {max: 1000}, batch: 1, runs: 30}\n"
        "behavior: {rows: 300, monotonic: [{column: support_calls, direction: increasing}]}\n"
    )
    report = yard.run_gates(f"{name}@production", str(policy), uri=ctx.uri)
    ctx.say(f"Gates on the production model: {report.summary()}.")
    yard.attach_policy(name, policy, uri=ctx.uri)
    features = ctx.state.get("features", test.drop(columns=["churned"]))
    lazy = DummyClassifier(strategy="prior").fit(features, test["churned"][: len(features)])
    mv = yard.registry.register_model(lazy, name, input_example=features.head(5), uri=ctx.uri)
    try:
        yard.registry.set_alias(name, "production", version=mv.version, uri=ctx.uri)
    except GateFailed as exc:
        failed = ", ".join(r.gate for r in exc.report.failed)
        ctx.say(
            f"Promoting a lazy version {mv.version} to [cyan]production[/] is [red]refused[/]: "
            f"{failed} failed."
        )
    ctx.say(
        f"  look:  yard evaluations list {name}    yard gate {name}/{mv.version} --policy {policy} "
        f"--junit gates.xml"
    )
    ctx.say(
        f"  the policy guards production now; an override needs: yard models alias {name} "
        f"production {mv.version} --force --reason ..."
    )


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
        f"{len(report.evaluated_columns)}[/] columns drifted (dataset drift: "
        f"{'yes' if report.dataset_drift else 'no'})."
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


def chapter_image(ctx: QuickstartContext) -> None:
    """Write the Dockerfile and build context of a container image for the production model (no
    container builder needed: `yard build` builds it where docker, podman or buildah runs)."""
    import shutil
    import tempfile
    from pathlib import Path

    from modelyard.deploy._build import prepare_context

    name = _served_model_name(ctx)
    root = Path(ctx.uri) if ctx.uri and "://" not in ctx.uri else Path(tempfile.mkdtemp(prefix="yard-"))
    dest = root / "image-context"
    if (dest / "Dockerfile").is_file() and "Generated by `yard build`" in (dest / "Dockerfile").read_text():
        shutil.rmtree(dest)  # ours, from an earlier run
    built = prepare_context(dest, f"{name}@production", uri=ctx.uri, fetch_wheels=False)
    text = built.dockerfile.read_text()
    model = built.models[0]
    ctx.say(
        f"Wrote {built.dockerfile} for {model.label} ({name}@production), "
        f"manifest {model.manifest_digest[:12]}…"
    )
    for prefix in ("FROM ${BASE_IMAGE} AS builder", "USER ", "HEALTHCHECK ", "ENTRYPOINT "):
        line = next((ln for ln in text.splitlines() if ln.startswith(prefix)), "")
        ctx.say(f"  {line[:100]}")
    ctx.say(
        f"  labels: io.modelyard.model.version={built.labels['io.modelyard.model.version']}, "
        f"manifest digest, modelyard {built.labels['io.modelyard.version']}"
    )
    ctx.say(
        f"  yourself:  yard build {name}@production -t churn:{model.version}   (fetches the pinned wheels, "
        "builds with docker/podman/buildah; --dockerfile-only DIR writes a buildable context)"
    )
    ctx.state["image_context"] = str(dest)


#: The quickstart's chapters, in order. Features add theirs here.
def _lazy(target: str) -> Callable[[QuickstartContext], None]:
    """A chapter that lives in its feature's package (imported when it runs)."""

    def run(ctx: QuickstartContext) -> None:
        import importlib

        module, _, attr = target.partition(":")
        getattr(importlib.import_module(module), attr)(ctx)

    return run


CHAPTERS: list[tuple[str, Callable[[QuickstartContext], None]]] = [
    ("tracking", chapter_tracking),
    ("data", chapter_data),
    ("pipelines", chapter_pipelines),
    ("registry", chapter_registry),
    ("serving", chapter_serving),
    ("image", chapter_image),
    ("rollout", chapter_rollout),
    ("evaluation", chapter_evaluation),
    ("monitoring", chapter_monitoring),
    ("team server", _lazy("modelyard.server._quickstart:chapter_server")),
    ("automation", _lazy("modelyard.automation._quickstart:chapter_automation")),
    ("web UI", _lazy("modelyard.webui._quickstart:chapter_ui")),
]


def _rerun_cleanup(ctx: QuickstartContext) -> None:
    """Make a rerun in the same folder work: the evaluation chapter of an earlier run attached a gate
    policy to the quickstart's model, which would refuse this run's first `production` (it attaches
    it again); a rollout an interrupted run left active is aborted."""
    from modelyard.errors import NotFoundError
    from modelyard.evaluation import detach_policy
    from modelyard.rollout import RolloutService

    svc = RolloutService(ctx.uri)
    for name in ("quickstart-churn", "churn-clf"):
        try:
            detached = detach_policy(name, uri=ctx.uri)
        except NotFoundError:
            continue
        if detached:
            ctx.say(
                f"(rerun: detached the gate policy an earlier run attached to {name}; the evaluation chapter "
                "attaches it again)"
            )
        _abort_leftovers(svc, name, ctx.say)


def run_quickstart(uri: str | None = None, say: Callable[[str], None] | None = None) -> QuickstartContext:
    """Run every chapter against the store at ``uri`` (default ./.yard) and return the context."""
    from modelyard.tracking import init

    def _plain(text: str) -> None:
        import re

        print(re.sub(r"\[/?[a-z ]+\]", "", text))

    ctx = QuickstartContext(uri=uri, say=say or _plain)
    ws = init(uri)
    ctx.say(f"modelyard quickstart — store at {ws.location.root or ws.location.uri}")
    _rerun_cleanup(ctx)
    t0 = time.perf_counter()
    for name, chapter in CHAPTERS:
        ctx.say(f"\n[bold cyan]▸ {name}[/]")
        chapter(ctx)
    ctx.say(
        f"\nDone in {time.perf_counter() - t0:.1f}s. Everything above is stored in "
        f"{ws.location.root or ws.location.uri}."
    )
    return ctx


if __name__ == "__main__":  # pragma: no cover
    run_quickstart(os.environ.get("YARD_URI"))
