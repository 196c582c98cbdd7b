"""Registry: log, register, alias, load and predict, audit and permissions on SQLite, PostgreSQL and a
server over HTTP (the store-level registry tests live here)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app
from modelyard.errors import ConflictError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from modelyard.registry import RegistryService


def _log(uri, model, X, name="churn-clf", **kw):  # type: ignore[no-untyped-def]
    with yard.start_run(experiment="reg", uri=uri) as run:
        run.log_metric("auc", 0.8)
        return run, run.log_model(model, name=name, input_example=X[:5], **kw)


def test_log_and_load_round_trip(contract_uri: str, churn_frame, sk_model) -> None:  # type: ignore[no-untyped-def]
    X, _ = churn_frame
    run, mv = _log(contract_uri, sk_model, X)
    assert (mv.name, mv.version, mv.flavor, mv.status) == ("churn-clf", 1, "sklearn", "ready")
    assert mv.run_id == run.id and mv.metrics == {"auc": 0.8}
    assert mv.requirements["scikit-learn"]
    assert [c.name for c in mv.signature.inputs] == ["tenure", "monthly", "calls"]
    assert [c.dtype for c in mv.signature.inputs] == ["int64", "float64", "int64"]
    for ref in ("churn-clf/1", "churn-clf@latest", "churn-clf", f"runs:/{run.id}/model"):
        m = yard.load_model(ref, uri=contract_uri)
        np.testing.assert_array_equal(m.predict(X), sk_model.predict(X))
        np.testing.assert_array_equal(m.predict_proba(X), sk_model.predict_proba(X))
    m = yard.load_model("churn-clf/1", uri=contract_uri)
    assert (m.name, m.version, m.flavor, m.run_id) == ("churn-clf", 1, "sklearn", run.id)
    # every input form gives the same predictions
    expected = sk_model.predict(X[:4])
    np.testing.assert_array_equal(m.predict(X[:4].to_dict("records")), expected)
    np.testing.assert_array_equal(m.predict(X[:4].to_dict("list")), expected)
    np.testing.assert_array_equal(m.predict(X[:4].to_numpy()), expected)
    # run artifact is recorded
    assert any(
        a.path == "model" and a.kind == "dir" for a in yard.get_run(run.id, uri=contract_uri).artifacts
    )
    assert [v.ref for v in RegistryService(contract_uri).versions_of_run(run.id)] == ["churn-clf/1"]


def test_register_alias_load_predict(contract_uri: str, churn_frame, sk_model) -> None:  # type: ignore[no-untyped-def]
    X, _ = churn_frame
    mv = yard.registry.register_model(sk_model, "churn-clf", input_example=X[:5], uri=contract_uri)
    yard.registry.set_alias("churn-clf", "production", version=mv.version, reason="first", uri=contract_uri)
    m = yard.load_model("churn-clf@production", uri=contract_uri)
    np.testing.assert_array_equal(m.predict(X[:10]), sk_model.predict(X[:10]))
    model = yard.registry.get_model("churn-clf", uri=contract_uri)
    assert (model.latest_version, model.versions, model.aliases) == (1, 1, {"production": 1})
    assert [m.name for m in yard.registry.list_models(uri=contract_uri)] == ["churn-clf"]
    updated = yard.registry.update_model(
        "churn-clf", description="churn model", tags={"team": "risk"}, reason="doc", uri=contract_uri
    )
    assert (updated.description, updated.tags) == ("churn model", {"team": "risk"})
    yard.registry.delete_alias("churn-clf", "production", reason="retire", uri=contract_uri)
    assert yard.registry.get_model("churn-clf", uri=contract_uri).aliases == {}
    with pytest.raises(NotFoundError, match="has no alias 'production'"):
        yard.registry.delete_alias("churn-clf", "production", uri=contract_uri)


def test_versions_aliases_rollback_archive_and_audit(contract_uri: str, churn_frame, sk_model) -> None:  # type: ignore[no-untyped-def]
    X, _ = churn_frame
    for _ in range(3):
        _log(contract_uri, sk_model, X)
    reg = yard.registry
    uri = contract_uri
    assert [v.version for v in reg.list_versions("churn-clf", uri=uri)] == [3, 2, 1]
    reg.set_alias("churn-clf", "production", version=1, reason="first", uri=uri)
    reg.set_alias("churn-clf", "production", version=2, reason="beats v1", uri=uri)
    assert yard.get_model_version("churn-clf@production", uri=uri).version == 2
    assert yard.get_model_version("churn-clf", "production", uri=uri).aliases == ["production"]
    assert yard.load_model("churn-clf@production", uri=uri).version == 2
    back = reg.rollback("churn-clf", "production", reason="v2 regressed", uri=uri)
    assert back.version == 1
    assert reg.get_model("churn-clf", uri=uri).aliases == {"production": 1}

    with pytest.raises(ConflictError, match=r"target of alias\(es\) \['production'\]"):
        reg.archive("churn-clf", 1, uri=uri)
    reg.archive("churn-clf", 3, reason="bad data", uri=uri)
    assert yard.get_model_version("churn-clf", 3, uri=uri).status == "archived"
    assert yard.get_model_version("churn-clf@latest", uri=uri).version == 2
    assert [v.version for v in reg.list_versions("churn-clf", include_archived=False, uri=uri)] == [2, 1]
    with pytest.raises(
        ConflictError,
        match="Version 3 of 'churn-clf' is archived; an alias can only point at a ready version",
    ):
        reg.set_alias("churn-clf", "staging", version=3, uri=uri)
    reg.restore("churn-clf", 3, uri=uri)
    reg.set_alias("churn-clf", "staging", version=3, uri=uri)

    log = reg.audit_log("churn-clf", uri=uri)
    actions = [(e.action, e.version) for e in log]
    assert actions == [
        ("model.create", None),
        ("version.register", 1),
        ("version.register", 2),
        ("version.register", 3),
        ("alias.set", 1),
        ("alias.set", 2),
        ("alias.rollback", 1),
        ("version.archive", 3),
        ("version.restore", 3),
        ("alias.set", 3),
    ]
    assert log[5].detail == {"alias": "production", "from": 1, "to": 2} and log[5].reason == "beats v1"
    assert log[6].detail == {"alias": "production", "from": 2, "to": 1} and log[6].reason == "v2 regressed"
    assert all(e.actor and e.at > 0 for e in log)
    assert [e.action for e in reg.audit_log("churn-clf", version=3, uri=uri)] == [
        "version.register",
        "version.archive",
        "version.restore",
        "alias.set",
    ]


def test_unknown_names_suggest_close_matches(contract_uri: str, churn_frame, sk_model) -> None:  # type: ignore[no-untyped-def]
    X, _ = churn_frame
    uri = contract_uri
    _log(uri, sk_model, X)
    yard.registry.set_alias("churn-clf", "production", version=1, uri=uri)
    with pytest.raises(
        NotFoundError, match=r"Model 'churn-cfl' is not registered\. Did you mean 'churn-clf'\?"
    ):
        yard.load_model("churn-cfl@production", uri=uri)
    with pytest.raises(NotFoundError, match=r"Model 'churn-clf' has no version 7; it has versions \[1\]"):
        yard.load_model("churn-clf/7", uri=uri)
    with pytest.raises(NotFoundError, match=r"has no alias 'prodution'\. Did you mean 'production'\?"):
        yard.get_model_version("churn-clf@prodution", uri=uri)
    with pytest.raises(NotFoundError, match=r"has no alias 'staging'.*nothing to roll back"):
        yard.registry.rollback("churn-clf", "staging", uri=uri)
    with pytest.raises(ConflictError, match="has pointed only at version 1; there is no earlier version"):
        yard.registry.rollback("churn-clf", "production", uri=uri)
    with pytest.raises(InvalidArgumentError, match="The alias 'latest' is reserved"):
        yard.registry.set_alias("churn-clf", "latest", version=1, uri=uri)
    with pytest.raises(InvalidArgumentError, match="The model name 'bad name' is not valid"):
        yard.load_model("bad name@production", uri=uri)
    with pytest.raises(InvalidArgumentError, match="The version in 'churn-clf/x' must be a whole number"):
        yard.load_model("churn-clf/x", uri=uri)


def test_register_refuses_a_package_not_in_the_blob_store(contract_uri: str) -> None:
    with pytest.raises(NotFoundError, match=r"its package 0+ is not in the blob store"):
        RegistryService(contract_uri).register_version(
            "ghost", flavor="sklearn", manifest_digest="0" * 64, size=1, signature=None, requirements={}
        )
    assert yard.registry.list_models(uri=contract_uri) == []


# -- yard models: the CLI on every backend -------------------------------------------------------------
@pytest.fixture
def registered(contract_uri, churn_frame, sk_model, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARD_URI", contract_uri)
    X, _ = churn_frame
    with yard.start_run(experiment="cli", params={"depth": 2}, uri=contract_uri) as run:
        for i in range(5):
            run.log_metric("val_loss", 1.0 / (i + 1), step=i)
        run.log_metric("auc", 0.81)
        run.log_model(sk_model, name="churn-clf", input_example=X[:5])
        run.log_model(sk_model, name="churn-clf", input_example=X[:5])
    yard.registry.update_model("churn-clf", description="Predicts churn <next month>", uri=contract_uri)
    return run


def test_models_cli(registered, contract_uri: str, tmp_path: Path) -> None:
    r = CliRunner()
    out = r.invoke(app, ["models", "list", "--json"])
    assert out.exit_code == 0, out.output
    (m,) = json.loads(out.output)
    assert m["name"] == "churn-clf" and m["latest_version"] == 2 and m["versions"] == 2

    out = r.invoke(app, ["models", "alias", "churn-clf", "production", "1", "--reason", "first"])
    assert out.exit_code == 0 and "churn-clf@production → version 1" in out.output
    assert r.invoke(app, ["models", "alias", "churn-clf", "production", "2", "-r", "better"]).exit_code == 0
    out = r.invoke(app, ["models", "rollback", "churn-clf", "production", "--reason", "regressed"])
    assert out.exit_code == 0 and "rolled back → version 1" in out.output
    assert r.invoke(app, ["models", "archive", "churn-clf", "2", "--reason", "bad"]).exit_code == 0

    out = r.invoke(app, ["models", "show", "churn-clf", "--json"])
    doc = json.loads(out.output)
    assert doc["aliases"] == {"production": 1}
    assert [v["status"] for v in doc["versions"]] == ["archived", "ready"]
    assert [e["action"] for e in doc["audit"]][-4:] == [
        "alias.set",
        "alias.set",
        "alias.rollback",
        "version.archive",
    ]
    assert doc["versions"][1]["metrics"]["auc"] == pytest.approx(0.81)

    out = r.invoke(app, ["models", "show", "churn-clf", "--version", "production", "--json"])
    doc = json.loads(out.output)
    assert doc["version"] == 1 and doc["aliases"] == ["production"] and doc["run_id"] == registered.id
    assert doc["signature"]["inputs"][0] == {"name": "tenure", "dtype": "int64"}

    out = r.invoke(app, ["models", "show", "churn-clf"])
    assert out.exit_code == 0 and "alias.rollback" in out.output and "regressed" in out.output
    out = r.invoke(app, ["models", "show", "churn-clf@production"])
    assert out.exit_code == 0 and "version 1" in out.output


def test_model_card_markdown_and_html(registered, contract_uri: str, tmp_path: Path) -> None:
    yard.registry.set_alias("churn-clf", "production", version=1, reason="ship it", uri=contract_uri)
    r = CliRunner()
    out = r.invoke(app, ["models", "card", "churn-clf", "production"])
    assert out.exit_code == 0, out.output
    md = out.output
    for needle in (
        "# Model card: churn-clf version 1",
        "Predicts churn <next month>",
        "| tenure | int64 |",
        "**experiment**: cli",
        "| depth | 2 |",
        "| auc | 0.81 |",
        "scikit-learn==",
        "ship it",
        "alias.set",
    ):
        assert needle in md, needle
    dest = tmp_path / "card.html"
    out = r.invoke(app, ["models", "card", "churn-clf", "1", "--html", str(dest)])
    assert out.exit_code == 0, out.output
    page = dest.read_text()
    assert (
        page.startswith("<!doctype html>")
        and "<script" not in page
        and "http" not in page.split("</style>")[0]
    )
    assert page.count("<svg") == 2  # the metric bars, and val_loss over steps (auc has one point: no line)
    assert "Predicts churn &lt;next month&gt;" in page and "val_loss over steps" in page


# -- on the server: who did it, and who may move a protected alias ------------------------------------
def _as_user(server_uri: str, tmp_path: Path, name: str, role: str, grants: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """A workspace on the server acting as a new user ``name`` (global ``role``, model grants)."""
    from modelyard._workspace import Workspace
    from modelyard.server._users import AuthService

    admin_ws = Workspace(str(tmp_path / "server-store")).open()  # the server's own store (conftest)
    try:
        auth = AuthService(admin_ws)
        auth.add_user(name, role)
        for model, granted in (grants or {}).items():
            auth.grant(name, "model", model, granted)
        token = auth.create_token(name, expires=None)["token"]
    finally:
        admin_ws.close()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("YARD_TOKEN", token)
        return Workspace(server_uri).open()  # its client keeps this user's token


def _protect(uri: str, tmp_path: Path, X: pd.DataFrame, y: np.ndarray) -> None:
    from modelyard.data import add
    from modelyard.evaluation import attach_policy

    add(X.assign(churned=y), name="churn-eval", uri=uri)  # the server reads no client's file: a dataset
    (tmp_path / "gates.yaml").write_text(
        "protected: [production]\ndata: {dataset: churn-eval@v1, label: churned}\n"
        "metrics: {roc_auc: {min: 0.6}}\n"
    )
    attach_policy("churn-clf", tmp_path / "gates.yaml", uri=uri)


def test_audit_log_names_the_authenticated_user(
    server_uri: str, tmp_path: Path, churn_frame, sk_model
) -> None:  # type: ignore[no-untyped-def]
    X, _ = churn_frame
    _log(server_uri, sk_model, X)
    yard.registry.set_alias("churn-clf", "staging", version=1, uri=server_uri)
    writer = _as_user(server_uri, tmp_path, "wendy", "writer")
    try:
        yard.registry.register_model(sk_model, "churn-clf", input_example=X[:5], uri=writer)
        yard.registry.set_alias("churn-clf", "staging", version=2, reason="try v2", uri=writer)
    finally:
        writer.close()
    log = yard.registry.audit_log("churn-clf", uri=server_uri)
    assert [(e.action, e.actor) for e in log] == [
        ("model.create", "tester"),
        ("version.register", "tester"),
        ("alias.set", "tester"),
        ("version.register", "wendy"),
        ("alias.set", "wendy"),
    ]
    assert yard.get_model_version("churn-clf", 2, uri=server_uri).created_by == "wendy"


def test_protected_alias_needs_maintainer_on_the_model(
    server_uri: str, tmp_path: Path, churn_frame, sk_model
) -> None:  # type: ignore[no-untyped-def]
    X, y = churn_frame
    for _ in range(2):
        _log(server_uri, sk_model, X)
    _protect(server_uri, tmp_path, X, y)
    yard.registry.set_alias("churn-clf", "production", version=1, uri=server_uri)  # tester is an admin

    writer = _as_user(server_uri, tmp_path, "wendy", "writer")
    try:
        yard.registry.set_alias("churn-clf", "staging", version=2, uri=writer)  # not protected
        need = r"wendy has role 'writer' on model 'churn-clf'; {} protected alias 'production' needs role "
        with pytest.raises(PermissionDeniedError, match=need.format("moving")):
            yard.registry.set_alias("churn-clf", "production", version=2, uri=writer)
        with pytest.raises(PermissionDeniedError, match=need.format("rolling back")):
            yard.registry.rollback("churn-clf", "production", uri=writer)
        with pytest.raises(PermissionDeniedError, match=need.format("deleting")):
            yard.registry.delete_alias("churn-clf", "production", uri=writer)
        from modelyard.evaluation import detach_policy

        with pytest.raises(PermissionDeniedError, match=r"evaluation\.detach_policy needs role 'maintainer'"):
            detach_policy("churn-clf", uri=writer)
    finally:
        writer.close()
    assert yard.get_model_version("churn-clf@production", uri=server_uri).version == 1

    maintainer = _as_user(server_uri, tmp_path, "mia", "writer", {"churn-clf": "maintainer"})
    try:
        mv = yard.registry.set_alias("churn-clf", "production", version=2, reason="v2", uri=maintainer)
        assert mv.aliases == ["production", "staging"]
        assert yard.registry.rollback("churn-clf", "production", uri=maintainer).version == 1
    finally:
        maintainer.close()
    log = yard.registry.audit_log("churn-clf", uri=server_uri)
    moved = [(e.action, e.actor, e.version) for e in log if e.detail.get("alias") == "production"]
    assert moved == [("alias.set", "tester", 1), ("alias.set", "mia", 2), ("alias.rollback", "mia", 1)]
    # the gates ran on the server for each move and their checks name who moved the alias
    assert log[-2].detail["gates"]["passed"] is True
    from modelyard.evaluation import EvaluationService

    checks = EvaluationService(server_uri).list_gate_checks("churn-clf")
    assert [(c["user"], c["model_version"], c["trigger"]) for c in checks] == [
        ("mia", 2, "promotion"),
        ("tester", 1, "promotion"),
    ]


def test_gates_that_unpickle_on_the_server_need_an_admin(
    server_uri: str, tmp_path: Path, churn_frame, sk_model
) -> None:  # type: ignore[no-untyped-def]
    """An attached policy with allow_pickle makes the server unpickle whatever a writer registered:
    only an admin may move an alias under it there."""
    from modelyard.evaluation import attach_policy

    X, y = churn_frame
    _log(server_uri, sk_model, X)
    from modelyard.data import add

    add(X.assign(churned=y), name="churn-eval", uri=server_uri)  # the server opens no client's file
    (tmp_path / "gates.yaml").write_text(
        "allow_pickle: true\ndata: {dataset: churn-eval@v1, label: churned}\nmetrics: {roc_auc: {min: 0.6}}\n"
    )
    attach_policy("churn-clf", tmp_path / "gates.yaml", uri=server_uri)
    maintainer = _as_user(server_uri, tmp_path, "mia", "writer", {"churn-clf": "maintainer"})
    try:
        with pytest.raises(
            PermissionDeniedError, match=r"allow_pickle in churn-clf's policy\) needs role 'admin'"
        ):
            yard.registry.set_alias("churn-clf", "production", version=1, uri=maintainer)
    finally:
        maintainer.close()
    assert yard.registry.get_model("churn-clf", uri=server_uri).aliases == {}
    yard.registry.set_alias("churn-clf", "production", version=1, uri=server_uri)  # tester is an admin
    assert yard.registry.get_model("churn-clf", uri=server_uri).aliases == {"production": 1}


# -- serving a model from a remote store -------------------------------------------------------------
def _call(app, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
    import asyncio

    import httpx

    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def test_model_server_loads_from_the_store_and_logs_predictions(
    contract_uri: str, churn_frame, sk_model
) -> None:  # type: ignore[no-untyped-def]
    from modelyard.serving import ModelServer, read_prediction_log

    X, _ = churn_frame
    mv = yard.registry.register_model(sk_model, "churn-clf", input_example=X[:5], uri=contract_uri)
    yard.registry.set_alias("churn-clf", "production", version=mv.version, uri=contract_uri)
    server = ModelServer({"models": {"primary": "churn-clf@production"}}, uri=contract_uri).start()
    rows = X[:6].to_dict("records")
    try:
        r = _call(server, "POST", "/v1/models/churn-clf/predict", json={"records": rows})
        assert r.status_code == 200, r.text
        body = r.json()
    finally:
        server.close()  # flushes the prediction log
    assert body["version"] == 1 and body["fallback"] is False
    assert body["predictions"] == sk_model.predict(X[:6]).tolist()
    df = read_prediction_log(contract_uri, "churn-clf", model_version=1)
    mine = df[df["request_id"] == body["request_id"]]
    assert mine["input.tenure"].tolist() == X["tenure"][:6].tolist()
    assert mine["output"].tolist() == body["predictions"]


@pytest.mark.slow
def test_yard_serve_loads_a_model_from_a_server(server_uri: str, churn_frame, sk_model) -> None:  # type: ignore[no-untyped-def]
    """`yard serve churn-clf@production --uri http://...` in its own process answers real predictions."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    X, _ = churn_frame
    mv = yard.registry.register_model(sk_model, "churn-clf", input_example=X[:5], uri=server_uri)
    yard.registry.set_alias("churn-clf", "production", version=mv.version, uri=server_uri)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = Path(yard.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(src), "YARD_URI": "/nonexistent-must-not-be-used"}
    args = ["serve", "churn-clf@production", "--uri", server_uri, "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            try:
                if httpx.get(f"{url}/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "yard serve did not become ready"
            time.sleep(0.2)
        r = httpx.post(
            f"{url}/v1/models/churn-clf/predict", json={"records": X[:8].to_dict("records")}, timeout=30
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == sk_model.predict(X[:8]).tolist()
        assert r.headers["x-model-version"] == "1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
