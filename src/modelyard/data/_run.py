"""``Run.use_dataset`` and ``Run.inputs``: data attaches them to tracking's :class:`~modelyard.tracking.Run`.

Tracking never imports data; the package root declares this module an extension of the point
``"tracking.Run"`` (:mod:`modelyard._hooks`), and importing it sets the methods.
"""

from __future__ import annotations

from typing import Any

from modelyard.tracking._run import Run

__all__ = ["inputs", "use_dataset"]


def use_dataset(self: Run, ref: str, *, engine: str = "pandas", columns: list[str] | None = None) -> Any:
    """Record dataset version ``ref`` (``"churn-train@v3"``) as an input of this run and load it.

    Returns a pandas DataFrame (``engine="polars"`` for polars, ``"arrow"`` for an Arrow
    table). ``yard runs show`` and ``yard data show`` list the lineage both ways.
    """
    from modelyard.data._service import DataService

    self._check_open()
    svc = DataService(self._service.ws)
    version = svc.record_input(self.id, ref)
    return svc.load(version, engine=engine, columns=columns)


def inputs(self: Run) -> list[Any]:
    """Dataset versions this run used as inputs."""
    from modelyard.data._service import DataService

    return DataService(self._service.ws).inputs_of(self.id)


Run.use_dataset = use_dataset
Run.inputs = inputs
