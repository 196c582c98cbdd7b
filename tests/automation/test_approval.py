"""The approval step on an embedded store: it turns "waiting" and says what it waits for in one write
(no reader ever sees a waiting step with no message), is announced once, and goes on when approved."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .conftest import add_data, write

AUTOMATION = """
- name: retrain
  model: clf
  on:
    - schedule: "0 3 * * *"
  run: pipelines/train.py:train_pipeline
  then:
    gate: gates.yaml
    approval: release-team
"""


def test_waiting_approval_says_what_for_in_the_same_write(project: Path, tmp_path: Path) -> None:
    import sqlalchemy as sa

    from modelyard._workspace import Workspace, set_uri
    from modelyard.automation import AutomationService, Engine, apply_file
    from modelyard.automation._schema import automation_steps
    from modelyard.server._users import AuthService

    uri = str(tmp_path / "store")
    set_uri(uri)
    ws = Workspace(uri).open()
    add_data(uri)
    add_data(uri, name="test", seed=2)
    auth = AuthService(ws)
    auth.add_user("ann", "writer")
    auth.add_group_member("release-team", "ann")
    auth.grant("group:release-team", "model", "clf", "maintainer")
    apply_file(str(write(project, AUTOMATION)), uri=uri)
    svc = AutomationService(uri)
    run = svc.trigger("retrain", "test")

    # after every write of the scheduler: the steps as a reader sees them
    seen: list[list[tuple[str, str, Any]]] = []
    store = svc.store
    write_fn = store.write

    def spying(fn: Any, **kw: Any) -> Any:
        out = write_fn(fn, **kw)
        with store.read() as conn:
            rows = conn.execute(sa.select(automation_steps).order_by(automation_steps.c.idx)).all()
        seen.append([(r.kind, r.state, r.message) for r in rows])
        return out

    store.write = spying  # type: ignore[method-assign]
    said: list[str] = []
    engine = Engine(svc, say=said.append)
    try:
        engine.tick()
        engine.tick()  # still waiting: nothing said again
    finally:
        del store.write
    steps = svc.show_run(run["id"])["steps"]
    assert [(s["kind"], s["state"]) for s in steps] == [
        ("pipeline", "ok"),
        ("gate", "ok"),
        ("approval", "waiting"),
    ]
    approvals = [s for snapshot in seen for s in snapshot if s[0] == "approval"]
    assert approvals, "the spy saw no approval step"
    assert all(s[2] and "yard automate approve retrain" in s[2] for s in approvals), approvals
    assert len([m for m in said if "approval: waiting for a maintainer of 'release-team'" in m]) == 1, said

    svc.approve("retrain", run["id"], reason="looks good")
    engine.tick()
    r = svc.show_run(run["id"])
    assert r["state"] == "succeeded" and r["steps"][-1]["state"] == "ok"
    assert r["steps"][-1]["message"] == f"approved by {r['approved_by']}"
    ws.close()
