"""What the workers of one ``yard serve --workers N`` share: which spec each one applied.

The spec file is the one source every worker follows (each watches it). Beside it, in a state
folder the supervisor makes (``YARD_SERVE_STATE``), each worker keeps one small file,
``workers/<pid>.json``: the sha256 of the spec text it applied last and whether that worked.
A worker that takes ``PUT /admin/spec`` swaps itself, writes the new spec file and then waits
(:meth:`WorkerBoard.wait`) until every live worker reports that digest (or one reports a
failure, or another swap replaced the file) before it answers. Files only, written atomically
(write + rename), so it works across processes without a lock server; a dead worker's file is
ignored (its pid no longer runs as a sibling) and removed.

``claims/<key>`` files (``O_CREAT | O_EXCL``) let exactly one process count one change of the
spec file: the worker that writes an admin swap claims it first; for an edit made by someone
else, the first worker to see it claims it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["ENV_STATE", "ENV_WORKERS", "WaitResult", "WorkerBoard", "file_key"]

ENV_STATE = "YARD_SERVE_STATE"
ENV_WORKERS = "YARD_SERVE_WORKERS"


def file_key(digest: str, st: os.stat_result) -> str:
    """The claim key of one version of the spec file: its digest, inode and mtime (so writing
    the same text again later is a new change)."""
    return f"{digest[:40]}-{st.st_ino}-{st.st_mtime_ns}"


def _alive(pid: int, parent: int) -> bool:
    """Whether ``pid`` runs and, where /proc tells, is a child of ``parent`` (a worker of the
    same supervisor), so a reused pid is not taken for a worker."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal check is all we have
    fields = stat[stat.rfind(")") + 2 :].split()
    return len(fields) > 1 and fields[1] == str(parent)


@dataclass(frozen=True)
class WaitResult:
    """How a wait for a digest ended: ``"applied"``, ``"failed"`` (a worker could not load it),
    ``"superseded"`` (the spec file changed again) or ``"timeout"``; each live worker's state."""

    outcome: str
    workers: list[dict[str, Any]]


class WorkerBoard:
    """The per-worker applied-spec files of one multi-worker server (see the module doc)."""

    def __init__(
        self, root: str | os.PathLike[str], expected: int, pid: int | None = None, parent: int | None = None
    ) -> None:
        self.root = Path(root)
        self.expected = expected
        self.pid = pid if pid is not None else os.getpid()  #: this worker
        self.parent = parent if parent is not None else os.getppid()  #: the supervisor of every worker
        self._workers = self.root / "workers"
        self._claims = self.root / "claims"
        self._workers.mkdir(parents=True, exist_ok=True)
        self._claims.mkdir(parents=True, exist_ok=True)

    @classmethod
    def from_env(cls) -> WorkerBoard | None:
        """The board named by ``YARD_SERVE_STATE`` (set by ``yard serve --workers N``), or None."""
        root = os.environ.get(ENV_STATE)
        if not root:
            return None
        return cls(root, int(os.environ.get(ENV_WORKERS) or "1"))

    def report(self, digest: str | None, ok: bool, error: str | None = None) -> None:
        """Record that this worker applied (``ok``) or failed to apply the spec ``digest``."""
        state = {
            "pid": self.pid,
            "digest": digest,
            "ok": ok,
            "error": error,
            "at_ms": int(time.time() * 1000),
        }
        path = self._workers / f"{self.pid}.json"
        tmp = path.with_name(f".{self.pid}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def remove(self) -> None:
        """Forget this worker (it is shutting down)."""
        with contextlib.suppress(OSError):
            (self._workers / f"{self.pid}.json").unlink()

    def states(self) -> list[dict[str, Any]]:
        """The state of every live worker, by pid; files of dead workers are removed."""
        out: list[dict[str, Any]] = []
        for path in sorted(self._workers.glob("*.json")):
            try:
                pid = int(path.stem)
            except ValueError:
                continue
            if pid != self.pid and not _alive(pid, self.parent):
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # replaced while read: the next look sees it
            if isinstance(state, dict):
                out.append(state)
        return out

    def claim(self, key: str) -> bool:
        """True for the one process that claims ``key`` first (across every worker)."""
        try:
            fd = os.open(self._claims / key, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    def wait(
        self,
        digest: str,
        current: Any,
        timeout_s: float,
        poll_s: float = 0.02,
        clock: Any = time.monotonic,
        sleep: Any = time.sleep,
    ) -> WaitResult:
        """Wait until every live worker (at least ``expected`` of them) applied ``digest``.

        ``current()`` is the digest the spec file holds now: when it is another one, a later
        swap replaced this one (``"superseded"``). A worker reporting a failure for ``digest``
        ends the wait (``"failed"``); so does ``timeout_s`` (``"timeout"``)."""
        deadline = clock() + timeout_s
        while True:
            states = self.states()
            on = [s for s in states if s.get("digest") == digest]
            if any(not s.get("ok") for s in on):
                return WaitResult("failed", states)
            if len(on) == len(states) >= self.expected:
                return WaitResult("applied", states)
            if current() != digest:
                return WaitResult("superseded", states)
            if clock() >= deadline:
                return WaitResult("timeout", states)
            sleep(poll_s)
