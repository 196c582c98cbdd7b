"""Records of pipeline runs: one :class:`StepOutcome` per node, a :class:`PipelineResult` per run."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["PipelineResult", "StepOutcome", "StepState"]


class StepState(enum.StrEnum):
    """Where a step is in a pipeline run."""

    PENDING = "pending"
    CACHED = "cached"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass
class StepOutcome:
    """What happened to one node (or, from ``status``, what would happen and why)."""

    node: str
    step: str
    state: StepState
    reason: str = ""
    cache_key: str | None = None
    cache_hit: bool = False
    output_digest: str | None = None
    run_id: str | None = None
    duration_s: float | None = None
    attempts: int = 0
    upstream: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def would_run(self) -> bool:
        return self.state is not StepState.CACHED

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = self.state.value
        return d


@dataclass
class PipelineResult:
    """A finished pipeline run: its tracked run id and one outcome per step."""

    run_id: str
    pipeline: str
    status: str
    steps: dict[str, StepOutcome]
    outputs_spec: Any = None
    uri: Any = None
    #: node → (serializer, allow_pickle) its step declares: how its output may be loaded
    output_specs: dict[str, tuple[str | None, bool]] = field(default_factory=dict)

    @property
    def cached(self) -> list[str]:
        """Nodes served from the cache."""
        return [n for n, s in self.steps.items() if s.state is StepState.CACHED]

    @property
    def executed(self) -> list[str]:
        """Nodes that ran."""
        return [n for n, s in self.steps.items() if s.state is StepState.DONE]

    def output(self, node: str) -> Any:
        """Load the output of ``node`` (a step name or node id) from the blob store."""
        from modelyard.pipelines._runner import load_step_output

        return load_step_output(self, node)

    @property
    def value(self) -> Any:
        """What the pipeline function returned, with every step reference loaded."""
        from modelyard.pipelines._graph import substitute

        return substitute(self.outputs_spec, lambda r: self.output(r.node_id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "status": self.status,
            "steps": [s.to_dict() for s in self.steps.values()],
        }
