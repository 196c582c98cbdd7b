"""Rollouts: the same state machine, leases, events and audit rows on SQLite, PostgreSQL and a
server over HTTP. The model server is driven from the test's process (a real one on loopback for
the end-to-end tests); only the state changes cross the wire, as operations of the rollout service.
On the server every event and audit row names the authenticated user ("tester")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.errors import ConflictError, NotFoundError
from modelyard.registry import audit_log, get_model
from modelyard.rollout import Controller, RolloutService, RolloutState, RolloutStateError
from modelyard.serving import build_app
from modelyard.serving._server import running
from rollout.conftest import BASE, Load, register

SRC = str(Path(__file__).resolve().parents[2] / "src")
#: Steps pass on sample counts (min_requests); the interval is only the least time a step runs.
FAST = {"interval_s": "600ms", "min_requests": 30, "tick_s": 0.05}


def _actors(svc: RolloutService, rid: int) -> set[str | None]:
    return {e.actor for e in svc.events(rid)}


def test_state_machine_and_leases(contract_uri: str) -> None:
    register(contract_uri)
    app = build_app(BASE, uri=contract_uri)
    try:
        svc = RolloutService(contract_uri)
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="1h", min_requests=5)
        assert r.state is RolloutState.PROGRESSING and r.step_index == 0 and r.target == {"local": True}
        with pytest.raises(ConflictError, match=rf"Rollout {r.id} of 'm' is still progressing"):
            svc.start("m", 3, target=app)
        first, second = (
            Controller(contract_uri, target=app, owner="a"),
            Controller(contract_uri, target=app, owner="b"),
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
        actions = [e.action for e in audit_log("m", uri=contract_uri)]
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


def test_the_controller_acts_through_the_public_service_api(contract_uri: str) -> None:
    """Leases, the stored analysis, a step's result and a pause are service methods: one
    transaction each, a change made meanwhile wins (revision), no private calls from the controller."""
    import inspect
    import re

    from modelyard.rollout import StepResult, _controller
    from modelyard.rollout._service import RevisionConflict

    register(contract_uri)
    app = build_app(BASE, uri=contract_uri)
    try:
        svc = RolloutService(contract_uri)
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
            e.action for e in audit_log("m", uri=contract_uri)
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


def test_canary_driven_by_the_controller_to_promotion(
    contract_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load on a real model server (loading its models from the same store), the controller
    walks a canary through its steps over HTTP and promotes it; the alias moved, the events and the
    audit rows record who acted."""
    monkeypatch.setenv("YARD_SERVE_ADMIN_TOKEN", "tok")
    register(contract_uri)
    app = build_app(BASE, uri=contract_uri)
    try:
        with running(app) as h:
            svc = RolloutService(contract_uri)
            with Load(h.url, clients=3) as load:
                r = svc.start("m", 2, target=h.url, steps=[50, 100], **FAST)
                assert app.spec.traffic.kind == "canary" and r.target == {"url": h.url}
                r = Controller(contract_uri, target=h.url).run(r.id, timeout=600)[0]
            assert r.state is RolloutState.PROMOTED, r.reason
            assert load.failed == [] and load.versions.get("2", 0) > 0
            assert app.spec.traffic.kind == "single" and app.deployment.primary.version == 2
        assert get_model("m", uri=contract_uri).aliases["production"] == 2
        kinds = [e.kind for e in svc.events(r.id)]
        assert kinds[0] == "start" and kinds.count("step") == 2 and kinds[-1] == "promote"
        assert svc.step_results(r.id) == {0: "successful", 1: "successful"}
        audit = audit_log("m", uri=contract_uri)
        assert {"rollout.start", "rollout.step", "rollout.promote"} <= {a.action for a in audit}
        if contract_uri.startswith("http"):  # the authenticated caller, not what the client claims
            assert _actors(svc, r.id) == {"tester"}
            assert {a.actor for a in audit if a.action.startswith("rollout.")} == {"tester"}
            assert r.created_by == "tester"
    finally:
        app.close()


def test_abort_puts_traffic_back_and_a_second_controller_waits(contract_uri: str) -> None:
    register(contract_uri)
    app = build_app(BASE, uri=contract_uri)
    try:
        svc = RolloutService(contract_uri)
        r = svc.start("m", 2, target=app, steps=[25, 100], interval_s="1h", min_requests=5)
        # two controllers (another process, another machine): the lease lets one drive
        a = Controller(contract_uri, target=app, owner="a")
        b = Controller(contract_uri, target=app, owner="b")
        assert a.tick(r.id).analysis is not None
        before = svc.get(r.id)
        assert b.tick(r.id).revision == before.revision  # b did nothing: a holds the lease
        with pytest.raises(NotFoundError, match="no rollout"):
            svc.get(r.id + 1000)
        aborted = svc.abort("m", target=app, reason="changed my mind")
        assert aborted.state is RolloutState.ABORTED and aborted.reason == "changed my mind"
        assert app.spec.traffic.kind == "single" and app.deployment.primary.version == 1
        assert svc.list_rollouts(active=True) == []
        ev = svc.events(r.id)[-1]
        assert (ev.kind, ev.detail) == ("abort", {"state": "aborted", "serving": 1})
        with pytest.raises(RolloutStateError, match="it is aborted"):
            svc.resume("m")
        if contract_uri.startswith("http"):
            assert ev.actor == "tester"
    finally:
        app.close()


def test_state_changes_check_what_they_are_sent(contract_uri: str) -> None:
    """The operations refuse what a client could send wrong: another model's rollout, an unknown
    event kind, a step out of range, a non-final state to close with."""
    from modelyard.errors import InvalidArgumentError

    register(contract_uri)
    app = build_app(BASE, uri=contract_uri)
    try:
        svc = RolloutService(contract_uri)
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="1h", min_requests=5)
        with pytest.raises(NotFoundError, match=f"no rollout {r.id} of model 'other'"):
            svc.record_event("other", r.id, "start", "x")
        with pytest.raises(InvalidArgumentError, match="'kind' parameter of record_event"):
            svc.record_event("m", r.id, "promote", "not through here")
        with pytest.raises(InvalidArgumentError, match="has steps 0 to 1; got step 5"):
            svc.record_step("m", r.id, None, 5, 0)
        with pytest.raises(InvalidArgumentError, match="'state' parameter of record_close"):
            svc.record_close("m", r.id, None, RolloutState.PAUSED, "x", "abort", "abort")
        with pytest.raises(InvalidArgumentError, match="analysis_json"):
            svc.record_analysis("m", r.id, r.revision, "[1, 2]")
        with pytest.raises(ConflictError, match="changed while this action ran"):
            svc.record_close("m", r.id, r.revision - 1, RolloutState.ABORTED, "x", "abort", "abort")
        assert svc.get(r.id).state is RolloutState.PROGRESSING
    finally:
        app.close()


def _yard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.mark.slow
def test_cli_over_a_server(server_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`yard rollout start/run/status/list/pause/resume/promote/abort` and `yard rollback` with
    YARD_URI=http://... against a real modelyard server and a real model server on loopback."""
    register(server_uri)
    monkeypatch.setenv("YARD_SERVE_ADMIN_TOKEN", "tok")
    app = build_app(BASE, uri=server_uri)
    try:
        with running(app) as h:
            env = {
                **os.environ,
                "PYTHONPATH": SRC,
                "YARD_URI": server_uri,
                "YARD_SERVE_URL": h.url,
                "YARD_SERVE_ADMIN_TOKEN": "tok",
            }
            with Load(h.url, clients=3):
                out = _yard(
                    env, "rollout", "start", "m", "--to", "2", "--steps", "50,100", "--interval", "600ms",
                    "--min-requests", "20", "--no-wait",
                )  # fmt: skip
                assert out.returncode == 0, out.stderr
                assert _yard(env, "rollout", "pause", "m", "--reason", "lunch").returncode == 0
                st = json.loads(_yard(env, "rollout", "status", "m", "--json").stdout)
                assert st["state"] == "paused" and st["events"][-1]["actor"] == "tester"
                assert _yard(env, "rollout", "resume", "m").returncode == 0
                run = _yard(env, "rollout", "run", "m")
                assert run.returncode == 0, run.stderr
            st = json.loads(_yard(env, "rollout", "status", "m", "--json").stdout)
            assert st["state"] == "promoted", st["reason"]
            assert app.deployment.primary.version == 2
            listed = _yard(env, "rollout", "list").stdout.split()
            assert listed[:5] == ["1", "m", "canary", "1→2", "promoted"]
            back = _yard(env, "rollback", "m")
            assert back.returncode == 0, back.stderr
            assert app.deployment.primary.version == 1
            assert get_model("m", uri=server_uri).aliases["production"] == 1
            # a second rollout, promoted by hand, then one aborted by hand
            out = _yard(
                env, "rollout", "start", "m", "--to", "2", "--steps", "100", "--interval", "1h", "--no-wait"
            )
            assert out.returncode == 0, out.stderr
            assert _yard(env, "rollout", "promote", "m", "--reason", "ok").returncode == 0
            assert app.deployment.primary.version == 2
            out = _yard(
                env, "rollout", "start", "m", "--to", "1", "--steps", "100", "--interval", "1h", "--no-wait"
            )
            assert out.returncode == 0, out.stderr
            ab = _yard(env, "rollout", "abort", "m", "--reason", "no")
            assert ab.returncode == 0, ab.stderr
            st = json.loads(_yard(env, "rollout", "status", "m", "--json").stdout)
            assert st["state"] == "aborted" and {e["actor"] for e in st["events"]} == {"tester"}
            assert app.deployment.primary.version == 2
    finally:
        app.close()
