"""The Airflow virtualenv of ``.ci/get-airflow``, built in the background from the start of a session.

Building it on a fresh machine takes 4-17 minutes (pip resolving and installing ~150 packages), and
only ``tests/pipelines/test_airflow_dags.py`` needs it. ``tests/conftest.py`` starts the build when
the session begins (in the xdist controller, or the single process without xdist) so that it overlaps
the rest of the suite; the test's fixture runs ``.ci/get-airflow`` again, which waits on the build's
lock and then returns the finished venv (or rebuilds it, and reports why, when the background build
failed). An already built venv makes both calls return at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GET_AIRFLOW = ROOT / ".ci" / "get-airflow"
AIRFLOW_TEST = ROOT / "tests" / "pipelines" / "test_airflow_dags.py"


def session_covers(args: Iterable[str], invocation_dir: Path, markexpr: str = "") -> bool:
    """True when a session started with these path ``args`` (``file::test`` ids allowed) from
    ``invocation_dir`` would run the Airflow test: one of them is that file or a folder above it, and
    the ``-m`` expression does not leave out slow tests."""
    if "not slow" in " ".join(markexpr.split()):
        return False
    target = AIRFLOW_TEST.resolve()
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        path = (path if path.is_absolute() else invocation_dir / path).resolve()
        if path == target or path in target.parents:
            return True
    return False


class BackgroundBuild:
    """``.ci/get-airflow`` running as a child process (its own process group), output in a log file."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.log = Path(tempfile.mkstemp(prefix="yard-get-airflow-", suffix=".log")[1])
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                ["bash", str(GET_AIRFLOW)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def stop(self) -> None:
        """End the build if it still runs (the session ended without needing it: a half-built venv
        has no stamp, so the next ``.ci/get-airflow`` rebuilds it). The log is kept only when the build
        failed by itself (the test's own call then rebuilt the venv and reported its error)."""
        stopped = self.proc.poll() is None
        if stopped:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        # pip and its children end after the script: wait (bounded) until none of the group runs
        deadline = time.monotonic() + 30
        while group_running(self.proc.pid) and time.monotonic() < deadline + 10:
            if time.monotonic() > deadline:
                _signal_group(self.proc.pid, signal.SIGKILL)
            time.sleep(0.05)
        if stopped or self.proc.returncode == 0:
            self.log.unlink(missing_ok=True)


def group_running(pgid: int) -> bool:
    """True while a process of group ``pgid`` runs (zombies, dead but not yet reaped, do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: zombies count
        return _signal_group(pgid, 0)
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if state != "Z" and int(pgrp) == pgid:
            return True
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the process group ``pgid`` (the build's own); False when no process is left."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True
