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
        first, second = (
            Controller(store_uri, target=app, owner="a"),
            Controller(store_uri, target=app, owner="b"),
        )
        # one controller drives a rollout: the lease is the service's public API the controllers use
        assert svc.take_lease(r.id, first.owner, 60_000) and not svc.take_lease(r.id, second.owner, 60_000)
        first.release(r.id)
        assert svc.take_lease(r.id, second.owner, 60_000)
        second.release(r.id)
        r = first.tick(r.id)
        assert r.analysis is not None and r.analysis["step"] == 0 and r.state is RolloutState.PROGRESSING
        assert svc.pause("m", reason="lunch").state is RolloutState.PAUSED
        with pytest.raises(
            RolloutStateError,
            match=r"Cannot pause rollout \d+ of 'm' .*: it is paused \(it is paused\)\. "
            r"Only a progressing rollout pauses\.",
        ):
            svc.pause("m")
        r = svc.promote("m", target=app, reason="looks fine")
        assert r.state is RolloutState.PROMOTED and r.finished_at is not None
        with pytest.raises(
            RolloutStateError,
            match=r"Cannot abort rollout \d+ of 'm' .*: it is promoted .*Start a new rollout",
        ):
            svc.abort("m", target=app)
        r2 = svc.start("m", 3, target=app, steps=[100], interval_s="1h")  # the model is free again
        assert r2.stable_version == 2 and r2.id != r.id
        assert svc.abort("m", target=app).state is RolloutState.ABORTED
        assert [e.kind for e in svc.events(r.id)] == ["start", "step", "pause", "promote"]
        actions = [e.action for e in audit_log("m", uri=store_uri)]
        assert (
            actions.count("rollout.start") == 2
            and "rollout.promote" in actions
            and "rollout.abort" in actions
        )
        assert [x.id for x in svc.list_rollouts("m")] == [r2.id, r.id] and svc.list_rollouts(
            active=True
        ) == []
    finally:
        app.close()


def test_the_controller_acts_through_the_public_service_api(store_uri: str) -> None:
    """Leases, the stored analysis, a step's result and a pause are service methods: one
    transaction each, a change made meanwhile wins (revision), no private calls from the controller."""
    import inspect
    import re

    from modelyard.rollout import StepResult, _controller
    from modelyard.rollout._service import RevisionConflict

    register(store_uri)
    app = build_app(BASE, uri=store_uri)
    try:
        svc = RolloutService(store_uri)
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="1h", min_requests=5)
        assert svc.take_lease(r.id, "a", 60_000) and not svc.take_lease(r.id, "b", 60_000)
        svc.release_lease(r.id, "b")  # not b's lease: a keeps it
        assert not svc.take_lease(r.id, "b", 60_000)
        svc.release_lease(r.id, "a")
        assert svc.take_lease(r.id, "b", 60_000)
        svc.save_analysis(r, '{"step": 0, "reason": "first look"}')
        assert svc.get(r.id).analysis == {"step": 0, "reason": "first look"}
        svc.end_step(
            r, StepResult.INCONCLUSIVE, "step 1/2 (50%): inconclusive: too quiet", detail={"n": 3}, audit=True
        )
        assert svc.step_results(r.id) == {0: "inconclusive"}
        ev = svc.events(r.id)[-1]
        assert (ev.kind, ev.step, ev.message, ev.detail) == (
            "analysis",
            0,
            "step 1/2 (50%): inconclusive: too quiet",
            {"n": 3},
        )
        held = svc.hold(r, "inconclusive: resume by hand", check_revision=True)
        assert held.state is RolloutState.PAUSED and held.reason == "inconclusive: resume by hand"
        assert svc.events(r.id)[-1].kind == "pause" and "rollout.pause" in [
            e.action for e in audit_log("m", uri=store_uri)
        ]
        # r is stale now (held moved its revision on): a pause or an analysis based on it loses
        with pytest.raises(RevisionConflict):
            svc.hold(r, "again", check_revision=True)
        svc.save_analysis(r, '{"step": 0, "reason": "stale"}')
        assert svc.get(r.id).analysis == {"step": 0, "reason": "first look"}
        with pytest.raises(RolloutStateError, match=r"Cannot pause rollout \d+ of 'm' .*: it is paused"):
            svc.hold(held, "twice", check_revision=True)
        assert [x.id for x in svc.list_rollouts(active=True)] == [r.id] and not hasattr(svc, "list")
        assert (
            svc.promote_rollout(held, target=app, check_revision=True, reason="fine").state
            is RolloutState.PROMOTED
        )
    finally:
        app.close()
    source = inspect.getsource(_controller)
    assert not re.findall(r"\b(?:svc|service)\._\w+", source) and "lambda" not in source
    assert "rollouts.update" not in source and "store.write" not in source
