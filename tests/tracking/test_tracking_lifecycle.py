"""How runs end: with blocks that raise, Ctrl-C, scripts that exit normally or die of an exception."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.tracking import RunStatus, TrackingService

SRC = str(Path(__file__).resolve().parents[2] / "src")


def run_script(code: str, uri: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent(code))
    full_env = {**os.environ, "PYTHONPATH": SRC, "YARD_URI": uri, "YARD_FLUSH_INTERVAL": "30", **env}
    return subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=120
    )


def test_with_block_that_raises_ends_failed_with_traceback(workspace) -> None:
    with pytest.raises(ZeroDivisionError):
        with yard.start_run(experiment="e", capture_env=False) as run:
            run.log_metric("loss", 1.0)
            1 / 0  # noqa: B018
    rec = yard.get_run(run.id)
    assert rec.status is RunStatus.FAILED
    assert (
        "Traceback (most recent call last)" in rec.error
        and "ZeroDivisionError: division by zero" in rec.error
    )
    assert "test_with_block_that_raises" in rec.error
    assert rec.metrics == {"loss": 1.0}  # flushed before ending
    assert yard.active_run() is None


def test_keyboard_interrupt_ends_killed(workspace) -> None:
    with pytest.raises(KeyboardInterrupt):
        with yard.start_run(experiment="e", capture_env=False) as run:
            run.log_metric("loss", 1.0)
            raise KeyboardInterrupt
    rec = yard.get_run(run.id)
    assert rec.status is RunStatus.KILLED and rec.error == "KeyboardInterrupt"
    assert rec.metrics == {"loss": 1.0}


def test_nested_failure_fails_child_and_parent(workspace) -> None:
    with pytest.raises(ValueError):
        with yard.start_run(experiment="e", capture_env=False) as parent:
            with yard.start_run(nested=True, capture_env=False) as child:
                raise ValueError("bad fold")
    assert yard.get_run(child.id).status is RunStatus.FAILED
    assert yard.get_run(parent.id).status is RunStatus.FAILED
    assert "bad fold" in yard.get_run(parent.id).error


def test_explicit_end_inside_with(workspace) -> None:
    with yard.start_run(experiment="e", capture_env=False) as run:
        run.end("killed")
    assert yard.get_run(run.id).status is RunStatus.KILLED
    assert yard.active_run() is None


def test_script_without_with_exits_normally(store_uri: str, tmp_path: Path) -> None:
    proc = run_script(
        """
        import modelyard as yard
        run = yard.start_run(experiment="script", params={"n": 5000})
        for i in range(5000):
            run.log_metric("loss", 1.0 / (i + 1))
        run.log_metric("acc", 0.5)
        print(run.id)
        """,
        store_uri,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    svc = TrackingService(store_uri)
    rec = svc.get_run(run_id)
    assert rec.status is RunStatus.FINISHED and rec.error is None
    assert rec.metrics == {"acc": 0.5, "loss": 1.0 / 5000}
    assert len(svc.metric_history(run_id, "loss")) == 5000
    assert rec.environment["command"].endswith("train.py")


def test_script_dying_of_an_exception_ends_failed(store_uri: str, tmp_path: Path) -> None:
    proc = run_script(
        """
        import sys
        import modelyard as yard
        run = yard.start_run(experiment="script", capture_env=False)
        for i in range(1000):
            run.log_metric("loss", float(i))
        print(run.id)
        sys.stdout.flush()
        raise RuntimeError("diverged at step 1000")
        """,
        store_uri,
        tmp_path,
    )
    assert proc.returncode == 1
    assert "RuntimeError: diverged at step 1000" in proc.stderr  # the user's traceback is still shown
    run_id = proc.stdout.strip()
    svc = TrackingService(store_uri)
    rec = svc.get_run(run_id)
    assert rec.status is RunStatus.FAILED
    assert "RuntimeError: diverged at step 1000" in rec.error
    assert len(svc.metric_history(run_id, "loss")) == 1000


def test_script_interrupted_ends_killed(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    proc = run_script(
        """
        import modelyard as yard
        run = yard.start_run(experiment="script", capture_env=False)
        run.log_metric("loss", 1.0)
        print(run.id, flush=True)
        raise KeyboardInterrupt
        """,
        uri,
        tmp_path,
    )
    assert proc.returncode != 0
    rec = TrackingService(uri).get_run(proc.stdout.strip())
    assert rec.status is RunStatus.KILLED and rec.metrics == {"loss": 1.0}


def test_script_calling_sys_exit_nonzero_after_run_ended(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    proc = run_script(
        """
        import sys
        import modelyard as yard
        with yard.start_run(experiment="script", capture_env=False) as run:
            run.log_metric("loss", 1.0)
        print(run.id, flush=True)
        sys.exit(3)
        """,
        uri,
        tmp_path,
    )
    assert proc.returncode == 3
    assert TrackingService(uri).get_run(proc.stdout.strip()).status is RunStatus.FINISHED


def test_sigkill_loses_only_points_since_the_last_flush(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    proc = run_script(
        """
        import os, signal
        import modelyard as yard
        run = yard.start_run(experiment="script", capture_env=False)
        print(run.id, flush=True)
        for i in range(100):
            run.log_metric("loss", float(i))
        run.flush()
        for i in range(50):
            run.log_metric("loss", float(i))
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        uri,
        tmp_path,
    )
    assert proc.returncode == -9
    svc = TrackingService(uri)
    run_id = proc.stdout.strip()
    assert len(svc.metric_history(run_id, "loss")) == 100
    assert svc.get_run(run_id).status is RunStatus.RUNNING  # nothing could end it


def test_run_ended_elsewhere_does_not_stay_active(workspace) -> None:
    from modelyard.errors import ConflictError

    with pytest.raises(ConflictError, match="already killed; it cannot become finished"):
        with yard.start_run(experiment="e", capture_env=False) as run:
            TrackingService(workspace).end_run(run.id, RunStatus.KILLED, "stopped by an operator")
    assert yard.active_run() is None
    assert yard.get_run(run.id).status is RunStatus.KILLED
    with yard.start_run(experiment="e", capture_env=False):  # the next run starts fine
        pass
