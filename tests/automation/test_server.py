"""Automations through a real ``yard server``: the CLI's calls over HTTP, the scheduler inside the
server running a triggered run, the webhook secret, and who may approve."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import add_data, write

AUTOMATION = """
- name: retrain
  model: clf
  on:
    - webhook: env:RETRAIN_SECRET
  run: pipelines/train.py:train_pipeline
  then:
    gate: gates.yaml
    approval: release-team
"""


@pytest.fixture
def server_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real server on loopback (its store at tmp_path/server-store, YARD_TOKEN an admin's) with
    its startup and shutdown handlers run, as `yard server` runs them: the scheduler included."""
    import threading

    from modelyard import _workspace
    from modelyard.server import ServerSettings, create_app
    from modelyard.server._users import AuthService
    from yard_server_harness import running_server

    monkeypatch.setenv("YARD_AUTOMATE_INTERVAL", "0.2")
    monkeypatch.setenv("RETRAIN_SECRET", "s3cret-value")
    ws = _workspace.Workspace(str(tmp_path / "server-store")).open()
    auth = AuthService(ws)
    auth.add_user("tester", "admin")
    monkeypatch.setenv("YARD_TOKEN", auth.create_token("tester", expires=None)["token"])
    app = create_app(ServerSettings(uri=str(tmp_path / "server-store")), workspace=ws)
    with running_server(app) as url:
        for handler in app.router.on_startup:
            handler()
        assert any(t.name == "yard-automate" for t in threading.enumerate())
        try:
            yield url
        finally:
            for handler in app.router.on_shutdown:
                handler()
    assert not any(t.name == "yard-automate" for t in threading.enumerate())
    for cached in list(_workspace._cache.values()):
        cached.close()
    _workspace._cache.clear()
    ws.close()


def _wait(svc: object, name: str, run_id: int, until: set[tuple[str, str]], timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = svc.show_run(run_id)  # type: ignore[attr-defined]
        last = (r["steps"][-1]["kind"], r["steps"][-1]["state"]) if r["steps"] else ("", "")
        if r["state"] in ("succeeded", "failed") or last in until:
            return r
        assert time.monotonic() < deadline, f"run {run_id} is still {r['state']} at {last}"
        time.sleep(0.1)


def test_webhook_trigger_approval_and_scheduler_in_the_server(
    server_uri: str, project: Path, tmp_path: Path
) -> None:
    from modelyard.automation import AutomationService, apply_file
    from modelyard.errors import PermissionDeniedError
    from modelyard.server._users import AuthService

    store = str(tmp_path / "server-store")
    add_data(store)
    add_data(store, name="test", seed=2)
    auth = AuthService(store)
    auth.add_user("ann", "writer")
    auth.add_user("rob", "reader")
    auth.add_group_member("release-team", "ann")
    auth.grant("group:release-team", "model", "clf", "maintainer")
    assert apply_file(str(write(project, AUTOMATION)), uri=server_uri) == [
        {"name": "retrain", "created": True}
    ]
    svc = AutomationService(server_uri)
    assert [a["name"] for a in svc.list_automations()] == ["retrain"]
    with pytest.raises(PermissionDeniedError, match="webhook secret"):
        svc.webhook("retrain", "wrong")
    run = svc.webhook("retrain", "s3cret-value", "labels landed")
    assert run["trigger"] == "webhook" and run["state"] == "queued"
    r = _wait(svc, "retrain", run["id"], {("approval", "waiting")})
    assert [(s["kind"], s["state"]) for s in r["steps"]] == [
        ("pipeline", "ok"),
        ("gate", "ok"),
        ("approval", "waiting"),
    ]
    assert "yard automate approve retrain" in r["steps"][-1]["message"]
    # rob is a reader: refused (403, naming the role); ann is a maintainer of clf via her group
    rob = auth.create_token("rob", expires=None)["token"]
    res = httpx.post(
        f"{server_uri}/api/v1/automation/approve",
        json={"name": "retrain", "run_id": run["id"]},
        headers={"Authorization": f"Bearer {rob}"},
    )
    assert (
        res.status_code == 403 and "needs role 'maintainer' on model 'clf'" in res.json()["error"]["message"]
    )
    ann = auth.create_token("ann", expires=None)["token"]
    res = httpx.post(
        f"{server_uri}/api/v1/automation/approve",
        json={"name": "retrain", "run_id": run["id"], "reason": "looks good"},
        headers={"Authorization": f"Bearer {ann}"},
    )
    assert res.status_code == 200, res.text
    assert res.json()["result"]["approved_by"] == "ann"
    r = _wait(svc, "retrain", run["id"], set())
    assert r["state"] == "succeeded", r
    assert any(e["kind"] == "approved" and e["actor"] == "ann" for e in r["events"])
    # a bad request is a 4xx, never a 500
    res = httpx.post(f"{server_uri}/api/v1/automation/history", json={"name": "retrain", "limit": 0})
    assert res.status_code in (400, 401, 422)
