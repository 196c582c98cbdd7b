"""``yard serve --workers 2``: ``PUT /admin/spec`` answers once every worker serves the new spec;
the swap is counted once; the board that tracks the workers' applied specs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.serving._server import free_port
from modelyard.serving._workers import WorkerBoard

ROW = {"x": 0.5, "y": -0.2, "z": 1.0}


def wait_for(cond: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = cond()
        except httpx.HTTPError:
            got = None
        if got:
            return got
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.1)


def serve_two_workers(spec: Path, store: str, port: int) -> subprocess.Popen[str]:
    """``yard serve --spec spec --workers 2`` on ``port`` (admin token ``s3cret``)."""
    env = {**os.environ, "YARD_SERVE_ADMIN_TOKEN": "s3cret", "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelyard",
            "serve",
            "--spec",
            str(spec),
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        env={**env, "YARD_URI": store},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:  # pragma: no cover
        proc.kill()
        proc.wait(10)


AUTH = {"authorization": "Bearer s3cret"}


def worker_pids(url: str) -> set[int]:
    return {
        w["pid"] for w in httpx.get(url + "/admin/spec", headers=AUTH, timeout=10).json().get("workers", [])
    }


@pytest.mark.slow
def test_two_workers_answer_the_new_version_right_after_the_ack(served_store, tmp_path, metric) -> None:
    from modelyard.rollout._target import HttpTarget

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spec = tmp_path / "serve.yaml"
    spec.write_text("models: {primary: clf/1}\nprediction_log: {enabled: false}\n")
    proc = serve_two_workers(spec, served_store, port)
    auth = AUTH
    try:
        # both workers up: each reported the spec it applied
        def workers() -> int:
            return len(httpx.get(url + "/admin/spec", headers=auth, timeout=10).json().get("workers", []))

        wait_for(lambda: workers() == 2, "two workers reporting")
        target = HttpTarget(url, "s3cret")
        for version in (2, 1, 2):
            target.apply({"models": {"primary": f"clf/{version}"}, "prediction_log": {"enabled": False}})
            answers = set()
            for _ in range(40):  # a new connection each: the kernel spreads them over both workers
                with httpx.Client(timeout=30) as c:
                    answers.add(
                        c.post(url + "/v1/models/clf/predict", json={"records": [ROW]}).json()["version"]
                    )
                    got = c.get(url + "/admin/spec", headers=auth).json()
                    assert got["spec"]["models"]["primary"]["ref"] == f"clf/{version}"
                    assert {w["digest"] for w in got["workers"]} == {got["digest"]}
            assert answers == {version}
        assert target.spec()["models"]["primary"]["ref"] == "clf/2"
        # three admin swaps counted three times (not once per worker); the initial loads apart
        assert metric(url, "yard_serving_spec_swaps_total", reason="admin", outcome="ok") == 3
        assert metric(url, "yard_serving_spec_swaps_total", reason="initial", outcome="ok") == 2
        assert metric(url, "yard_serving_spec_swaps_total", reason="file") == 0
        # a spec no worker can load: 422 from the worker that took it, nothing changes
        r = httpx.put(url + "/admin/spec", content="models: {primary: nope/1}", headers=auth, timeout=60)
        assert r.status_code == 422 and r.json()["code"] == "swap_failed"
        assert metric(url, "yard_serving_spec_swaps_total", reason="admin", outcome="failed") == 1
        # an edit of the spec file by someone else: every worker follows, counted once
        spec.write_text("models: {primary: clf/1}\nprediction_log: {enabled: false}\n")
        wait_for(lambda: metric(url, "yard_serving_spec_swaps_total", reason="file", outcome="ok") == 1,
                 "the file edit counted")  # fmt: skip
        digest = httpx.get(url + "/admin/spec", headers=auth, timeout=10).json()["digest"]
        wait_for(lambda: {w["digest"] for w in httpx.get(url + "/admin/spec", headers=auth, timeout=10)
                          .json()["workers"]} == {digest}, "both workers on the edited file")  # fmt: skip
        assert metric(url, "yard_serving_spec_swaps_total", reason="file", outcome="ok") == 1
    finally:
        stop(proc)


@pytest.mark.slow
def test_a_killed_worker_leaves_no_live_gauge_behind(served_store, tmp_path, metric) -> None:
    """A worker killed mid-request cannot mark itself dead: the supervisor does, when it replaces
    it, so the request it held no longer counts in ``yard_serving_in_flight_requests``."""
    import threading

    from modelyard.registry import register_model
    from modelyard.registry._signature import ColSpec, Signature

    class Sleeper:  # defined here: pickled by value, loaded by the workers
        def predict(self, df: Any) -> Any:
            import time

            if (df["x"] > 100).any():
                time.sleep(300)
            return (df["x"] * 2).to_numpy(dtype=float)

    sig = Signature([ColSpec(c, "float64") for c in ROW])
    register_model(Sleeper(), "sleeper", flavor="pyfunc", signature=sig, uri=served_store)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    spec = tmp_path / "serve.yaml"
    spec.write_text("models: {primary: sleeper/1}\nallow_pickle: true\nprediction_log: {enabled: false}\n")
    proc = serve_two_workers(spec, served_store, port)
    try:
        wait_for(lambda: len(worker_pids(url)) == 2, "two workers reporting")
        first = worker_pids(url)

        def held() -> None:  # answered by no one: its worker is killed
            try:
                httpx.post(
                    url + "/v1/models/sleeper/predict", json={"records": [{**ROW, "x": 500.0}]}, timeout=600
                )
            except httpx.HTTPError:
                pass

        threading.Thread(target=held, daemon=True).start()
        wait_for(lambda: metric(url, "yard_serving_in_flight_requests") == 1, "the request in flight")
        for pid in first:  # the one holding it among them
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: len(worker_pids(url)) == 2 and not worker_pids(url) & first, "two new workers")
        wait_for(
            lambda: metric(url, "yard_serving_in_flight_requests") == 0, "the killed worker's gauge gone"
        )
        fast = httpx.post(url + "/v1/models/sleeper/predict", json={"records": [ROW]}, timeout=60)
        assert fast.status_code == 200 and fast.json()["predictions"] == [1.0]
        assert metric(url, "yard_serving_in_flight_requests") == 0
    finally:
        stop(proc)


def test_the_board_waits_for_every_live_worker(tmp_path: Path) -> None:
    def child() -> subprocess.Popen[str]:  # a worker stand-in: runs until its stdin closes
        return subprocess.Popen(
            [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE, text=True
        )

    ticks = iter(range(1000))

    def clock() -> float:  # one tick per look: no wall clock
        return float(next(ticks))

    def wait(board: WorkerBoard, digest: str, current: str) -> Any:
        return board.wait(digest, lambda: current, timeout_s=3, clock=clock, sleep=lambda s: None)

    a, b = child(), child()
    me = WorkerBoard(tmp_path, expected=2, pid=a.pid, parent=os.getpid())
    other = WorkerBoard(tmp_path, expected=2, pid=b.pid, parent=os.getpid())
    try:
        me.report("d2", True)
        r = wait(me, "d2", "d2")  # one of two workers reported: not applied, then the deadline
        assert r.outcome == "timeout" and [w["pid"] for w in r.workers] == [a.pid]
        other.report("d1", True)
        assert wait(me, "d2", "d2").outcome == "timeout"
        other.report("d2", True)
        r = wait(me, "d2", "d2")
        assert r.outcome == "applied" and sorted(w["pid"] for w in r.workers) == sorted([a.pid, b.pid])
        other.report("d3", False, "boom")
        assert wait(me, "d3", "d3").outcome == "failed"
        assert wait(me, "d2", "d4").outcome == "superseded"  # the spec file holds another swap now
    finally:
        for p in (a, b):
            p.stdin.close()  # type: ignore[union-attr]
        b.wait(10)
    # a dead worker's file is dropped, not waited for; another process's pid is not a worker
    assert [w["pid"] for w in me.states()] == [a.pid]
    assert not (tmp_path / "workers" / f"{b.pid}.json").exists()
    stranger = WorkerBoard(tmp_path, expected=2, pid=os.getpid(), parent=os.getpid())
    stranger.report("d2", True)
    assert [w["pid"] for w in other.states()] == [a.pid]  # os.getpid() is no child of the test process
    a.wait(10)
    # a claim is taken once
    assert me.claim("k") and not other.claim("k")
