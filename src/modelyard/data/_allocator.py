"""Opt-in glibc allocator tuning for profiling (``mallopt``): never changed behind a library user's back.

Profiling allocates a few arrays of one batch's size per column and frees them right away. With
glibc's defaults the freed memory is trimmed or unmapped and the next array faults in fresh
zeroed pages, which made page faults most of the profiling CPU time on a virtual machine. Raising
the mmap and trim thresholds keeps those blocks for reuse: peak memory does not grow, freed
memory is simply kept by the process.

These settings are process-wide and cannot be undone: glibc has no call that reads them back, and
setting the mmap threshold turns off its dynamic threshold for good. So a library must not make
that choice for the application that imports it. They are applied only when asked:

* the ``yard`` command line opts in (:func:`allow`): its process is ours;
* ``YARD_TUNE_MALLOC=1`` in the environment opts any process in (``0`` opts the CLI out);
* ``ProfileBuilder(tune_allocator=True)`` / ``False`` decides for one builder's process.

Settings the user made with ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` always win.
"""

from __future__ import annotations

import os

__all__ = ["allow", "maybe_tune", "tuned", "wanted"]

_allowed = False
_tuned = False


def allow() -> None:
    """Opt this process in (the ``yard`` command line calls it; ``YARD_TUNE_MALLOC=0`` still opts out)."""
    global _allowed
    _allowed = True


def wanted(explicit: bool | None = None) -> bool:
    """Whether profiling should tune the allocator: ``explicit`` if given, else the environment, else
    :func:`allow`."""
    if explicit is not None:
        return explicit
    env = os.environ.get("YARD_TUNE_MALLOC", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    return _allowed


def tuned() -> bool:
    """True once this process's allocator thresholds were raised by :func:`maybe_tune`."""
    return _tuned


def maybe_tune(explicit: bool | None = None) -> bool:
    """Raise glibc's mmap/trim thresholds once per process when :func:`wanted`; True if they are raised."""
    global _tuned
    if _tuned or not wanted(explicit):
        return _tuned
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return False  # the user chose their own settings
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    ok = mallopt(m_mmap_threshold, 32 << 20)  # the largest glibc accepts; batch columns are ~2 MiB
    ok = mallopt(m_trim_threshold, 512 << 20) and ok
    _tuned = bool(ok)
    return _tuned
