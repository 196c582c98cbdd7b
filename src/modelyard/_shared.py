"""Small helpers every layer uses: the clock, run ids, the user's name, durations, time display.

This module sits below every feature (next to ``errors`` and ``config``) and imports nothing of
modelyard but ``errors``, so tracking, registry, data, serving... can all share it without one
feature importing another. Standard library only: it is imported on the CLI's fast path.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from modelyard.errors import InvalidArgumentError

__all__ = [
    "check_int64",
    "format_when",
    "new_run_id",
    "now_ms",
    "parse_duration_ms",
    "parse_duration_s",
    "user_name",
]

_lock = threading.Lock()
_last = [0, 0]


def now_ms() -> int:
    """Milliseconds since the epoch (every stored time is one of these)."""
    return time.time_ns() // 1_000_000


def new_run_id() -> str:
    """A 32-character id that sorts by creation time (monotonic within a process): 12 hex digits
    of milliseconds, then 20 random hex digits."""
    ms = now_ms()
    with _lock:
        if ms <= _last[0]:
            ms = _last[0]
            _last[1] += 1
        else:
            _last[0] = ms
            _last[1] = int.from_bytes(os.urandom(1), "big")
        # A per-millisecond counter keeps ids from one process in order; 64 random bits keep processes apart.
        rand = ((_last[1] & 0xFFFF) << 64) | int.from_bytes(os.urandom(8), "big")
    return f"{ms:012x}{rand & ((1 << 80) - 1):020x}"


def user_name() -> str | None:
    """Who is acting: on a team server the authenticated caller; otherwise the login name of the
    user running this process (``YARD_USER`` overrides it)."""
    from modelyard._rpc import current_principal

    who = current_principal.get()
    if who is not None:
        return who.name
    import getpass  # with termios: kept off the CLI's fast path

    try:
        return os.environ.get("YARD_USER") or getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry in some containers
        return None


def format_when(ms: int | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored time (ms since the epoch) as UTC text in ``fmt``; ``-`` when there is none."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime(fmt) if ms else "-"


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def _duration(value: Any, what: str) -> tuple[float, str]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise InvalidArgumentError(
                f"{what} must be a positive number of seconds or a duration like 30s or 2m. Got "
                f"{value!r} instead."
            )
        return float(value), "s"
    m = _DURATION.match(str(value))
    if not m or float(m.group(1)) <= 0:
        raise InvalidArgumentError(
            f"{what} must be a positive duration with a unit, like 500ms, 30s, 2m or 1h. Got "
            f"{value!r} instead."
        )
    return float(m.group(1)), m.group(2)


def parse_duration_s(value: Any, *, what: str = "The duration") -> float:
    """Seconds from ``"500ms"``, ``"30s"``, ``"2m"``, ``"1h"``, ``"7d"``, ``"1w"`` or a number of seconds.

    ``what`` starts the error message (``"The window"``); a bad value raises
    :class:`~modelyard.errors.InvalidArgumentError` (a ``ValueError``, so pydantic validators may use it).
    """
    number, unit = _duration(value, what)
    return number * _UNIT_S[unit]


def parse_duration_ms(value: Any, *, what: str = "The duration") -> int:
    """Whole milliseconds from the same durations as :func:`parse_duration_s` (``"5m"`` → 300000)."""
    number, unit = _duration(value, what)
    return int(number * _UNIT_MS[unit])


_INT64 = (-(2**63), 2**63 - 1)


def check_int64(caller: str, **values: int | None) -> None:
    """Refuse integers no store column holds (a client may send any JSON number)."""
    for name, v in values.items():
        if v is not None and not _INT64[0] <= v <= _INT64[1]:
            raise InvalidArgumentError(
                f"The {name!r} parameter of {caller} must be a 64-bit integer. Got {v} instead."
            )
