"""Time-ordered run ids: 12 hex digits of milliseconds, then 20 random hex digits."""

from __future__ import annotations

import os
import threading
import time

__all__ = ["new_run_id", "now_ms"]

_lock = threading.Lock()
_last = [0, 0]


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def new_run_id() -> str:
    """A 32-character id that sorts by creation time (monotonic within a process)."""
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
