"""Rollouts end to end on a real server on loopback under bounded concurrent load: promotion with
zero failed requests, automatic rollback on errors, p99 and drift, restart of the controller, bad
input, webhooks, the audit log, and `yard rollback` with no controller and a hanging candidate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelyard.errors import ConflictError, InvalidArgumentError, NotFoundError
from modelyard.registry import audit_log, get_model
from modelyard.rollout import Controller, RolloutService, RolloutState, RolloutStateError
from modelyard.serving import build_app
from modelyard.serving._server import running
from modelyard.tracking._ids import now_ms

from .conftest import BASE, Load, fill_store

SRC = str(Path(__file__).resolve().parents[2] / "src")
#: Steps pass on sample counts (min_requests); the interval is only the least time a step runs.
FAST = {"interval_s": "600ms", "min_requests": 30, "tick_s": 0.05}
#: A bound on driving one rollout: it ends far sooner (each step waits for its samples, not a clock).
DRIVE_S = 600


class Hooks:
    """A loopback HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        bodies = self.bodies = []

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kinds(self) -> list[str]:
        return [b["modelyard"]["event"] for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def store(store_uri: str, model_store: str) -> str:
    """The rollout models in a fresh store: once on SQLite, once on PostgreSQL (rollouts, aliases
    and the audit log are written to it while the controller runs)."""
    return fill_store(store_uri, model_store)


@pytest.fixture
def served(store: str):  # type: ignore[no-untyped-def]
    app = build_app(BASE, uri=store)
    with running(app) as h:
        yield app, h.url, store
    app.close()


def _drive(app: Any, store: str, rid: int, timeout: float = DRIVE_S) -> Any:
    return Controller(store, target=app).run(rid, timeout=timeout)[0]


def test_canary_promoted_with_zero_failed_requests(served: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    app, url, store = served
    hooks = Hooks()
    monkeypatch.setenv("YARD_TEST_ROLLOUT_HOOK", hooks.url)
    svc = RolloutService(store)
    try:
        with Load(url, clients=4) as load:
            r = svc.start(
                "m",
                2,
                target=app,
                steps=[50, 75, 100],
                max_drift=0.5,
                webhooks=["env:YARD_TEST_ROLLOUT_HOOK"],
                **{**FAST, "min_requests": 60, "interval_s": "1s"},
            )
            assert app.spec.traffic.kind == "canary" and app.spec.traffic.weights == {
                "stable": 50,
                "candidate": 50,
            }
            r = _drive(app, store, r.id)
        assert r.state is RolloutState.PROMOTED, r.reason
        assert load.failed == [] and load.sent > 0
        assert load.versions.get("2", 0) > 0 and load.versions.get("1", 0) > 0
        assert app.spec.traffic.kind == "single" and app.deployment.primary.version == 2
        assert get_model("m", uri=store).aliases["production"] == 2
        kinds = [e.kind for e in svc.events(r.id)]
        assert (
            kinds[0] == "start"
            and kinds.count("step") == 3
            and kinds.count("analysis") == 3
            and kinds[-1] == "promote"
        )
        audit = [(e.action, e.reason) for e in audit_log("m", uri=store)]
        assert ("alias.set", audit[-2][1]) in audit and "analysis passed every step" in audit[-2][1]
        assert {"rollout.start", "rollout.step", "rollout.promote"} <= {a for a, _ in audit}
        assert hooks.kinds() == ["start", "step", "step", "step", "promote"]
        assert all(isinstance(b["text"], str) and b["text"] for b in hooks.bodies)  # Slack-compatible
    finally:
        hooks.close()


@pytest.mark.parametrize(
    ("version", "options", "metric"),
    [
        (3, {"max_error_rate": "2%"}, "error_rate"),  # raises on 10% of requests
        (4, {"max_p99_ms": 40}, "p99_ms"),  # sleeps 60 ms
        (5, {"max_drift": 0.5}, "drift_psi"),  # predicts 2x + 40 instead of 2x
    ],
)
def test_bad_candidate_is_rolled_back_by_the_analysis(
    served: Any, version: int, options: dict, metric: str
) -> None:
    app, url, store = served
    svc = RolloutService(store)
    with Load(url, clients=3):
        r = svc.start("m", version, target=app, steps=[50, 100], **{**FAST, **options})
        r = _drive(app, store, r.id)
    assert r.state is RolloutState.FAILED
    assert r.reason.startswith("analysis failed at step 1/2 (canary 50%): " + metric)
    assert app.spec.traffic.kind == "single" and app.deployment.primary.version == 1
    assert get_model("m", uri=store).aliases["production"] == 1
    with pytest.raises(
        RolloutStateError,
        match=r"Cannot promote rollout \d+ of 'm' .*: it is failed \(the analysis "
        r"failed it and traffic was rolled back to the stable version\)",
    ):
        svc.promote("m", target=app)
    assert app.deployment.primary.version == 1  # no change to live traffic
    assert "rollout.abort" in [e.action for e in audit_log("m", uri=store)]


def test_bad_input_is_refused_without_touching_traffic(served: Any) -> None:
    app, _, store = served
    svc = RolloutService(store)
    before = app.deployment
    with pytest.raises(
        NotFoundError, match=r"Model 'm' has no version 9; it has versions \[1, 2, 3, 4, 5, 6\]"
    ):
        svc.start("m", 9, target=app)
    with pytest.raises(NotFoundError, match=r"Model 'mm' is not registered\. Did you mean 'm'"):
        svc.start("mm", 2, target=app)
    with pytest.raises(
        InvalidArgumentError,
        match=r"max-error-rate must be a fraction from 0 to 1 .*Got 5 instead \(did you mean 5%\?\)",
    ):
        svc.start("m", 2, target=app, max_error_rate=5)
    with pytest.raises(
        InvalidArgumentError,
        match=r"max-p99-ms is in milliseconds .*Got 0.05 instead \(did you mean 50 ms\?\)",
    ):
        svc.start("m", 2, target=app, max_p99_ms=0.05)
    with pytest.raises(
        InvalidArgumentError,
        match=r"interval must be a positive duration with a unit, like 500ms, 30s, 2m or 1h\. Got '2' "
        r"instead",
    ):
        svc.start("m", 2, target=app, interval_s="2")
    with pytest.raises(InvalidArgumentError, match=r"steps must be percentages .* Got 5,50,25 instead"):
        svc.start("m", 2, target=app, steps=[5, 50, 25])
    with pytest.raises(ConflictError, match="Version 1 of 'm' is already serving all traffic"):
        svc.start("m", 1, target=app)
    assert app.deployment is before  # nothing was swapped
    r = svc.start("m", 2, target=app, steps=[10, 100], interval_s="1h", min_requests=5)
    with pytest.raises(
        ConflictError, match=rf"Rollout {r.id} of 'm' is still progressing \(step 1\); one rollout per model"
    ):
        svc.start("m", 2, target=app)
    with pytest.raises(
        RolloutStateError,
        match=rf"Cannot resume rollout {r.id} of 'm' .*: it is progressing .*Only a paused rollout resumes",
    ):
        svc.resume("m")
    assert svc.pause("m").state is RolloutState.PAUSED
    assert svc.resume("m").state is RolloutState.PROGRESSING
    r = svc.abort("m", target=app, reason="changed my mind")
    assert r.state is RolloutState.ABORTED and app.deployment.primary.version == 1
    assert [e.kind for e in svc.events(r.id)] == ["start", "step", "pause", "resume", "abort"]


def test_controller_restart_resumes_at_the_same_step(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARD_SERVE_ADMIN_TOKEN", "s3cret")
    app = build_app(BASE, uri=store)
    try:
        with running(app) as h, Load(h.url):
            svc = RolloutService(store)
            r = svc.start(
                "m",
                2,
                target=h.url,
                steps=[40, 60, 100],
                **{**FAST, "min_requests": 20, "interval_s": "700ms"},
            )
            assert r.target == {"url": h.url}
            first = Controller(store, owner="first")
            # the first controller ticks until its rollout reaches step 2, then stops (as `run` does:
            # its lease is released); no thread races a clock here
            deadline = time.monotonic() + DRIVE_S
            while first.tick(r.id).step_index < 1:
                assert time.monotonic() < deadline, "the first controller did not reach step 2"
                time.sleep(0.05)
            first.release(r.id)
            stopped = svc.get(r.id)
            assert stopped.state is RolloutState.PROGRESSING and stopped.step_index == 1
            assert stopped.step_index == 1 and app.spec.traffic.weights == {"stable": 40, "candidate": 60}
            # a new process would build the target from the stored URL; its clock is held at the step's
            # start for its first tick, so that tick cannot end the step however slow this machine is
            second = Controller(store, owner="second", clock=lambda: stopped.step_started_at)
            after = second.tick(r.id)
            assert after.step_index == 1 and after.state is RolloutState.PROGRESSING
            assert app.spec.traffic.weights == {"stable": 40, "candidate": 60}
            assert after.analysis["step"] == 1 and after.analysis["elapsed_s"] == 0
            second.service.clock = now_ms
            done = second.run(r.id, timeout=DRIVE_S)[0]
            assert done.state is RolloutState.PROMOTED, done.reason
            steps = [e.step for e in svc.events(r.id) if e.kind == "step"]
            assert steps == [0, 1, 2]  # no step was started twice
    finally:
        app.close()


def test_rollback_in_one_command_with_no_controller_and_a_hanging_candidate(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YARD_SERVE_ADMIN_TOKEN", "s3cret")
    app = build_app({**BASE, "timeout_ms": 300}, uri=store)
    try:
        with running(app) as h, Load(h.url, clients=2) as load:
            svc = RolloutService(store)
            svc.start("m", 6, target=h.url, steps=[50, 100], interval_s="1h", min_requests=5)
            assert app.spec.traffic.kind == "canary"
            env = {**os.environ, "PYTHONPATH": SRC, "YARD_URI": store, "YARD_SERVE_URL": h.url}
            out = subprocess.run(
                [sys.executable, "-m", "modelyard", "rollback", "m", "--reason", "pager"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert out.returncode == 0, out.stderr
            assert "m version 1 serves all traffic" in out.stdout
            assert app.spec.traffic.kind == "single" and app.deployment.primary.version == 1
            assert svc.latest("m").state is RolloutState.ABORTED
            load.wait_for(20)  # traffic flows on version 1
        assert (
            all(f[0] == 200 for f in load.failed) if load.failed else True
        )  # the fallback answered the hung ones
        cli = subprocess.run(
            [sys.executable, "-m", "modelyard", "rollout", "status", "m", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        body = json.loads(cli.stdout)
        assert body["state"] == "aborted" and body["events"][-1]["message"] == "pager"
        bad = subprocess.run(
            [sys.executable, "-m", "modelyard", "rollout", "promote", "m"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert bad.returncode == 1 and bad.stderr.startswith("Error: Cannot promote rollout")
    finally:
        app.close()
