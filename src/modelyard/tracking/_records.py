"""Plain records returned by the tracking service (runs, metric points, artifacts)."""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelyard._json import json_float
from modelyard.errors import ConflictError

__all__ = ["ArtifactRecord", "MetricPoint", "RunList", "RunRecord", "RunStatus"]


class RunStatus(enum.StrEnum):
    """Lifecycle of a run: ``running`` moves once to one of the three end states.

    ``lost`` is never stored: it is how a ``running`` run reads when its process stopped sending
    heartbeats (killed with SIGKILL, out of memory, machine gone); see ``tracking/_heartbeat.py``.
    """

    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"

    @property
    def is_terminal(self) -> bool:
        """An end state a run can be ended with (``lost`` is not one: it may still come back)."""
        return self in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

    def check_transition(self, new: RunStatus, run_id: str) -> None:
        """Raise ConflictError unless ``self → new`` is allowed."""
        if self.is_terminal:
            raise ConflictError(
                f"Run {run_id} is already {self.value}; it cannot become {new.value}. "
                "Start a new run, or resume it first with yard.start_run(run_id=...)."
            )


@dataclass(frozen=True)
class MetricPoint:
    """One logged value of a metric."""

    key: str
    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class ArtifactRecord:
    """A file or folder logged by a run; ``digest`` names a blob or, for folders, a manifest."""

    path: str
    kind: str
    digest: str
    size: int
    created_at: int


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds") if ms else None


@dataclass(frozen=True)
class RunRecord:
    """Everything stored about a run: attributes, params, latest metrics, tags, artifacts."""

    id: str
    experiment: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    parent_id: str | None
    user: str | None
    deleted: bool = False
    error: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    #: Last heartbeat of the run's process (ms), None for runs stored before heartbeats.
    heartbeat_time: int | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end (None while running)."""
        return (self.end_time - self.start_time) / 1000 if self.end_time else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (times as ISO strings too)."""
        d = asdict(self)
        d["status"] = self.status.value
        d["start"] = _iso(self.start_time)
        d["end"] = _iso(self.end_time)
        d["heartbeat"] = _iso(self.heartbeat_time)
        d["metrics"] = {k: json_float(v) for k, v in self.metrics.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


class RunList(list[RunRecord]):
    """A list of runs from :func:`modelyard.search_runs`; ``to_pandas()`` gives a frame."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Crosses the server API as a JSON list of runs, and comes back a RunList."""
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(
            cls,
            handler.generate_schema(list[RunRecord]),
            serialization=core_schema.wrap_serializer_function_ser_schema(
                lambda v, nxt: nxt(list(v)), schema=handler.generate_schema(list[RunRecord])
            ),
        )

    def to_pandas(self) -> Any:
        """One row per run with ``params.*``, ``metrics.*`` and ``tags.*`` columns."""
        import pandas as pd

        rows = []
        for r in self:
            row: dict[str, Any] = {
                "run_id": r.id,
                "experiment": r.experiment,
                "name": r.name,
                "status": r.status.value,
                "start_time": pd.Timestamp(r.start_time, unit="ms", tz="UTC"),
                "end_time": pd.Timestamp(r.end_time, unit="ms", tz="UTC") if r.end_time else pd.NaT,
                "parent_id": r.parent_id,
                "user": r.user,
            }
            row.update({f"params.{k}": v for k, v in r.params.items()})
            row.update({f"metrics.{k}": v for k, v in r.metrics.items()})
            row.update({f"tags.{k}": v for k, v in r.tags.items()})
            rows.append(row)
        return pd.DataFrame(rows)
