"""Warnings raised while a model predicts: logged once per model and distinct text, then counted.

A model that warns on every call (scikit-learn's "X does not have valid feature names", a
deprecation...) would otherwise write one log line per request: libraries reset Python's
once-per-location registry whenever they touch the warning filters, so the default filter does
not hold them back. Each model version predicts in its own thread; :func:`bind` marks that
thread with the runtime, and the process-wide ``warnings.showwarning`` hook installed by
:func:`install` sends warnings from a marked thread here: the first of each distinct
(category, message) per model is logged on ``modelyard.serving`` with a note that repeats are
counted in ``yard_serving_model_warnings_total``; the rest only count. Warnings from any other
thread go to the previous hook unchanged.
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Any

__all__ = ["WarningDedup", "bind", "install"]

log = logging.getLogger("modelyard.serving")

_local = threading.local()
_install_lock = threading.Lock()
MAX_DISTINCT = 100  # distinct warnings remembered per model; beyond, they are counted as "other"


class WarningDedup:
    """The warnings of one model version: which were logged, how often each came."""

    def __init__(self, label: str, counter: Any = None) -> None:
        self.label = label
        self.counter = counter  # a Prometheus child factory: counter(category) -> child with .inc()
        self.counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def record(self, category: type[Warning], message: str) -> None:
        key = (category.__name__, message)
        with self._lock:
            if key not in self.counts and len(self.counts) >= MAX_DISTINCT:
                key = (category.__name__, "<other>")
            first = key not in self.counts
            self.counts[key] = self.counts.get(key, 0) + 1
        if self.counter is not None:
            try:
                self.counter(category.__name__).inc()
            except Exception:  # pragma: no cover - metrics never break a prediction
                pass
        if first:
            if key[1] == "<other>":
                log.warning(
                    "model %s raised more than %d distinct warnings; further ones are only counted "
                    "(yard_serving_model_warnings_total)",
                    self.label,
                    MAX_DISTINCT,
                )
            else:
                log.warning(
                    "model %s warned: %s: %s (logged once; repeats are counted in "
                    "yard_serving_model_warnings_total)",
                    self.label,
                    category.__name__,
                    message,
                )


def bind(dedup: WarningDedup) -> None:
    """Mark the calling thread (a model's predict thread) as predicting for ``dedup``'s model."""
    _local.dedup = dedup


def _make_hook(previous: Any) -> Any:
    def showwarning(
        message: Any,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        dedup = getattr(_local, "dedup", None)
        if dedup is None:
            previous(message, category, filename, lineno, file, line)
            return
        dedup.record(category, str(message))
        return None

    showwarning._yard_dedup = True  # type: ignore[attr-defined]
    return showwarning


def install() -> None:
    """Route warnings raised in bound predict threads to their model's :class:`WarningDedup`
    (idempotent; keeps whatever hook was there for every other thread)."""
    with _install_lock:
        current = warnings.showwarning
        if not getattr(current, "_yard_dedup", False):
            warnings.showwarning = _make_hook(current)
