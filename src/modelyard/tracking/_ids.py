"""Run ids and the clock, kept here for older imports: they live in :mod:`modelyard._shared`."""

from __future__ import annotations

from modelyard._shared import new_run_id, now_ms

__all__ = ["new_run_id", "now_ms"]
