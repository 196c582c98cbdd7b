"""The rollout state machine in the store, on SQLite and on the real PostgreSQL: one live rollout
per model (a unique constraint), checked transitions, leases, events and the audit log."""

from __future__ import annotations

import pytest

from modelyard.errors import ConflictError
from modelyard.registry import audit_log
from modelyard.rollout import Controller, RolloutService, RolloutState, RolloutStateError
from modelyard.serving import build_app

from .conftest import BASE, register


def test_state_machine_and_leases(store_uri: str) -> None:
    register(store_uri)
    app = build_app(BASE, uri=store_uri)
    try:
        svc = RolloutService(store_uri)
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="1h", min_requests=5)
        assert r.state is RolloutState.PROGRESSING and r.step_index == 0 and r.target == {"local": True}
        with pytest.raises(ConflictError, match=rf"Rollout {r.id} of 'm' is still progressing"):
            svc.start("m", 3, target=app)
        first, second = Controller(store_uri, target=app, owner="a"), Controller(store_uri, target=app, owner="b")
        assert first._lease(r.id) and not second._lease(r.id)  # one controller drives a rollout
        first.release(r.id)
        assert second._lease(r.id)
        second.release(r.id)
        r = first.tick(r.id)
        assert r.analysis is not None and r.analysis["step"] == 0 and r.state is RolloutState.PROGRESSING
        assert svc.pause("m", reason="lunch").state is RolloutState.PAUSED
        with pytest.raises(RolloutStateError, match=r"Cannot pause rollout \d+ of 'm' .*: it is paused \(it is paused\)\. "
                                                    r"Only a progressing rollout pauses\."):
            svc.pause("m")
        r = svc.promote("m", target=app, reason="looks fine")
        assert r.state is RolloutState.PROMOTED and r.finished_at is not None
        with pytest.raises(RolloutStateError, match=r"Cannot abort rollout \d+ of 'm' .*: it is promoted .*Start a new rollout"):
            svc.abort("m", target=app)
        r2 = svc.start("m", 3, target=app, steps=[100], interval_s="1h")  # the model is free again
        assert r2.stable_version == 2 and r2.id != r.id
        assert svc.abort("m", target=app).state is RolloutState.ABORTED
        assert [e.kind for e in svc.events(r.id)] == ["start", "step", "pause", "promote"]
        actions = [e.action for e in audit_log("m", uri=store_uri)]
        assert actions.count("rollout.start") == 2 and "rollout.promote" in actions and "rollout.abort" in actions
        assert [x.id for x in svc.list("m")] == [r2.id, r.id] and svc.list(active=True) == []
    finally:
        app.close()
