"""Heartbeats: a run whose process is killed with SIGKILL reads as ``lost`` (not ``running`` forever).

Time is moved with the injected clock (``_heartbeat.clock``), never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app
from modelyard.errors import InvalidArgumentError
from modelyard.tracking import TrackingService, _heartbeat
from modelyard.tracking._records import RunStatus
from modelyard.tracking._run import _flusher

SRC = str(Path(__file__).resolve().parents[2] / "src")
runner = CliRunner()

CHILD = """
import sys, time
import modelyard as yard

run = yard.start_run(experiment="hb", name="doomed", uri=sys.argv[1])
run.log_metric("loss", 0.5)
run.flush()
print(run.id, flush=True)
time.sleep(600)
"""


def _wait_for(condition, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _cli(uri: str, *args: str) -> str:
    res = runner.invoke(app, ["--uri", uri, *args], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return res.stdout


def test_a_run_killed_with_sigkill_reads_as_lost(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "YARD_HEARTBEAT_INTERVAL": "0.1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, store_uri],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        run_id = proc.stdout.readline().strip()
        assert len(run_id) == 32, proc.stderr.read() if proc.poll() is not None else run_id
        svc = TrackingService(store_uri)
        start = svc.get_run(run_id).start_time
        # the child's background thread stamps its heartbeat on its own (no logging call needed)
        _wait_for(lambda: (svc.get_run(run_id).heartbeat_time or 0) > start, "a heartbeat from the child")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    killed = svc.get_run(run_id)
    assert killed.status is RunStatus.RUNNING  # its last heartbeat is recent
    last = killed.heartbeat_time
    assert last is not None

    # a live run in this process keeps beating
    live = yard.start_run(experiment="hb", name="alive", uri=store_uri)

    # time passes: one second more than the default timeout since the killed run's last heartbeat
    later = last + _heartbeat.DEFAULT_LOST_AFTER_S * 1000 + 1000
    monkeypatch.setattr(_heartbeat, "clock", lambda: int(later))
    _flusher.beat([live], force=True)
    assert svc.get_run(run_id).status is RunStatus.LOST
    assert svc.get_run(live.id).status is RunStatus.RUNNING
    assert yard.get_run(run_id, uri=store_uri).to_dict()["status"] == "lost"

    listing = _cli(store_uri, "runs", "list")
    row = next(line for line in listing.splitlines() if run_id in line)
    assert "doomed" in row and " lost " in row
    assert " running " in next(line for line in listing.splitlines() if live.id in line)
    assert (
        json.loads(_cli(store_uri, "runs", "list", "--json", "--filter", "status = 'lost'"))[0]["id"]
        == run_id
    )
    assert [
        r["id"] for r in json.loads(_cli(store_uri, "runs", "list", "--json", "-f", "status = 'running'"))
    ] == [live.id]
    assert [r.id for r in yard.search_runs("hb", filter="status != 'lost'", uri=store_uri)] == [live.id]
    assert [r.id for r in yard.search_runs("hb", filter="status in ('lost', 'failed')", uri=store_uri)] == [
        run_id
    ]
    shown = _cli(store_uri, "runs", "show", run_id[:12])
    assert "status      lost" in shown
    assert "(no heartbeat since: its process probably died; yard.start_run(run_id=...) resumes it)" in shown
    assert json.loads(_cli(store_uri, "runs", "show", run_id, "--json"))["status"] == "lost"

    # the timeout is configurable
    monkeypatch.setenv("YARD_RUN_LOST_AFTER", str(_heartbeat.DEFAULT_LOST_AFTER_S * 2))
    assert svc.get_run(run_id).status is RunStatus.RUNNING
    monkeypatch.setenv("YARD_RUN_LOST_AFTER", "soon")
    res = runner.invoke(app, ["--uri", store_uri, "runs", "list"])
    assert res.exit_code == 1
    assert (
        str(res.exception) == "YARD_RUN_LOST_AFTER must be a positive number of seconds. Got 'soon' instead."
    )
    monkeypatch.delenv("YARD_RUN_LOST_AFTER")

    # a lost run can be resumed, and then ended as usual
    live.end()
    with yard.start_run(run_id=run_id, uri=store_uri) as resumed:
        assert svc.get_run(run_id).status is RunStatus.RUNNING
        resumed.log_metric("loss", 0.25)
    assert svc.get_run(run_id).status is RunStatus.FINISHED and svc.get_run(run_id).metrics["loss"] == 0.25


def test_children_without_a_process_beat_with_their_parent(
    workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = TrackingService(workspace)
    parent = yard.start_run(experiment="pipe", name="pipeline")
    step = svc.create_run(
        experiment="pipe", name="pipeline.train", parent_id=parent.id
    )  # like a pipeline step
    orphan = svc.create_run(experiment="pipe", name="orphan")  # nobody beats for it
    later = orphan.start_time + _heartbeat.lost_after_ms() + 1
    monkeypatch.setattr(_heartbeat, "clock", lambda: later)
    _flusher.beat([parent], force=True)
    assert {r.name: r.status.value for r in svc.search_runs("pipe")} == {
        "pipeline": "running",
        "pipeline.train": "running",
        "orphan": "lost",
    }
    parent.end()
    svc.end_run(step.id, RunStatus.FINISHED)
    # an ended run is never lost, however old
    monkeypatch.setattr(_heartbeat, "clock", lambda: later * 2)
    assert (
        svc.get_run(parent.id).status is RunStatus.FINISHED
        and svc.get_run(step.id).status is RunStatus.FINISHED
    )
    assert svc.get_run(orphan.id).status is RunStatus.LOST
    svc.end_run(orphan.id, RunStatus.KILLED)  # ending a lost run works: it is stored as running
    assert svc.get_run(orphan.id).status is RunStatus.KILLED


def test_lost_is_not_an_end_state_a_run_can_be_given() -> None:
    run = yard.start_run(experiment="x")
    with pytest.raises(
        InvalidArgumentError,
        match=r"The 'status' parameter of Run.end must be one of 'finished', 'failed', 'killed'\. Got "
        r"'lost' instead\.",
    ):
        run.end("lost")
    run.end()
    assert yard.get_run(run.id).status is RunStatus.FINISHED


def test_a_bad_heartbeat_interval_is_refused_before_a_run_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.errors import ConfigError

    monkeypatch.setenv("YARD_HEARTBEAT_INTERVAL", "-1")
    with pytest.raises(
        ConfigError,
        match=r"^YARD_HEARTBEAT_INTERVAL must be a positive number of seconds\. Got '-1' instead\.$",
    ):
        yard.start_run(experiment="x")
    monkeypatch.delenv("YARD_HEARTBEAT_INTERVAL")
    assert TrackingService().search_runs() == []  # nothing was stored
