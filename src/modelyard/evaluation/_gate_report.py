"""The outcome of a gate policy: each gate's status, observed value, bound and explanation, and the
report over all gates (what a refusal names, what a server sends back, what ``yard gate`` prints).
Running the gates is :mod:`modelyard.evaluation._gates`."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.evaluation._evaluate import Evaluation

__all__ = ["GateReport", "GateResult", "GateStatus", "report_from_dict"]


class GateStatus(enum.StrEnum):
    """Outcome of one gate. ``waived``: not measured, passed by an explicit policy rule."""

    PASSED = "passed"
    FAILED = "failed"
    WAIVED = "waived"


@dataclass
class GateResult:
    """One gate: what was measured, against which bound, and why it passed or failed."""

    gate: str
    kind: str
    status: GateStatus
    observed: float | str | None
    bound: str
    explanation: str

    @property
    def passed(self) -> bool:
        return self.status is not GateStatus.FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "kind": self.kind,
            "status": self.status.value,
            "passed": self.passed,
            "observed": self.observed,
            "bound": self.bound,
            "explanation": self.explanation,
        }


@dataclass
class GateReport:
    """Every gate's result for one model under one policy."""

    model: str
    policy: str
    results: list[GateResult] = field(default_factory=list)
    evaluation: Evaluation | None = None
    champion: str | None = None
    data: str | None = None
    seconds: float = 0.0
    check_id: str | None = None
    #: the id of ``evaluation`` (also where the object is not at hand: a report a server sent)
    evaluation_id: str | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[GateResult]:
        return [r for r in self.results if not r.passed]

    def failures(self) -> str:
        """The failed gates, one ``  - gate: explanation`` line each (for refusal messages)."""
        return "\n".join(f"  - {r.gate}: {r.explanation}" for r in self.failed)

    def summary(self) -> str:
        n, bad = len(self.results), len(self.failed)
        if not bad:
            return f"{self.model}: all {n} gates passed"
        return f"{self.model}: {bad} of {n} gates failed"

    def failure_lines(self) -> list[str]:
        return [f"{r.gate}: {r.explanation}" for r in self.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "policy": self.policy,
            "data": self.data,
            "champion": self.champion,
            "passed": self.passed,
            "gates": [r.to_dict() for r in self.results],
            "evaluation_id": self.evaluation.id if self.evaluation else self.evaluation_id,
            "check_id": self.check_id,
            "seconds": round(self.seconds, 3),
        }


def report_from_dict(d: dict[str, Any]) -> GateReport:
    """A :class:`GateReport` from its :meth:`GateReport.to_dict` (a server's client rebuilds the report
    of a :class:`GateFailed` with it; the evaluation itself stays on the server: ``evaluation_id``)."""
    results = [
        GateResult(
            str(r.get("gate")),
            str(r.get("kind")),
            GateStatus(str(r.get("status"))) if r.get("status") in set(GateStatus) else GateStatus.FAILED,
            r.get("observed"),
            str(r.get("bound")),
            str(r.get("explanation")),
        )
        for r in d.get("gates") or []
        if isinstance(r, dict)
    ]
    report = GateReport(
        model=str(d.get("model")),
        policy=str(d.get("policy")),
        results=results,
        champion=d.get("champion"),
        data=d.get("data"),
        seconds=float(d.get("seconds") or 0.0),
        check_id=d.get("check_id"),
        evaluation_id=d.get("evaluation_id"),
    )
    return report
