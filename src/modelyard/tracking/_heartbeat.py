"""Run heartbeats: tell a run whose process died (``kill -9``, OOM killer, a lost machine) from a live one.

A process with live runs stamps ``runs.heartbeat_time`` from its background flusher thread every
``YARD_HEARTBEAT_INTERVAL`` seconds (default 10); running child runs that have no process of their
own (pipeline steps) are stamped with their parent. A run stored as ``running`` whose last stamp is
older than ``YARD_RUN_LOST_AFTER`` seconds (default 300) is shown as ``lost`` by ``yard runs
list/show``, :func:`modelyard.get_run` and searches (``status = 'lost'``). ``lost`` is derived when
reading, never stored: a process that was only paused stamps again and its run is ``running`` again;
``yard.start_run(run_id=...)`` resumes a lost run.

:data:`clock` is the time source of both sides (tests replace it instead of sleeping).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from modelyard._shared import now_ms
from modelyard.errors import ConfigError
from modelyard.store._schema import runs

__all__ = [
    "DEFAULT_INTERVAL_S",
    "DEFAULT_LOST_AFTER_S",
    "clock",
    "interval_ms",
    "is_lost",
    "lost_after_ms",
    "lost_cutoff",
    "status_expr",
]

DEFAULT_INTERVAL_S = 10.0
DEFAULT_LOST_AFTER_S = 300.0

#: Milliseconds since the epoch; replaced in tests.
clock: Callable[[], int] = now_ms


def _seconds(var: str, default: float) -> float:
    raw = os.environ.get(var)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"{var} must be a positive number of seconds. Got {raw!r} instead.")
    return value


def interval_ms() -> int:
    """How often a process stamps its live runs (``YARD_HEARTBEAT_INTERVAL`` seconds)."""
    return max(1, int(_seconds("YARD_HEARTBEAT_INTERVAL", DEFAULT_INTERVAL_S) * 1000))


def lost_after_ms() -> int:
    """How old a running run's last stamp may be before it is shown as lost (``YARD_RUN_LOST_AFTER``)."""
    return max(1, int(_seconds("YARD_RUN_LOST_AFTER", DEFAULT_LOST_AFTER_S) * 1000))


def lost_cutoff(now: int | None = None) -> int:
    """A running run whose last heartbeat is older than this (ms) is lost."""
    return (clock() if now is None else now) - lost_after_ms()


def is_lost(status: str, heartbeat_time: int | None, start_time: int, *, cutoff: int | None = None) -> bool:
    """True for a stored ``running`` run whose last heartbeat (or start) is older than the timeout."""
    last = heartbeat_time if heartbeat_time is not None else start_time
    return status == "running" and last < (lost_cutoff() if cutoff is None else cutoff)


def status_expr(*, now: int | None = None) -> Any:
    """The status a reader sees, as SQL: ``'lost'`` for a running run without a recent heartbeat."""
    last = sa.func.coalesce(runs.c.heartbeat_time, runs.c.start_time)
    return sa.case(
        (sa.and_(runs.c.status == "running", last < lost_cutoff(now)), sa.literal("lost")),
        else_=runs.c.status,
    )
