"""A server app over a small store with users of each role, and a logged-in test client per role."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelyard as yard


def fill(n_runs: int = 6, folder: Path | None = None) -> None:
    """``n_runs`` runs in experiment ``exp`` (loss curves, params, a text, JSON, CSV and image artifact)."""
    import base64

    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
    )
    for i in range(n_runs):
        with yard.start_run(experiment="exp", name=f"run-{i}") as r:
            r.log_params({"lr": f"0.0{i % 3 + 1}", "depth": "4", "opt": "adam" if i % 2 else "sgd"})
            for s in range(40):
                r.log_metric("loss", 2.0 / (s + 1 + i), step=s)
                r.log_metric("accuracy", 1 - 1.0 / (s + 2 + i), step=s)
            r.set_tags({"team": "vision"})
            if i == 0:
                r.log_text("line one\nline two <b>not bold</b>\n", "notes.txt")
                r.log_dict({"threshold": 0.5, "classes": ["a", "b"]}, "config.json")
                r.log_text("a,b,c\n1,2,3\n4,5,6\n", "data/head.csv")
                figs = (folder or Path.cwd()) / "plots"
                figs.mkdir(exist_ok=True)
                (figs / "pixel.png").write_bytes(png)
                (figs / "readme.txt").write_text("one pixel\n")
                r.log_artifact(figs)


@pytest.fixture(scope="session")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The store every ``server`` starts from, made once per process: a user of each role with a token
    (``role -> token``) and ``fill()``'s runs. Each test gets its own copy of the folder, which costs a
    few ms where filling costs ~0.5 CPU s and 1-3 s of commits on a busy machine."""
    from modelyard import _workspace
    from modelyard._workspace import Workspace
    from modelyard.server._users import AuthService

    root = tmp_path_factory.mktemp("webui-seed")
    store = root / "store"
    mp = pytest.MonkeyPatch()
    mp.setenv("YARD_URI", str(store))
    ws = Workspace(str(store)).open()
    try:
        auth = AuthService(ws)
        tokens = {}
        for name, role in (("ann", "admin"), ("rita", "reader"), ("wes", "writer"), ("mo", "maintainer")):
            auth.add_user(name, role)
            tokens[role] = auth.create_token(name, expires=None)["token"]
        _workspace.set_uri(None)
        fill(folder=root)
    finally:
        mp.undo()
        ws.close()
        for key, cached in list(_workspace._cache.items()):  # the runs' workspace over the seed store
            cached.close()
            del _workspace._cache[key]
        _workspace.set_uri(None)
    return store, tokens


@pytest.fixture
def server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seeded_store: tuple[Path, dict[str, str]]
) -> Iterator[dict[str, Any]]:
    """A server app over a fresh copy of ``seeded_store`` (also the default store: ``YARD_URI``)."""
    import shutil

    from modelyard._workspace import Workspace
    from modelyard.server import ServerSettings, create_app

    seed, tokens = seeded_store
    store = tmp_path / "store"
    shutil.copytree(seed, store)
    monkeypatch.setenv("YARD_URI", str(store))
    ws = Workspace(str(store)).open()
    app = create_app(ServerSettings(uri=str(store)), workspace=ws)
    yield {"app": app, "tokens": dict(tokens), "ws": ws}
    ws.close()


def login(client: Any, token: str) -> Any:
    form = client.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert csrf, form.text
    return client.post(
        "/ui/login", data={"csrf": csrf.group(1), "token": token, "next": "/ui/"}, follow_redirects=False
    )


@pytest.fixture
def login_as() -> Any:
    """``login_as(client, token)``: the login form filled in and posted (the redirect not followed)."""
    return login


@pytest.fixture
def client(server: dict[str, Any]) -> Any:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    assert login(c, server["tokens"]["admin"]).status_code == 303
    return c


@pytest.fixture
def make_models(tmp_path: Path) -> Any:
    """``make_models(server)``: model ``clf`` v1 (weak: accuracy < 0.8) and v2 (good), and a gate policy
    (accuracy >= 0.8 on held data) protecting its ``production`` alias."""

    def make(server: dict[str, Any]) -> None:
        import numpy as np
        import pandas as pd
        from sklearn.linear_model import LogisticRegression

        from modelyard.evaluation import attach_policy
        from modelyard.registry import register_model

        rng = np.random.default_rng(0)
        x = rng.normal(size=(400, 2))
        df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x[:, 0] + 0.2 * x[:, 1] > 0).astype(int)})
        good = LogisticRegression().fit(df[["a", "b"]], df["y"])
        weak = LogisticRegression().fit(df[["b"]].assign(a=0.0)[["a", "b"]], df["y"])
        from modelyard.data import add

        add(df, name="clf-eval")  # the gates run in the server, which opens no file a policy names
        (tmp_path / "gates.yaml").write_text(
            "data: {dataset: clf-eval@v1, label: y}\nmetrics: {accuracy: {min: 0.8}}\n"
        )
        register_model(weak, "clf", input_example=df[["a", "b"]].head(3))
        register_model(good, "clf", input_example=df[["a", "b"]].head(3))
        attach_policy("clf", tmp_path / "gates.yaml")

    return make


class Twice:
    def predict(self, df: Any) -> Any:
        return (df["x"] * 2).to_numpy(dtype=float)


@pytest.fixture
def http_rollout(server: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Any]]:
    """Like ``rollout``, but the model server listens on loopback and the rollout drives it by URL (so
    the UI's server can move its traffic): ``(rollout id, the serving app)``."""
    from modelyard.registry import register_model, set_alias
    from modelyard.registry._signature import ColSpec, Signature
    from modelyard.rollout import RolloutService
    from modelyard.server._local import serve_in_thread
    from modelyard.serving import build_app

    monkeypatch.setenv("YARD_SERVE_ADMIN_TOKEN", "webui-test-admin")
    sig = Signature([ColSpec("x", "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            register_model(Twice(), "m", flavor="pyfunc", signature=sig)
    set_alias("m", "production", 1)
    app = build_app(
        {
            "models": {"primary": {"ref": "m/1", "warmup": 0}},
            "fallback": {"constant": -1},
            "timeout_ms": 30_000,
            "prediction_log": {"enabled": False},
            "allow_pickle": True,  # the model is a pyfunc (cloudpickle) this test wrote
        }
    )
    try:
        with serve_in_thread(app) as url:
            r = RolloutService().start("m", 2, target=url, steps=[25, 100], interval_s="1h", min_requests=5)
            yield r.id, app
    finally:
        app.close()


@pytest.fixture
def rollout(server: dict[str, Any]) -> Iterator[int]:
    from modelyard.registry import register_model, set_alias
    from modelyard.registry._signature import ColSpec, Signature
    from modelyard.rollout import RolloutService
    from modelyard.serving import build_app

    sig = Signature([ColSpec("x", "float64")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2):
            register_model(Twice(), "m", flavor="pyfunc", signature=sig)
    set_alias("m", "production", 1)
    app = build_app(
        {
            "models": {"primary": {"ref": "m/1", "warmup": 0}},
            "fallback": {"constant": -1},
            "timeout_ms": 30_000,
            "prediction_log": {"enabled": False},
            "allow_pickle": True,  # the model is a pyfunc (cloudpickle) this test wrote
        }
    )
    try:
        r = RolloutService().start("m", 2, target=app, steps=[25, 100], interval_s="1h", min_requests=5)
        yield r.id
    finally:
        app.close()


@pytest.fixture
def lineage(server: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Dataset ``churn`` v1 and v2 (CSV), run ``train`` in ``exp`` that reads churn@v2 and logs model
    ``churn-clf`` v1, and a second dataset ``raw-files`` that is not tabular."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from modelyard.data import add

    rng = np.random.default_rng(1)
    frames = []
    for i, n in enumerate((300, 400)):
        df = pd.DataFrame(
            {
                "age": rng.normal(40 + 5 * i, 10, n).round(1),
                "plan": rng.choice(["basic", "pro", "team"], n),
                "spend": rng.gamma(2.0, 30.0, n),
                "churned": rng.integers(0, 2, n),
            }
        )
        folder = tmp_path / f"churn{i}"
        folder.mkdir()
        df.to_csv(folder / "part-0.csv", index=False)
        add(folder, name="churn", description="monthly churn extract")
        frames.append(df)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "notes <b>.txt").write_text("not a table\n")
    add(raw, name="raw-files", profile=False)
    with yard.start_run(experiment="exp", name="train") as run:
        df = run.use_dataset("churn@v2")
        model = LogisticRegression().fit(df[["age", "spend"]], df["churned"])
        run.log_metric("accuracy", 0.71)
        mv = run.log_model(model, "churn-clf", input_example=df[["age", "spend"]].head(2))
    return {"run_id": run.id, "version": mv.version, "frames": frames}


@pytest.fixture
def monitored(server: dict[str, Any]) -> str:
    """Model ``churn-clf`` with three monitoring windows (the last drifted on ``age``) and a firing alert."""
    import numpy as np
    import pandas as pd

    from modelyard.monitoring._alerts import AlertRule
    from modelyard.monitoring._drift import drift
    from modelyard.monitoring._store import MonitoringService, MonitorRun, WindowValue

    ws = server["ws"]
    svc = MonitoringService(ws)
    rng = np.random.default_rng(2)
    ref = pd.DataFrame({"age": rng.normal(40, 10, 2000), "plan": rng.choice(["basic", "pro"], 2000)})
    rule = AlertRule(name="drift-high", metric="share_drifted", threshold=0.4, op=">", severity="critical")
    svc.store_rules("churn-clf", [rule], 1_000)
    t0 = 1_780_000_000_000
    for i, shift in enumerate((0.0, 1.0, 12.0)):
        cur = pd.DataFrame(
            {"age": rng.normal(40 + shift, 10, 500), "plan": rng.choice(["basic", "pro"], 500)}
        )
        report = drift(ref, cur)
        report.title = "churn-clf: last 1h vs dataset:churn@v2"
        digest = ws.blobs.put_bytes(report.to_json(indent=None).encode())
        end = t0 + i * 3_600_000
        values = [WindowValue("rows", "", 500.0), WindowValue("share_drifted", "", report.share_drifted)]
        values += [WindowValue("drift_score", c.name, c.score) for c in report.columns.values()]
        run = MonitorRun(
            "churn-clf", "1", end - 3_600_000, end, 500, "dataset:churn@v2", report.share_drifted,
            report.dataset_drift, digest,
        )  # fmt: skip
        svc.record_run(run, values)
        svc.evaluate_rules("churn-clf", [rule], {"drift-high": report.share_drifted}, end)
    return "churn-clf"


PIPELINE = """
import modelyard as yard

@yard.step
def load(n: int) -> list:
    return list(range(n))

@yard.step
def clean(rows: list) -> list:
    return [r for r in rows if r % 2 == 0]

@yard.step
def stats(rows: list) -> dict:
    return {"n": len(rows)}

@yard.step
def train(rows: list, info: dict, lr: float = 0.1) -> dict:
    return {"lr": lr, "total": sum(rows), **info}

@yard.pipeline(experiment="pipes")
def MOD(n: int = 10, lr: float = 0.1):
    rows = clean(load(n))
    return train(rows, stats(rows), lr=lr)
"""


@pytest.fixture
def pipeline_run(server: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A pipeline run twice (the second with another ``lr``: load/clean/stats cached); its run id."""
    import sys
    import uuid

    from modelyard.pipelines import load_pipeline

    name = f"webpipe_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "pipes"
    folder.mkdir()
    (folder / f"{name}.py").write_text(PIPELINE.replace("MOD", name))
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    pipe = load_pipeline(f"{folder / name}.py:{name}")
    pipe.run(executor="local")
    second = pipe.run({"lr": 0.2}, executor="local")
    return str(second.run_id)
