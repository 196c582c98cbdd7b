"""Rollouts as stored and the read side of the service: the ``Rollout`` and ``RolloutEvent``
records and ``RolloutReads`` (get, latest, list, events, step rows). ``RolloutService`` in
``_service.py`` adds every state change on top of these reads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from modelyard._redact import redact_url, redact_webhook
from modelyard._rpc import op
from modelyard._shared import check_int64, now_ms
from modelyard._workspace import Workspace, WorkspaceService
from modelyard.errors import NotFoundError
from modelyard.rollout._config import RolloutConfig, Step, plan_steps
from modelyard.rollout._schema import rollout_events, rollout_steps, rollouts
from modelyard.rollout._state import RolloutState

__all__ = ["Rollout", "RolloutEvent", "RolloutReads", "StepRow"]


@dataclass(frozen=True)
class Rollout:
    """A rollout as stored."""

    id: int
    model: str
    strategy: str
    state: RolloutState
    stable_version: int
    candidate_version: int
    step_index: int
    step_started_at: int | None
    config: RolloutConfig
    base_spec: dict[str, Any]
    target: dict[str, Any]
    revision: int
    analysis: dict[str, Any] | None
    reason: str | None
    created_by: str | None
    created_at: int
    updated_at: int
    finished_at: int | None

    @property
    def steps(self) -> list[Step]:
        return plan_steps(self.config)

    @property
    def step(self) -> Step:
        return self.steps[min(self.step_index, len(self.steps) - 1)]

    def describe(self) -> str:
        versions = f"version {self.stable_version} → {self.candidate_version}"
        return f"rollout {self.id} of {self.model!r} ({self.strategy}, {versions})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "strategy": self.strategy,
            "state": self.state.value,
            "stable_version": self.stable_version,
            "candidate_version": self.candidate_version,
            "step_index": self.step_index,
            "steps": [s.model_dump() for s in self.steps],
            "step_started_at": self.step_started_at,
            "config": _shown_config(self.config),
            "target": {k: redact_url(v) if k == "url" else v for k, v in self.target.items()},
            "analysis": self.analysis,
            "reason": self.reason,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }


@dataclass(frozen=True)
class RolloutEvent:
    """One entry of a rollout's event log."""

    id: int
    rollout_id: int
    at: int
    kind: str
    step: int | None
    message: str
    detail: dict[str, Any]
    actor: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class StepRow:
    """One started step of a rollout as stored: its traffic, the window's baseline (JSON
    metrics snapshot, None until taken), when it started and ended, and its result."""

    rollout_id: int
    idx: int
    name: str
    traffic: str
    baseline: str | None
    started_at: int | None
    ended_at: int | None
    result: str | None


def _shown_config(cfg: RolloutConfig) -> dict[str, Any]:
    out = cfg.model_dump(mode="json")
    out["webhooks"] = [redact_webhook(w) for w in cfg.webhooks]  # references; an old literal URL redacted
    for q in out.get("prometheus") or []:
        q["url"] = redact_url(q["url"])
    return out


def _record(row: Any) -> Rollout:
    return Rollout(
        id=int(row.id),
        model=row.model_name,
        strategy=row.strategy,
        state=RolloutState(row.state),
        stable_version=int(row.stable_version),
        candidate_version=int(row.candidate_version),
        step_index=int(row.step_index),
        step_started_at=row.step_started_at,
        config=RolloutConfig.model_validate_json(row.config),
        base_spec=json.loads(row.base_spec),
        target=json.loads(row.target),
        revision=int(row.revision),
        analysis=json.loads(row.analysis) if row.analysis else None,
        reason=row.reason,
        created_by=row.created_by,
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
        finished_at=row.finished_at,
    )


class RolloutReads(WorkspaceService):
    """Reading the rollouts of one workspace."""

    def __init__(
        self,
        workspace: Workspace | str | None = None,
        *,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(workspace)
        self.say = say or (lambda msg: None)
        #: milliseconds since the epoch; steps start and their windows are measured on it (injectable)
        self.clock: Callable[[], int] = clock or now_ms

    # -- reading ---------------------------------------------------------------------------------
    @op("reader", on=("rollout", "rollout_id"))
    def get(self, rollout_id: int) -> Rollout:
        """The rollout ``rollout_id``."""
        check_int64("get", rollout_id=rollout_id)
        with self.store.read() as conn:
            row = conn.execute(sa.select(rollouts).where(rollouts.c.id == int(rollout_id))).first()
        if row is None:
            raise NotFoundError(f"There is no rollout {rollout_id}. List them with `yard rollout list`.")
        return _record(row)

    @op("reader", on=("model", "model"))
    def latest(self, model: str) -> Rollout:
        """The newest rollout of ``model``."""
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(rollouts)
                .where(rollouts.c.model_name == model)
                .order_by(rollouts.c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                from modelyard.errors import did_you_mean

                names = [n for (n,) in conn.execute(sa.select(rollouts.c.model_name).distinct())]
                raise NotFoundError(
                    f"Model {model!r} has no rollout.{did_you_mean(model, names)} "
                    f"Start one with `yard rollout start {model} --to VERSION`."
                )
        return _record(row)

    @op("reader", on=("model", "model"))
    def list_rollouts(self, model: str | None = None, *, active: bool = False) -> list[Rollout]:
        """Rollouts, newest first: of ``model`` (None: every model), only unfinished ones when ``active``."""
        q = sa.select(rollouts).order_by(rollouts.c.id.desc())
        if model:
            q = q.where(rollouts.c.model_name == model)
        if active:
            q = q.where(rollouts.c.active_model.is_not(None))
        with self.store.read() as conn:
            return [_record(r) for r in conn.execute(q)]

    @op("reader", on=("rollout", "rollout_id"))
    def events(self, rollout_id: int, *, after_id: int = 0) -> list[RolloutEvent]:
        """The rollout's events after event ``after_id``, oldest first."""
        check_int64("events", rollout_id=rollout_id, after_id=after_id)
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(rollout_events)
                .where(rollout_events.c.rollout_id == int(rollout_id), rollout_events.c.id > after_id)
                .order_by(rollout_events.c.id)
            )
            return [
                RolloutEvent(
                    int(e.id),
                    int(e.rollout_id),
                    int(e.at),
                    e.kind,
                    e.step,
                    e.message,
                    json.loads(e.detail),
                    e.actor,
                )
                for e in rows
            ]

    @op("reader", on=("rollout", "rollout_id"))
    def step_results(self, rollout_id: int) -> dict[int, str | None]:
        """Each started step's result (``successful``/``failed``/``inconclusive``, None while undecided)."""
        check_int64("step_results", rollout_id=rollout_id)
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(rollout_steps.c.idx, rollout_steps.c.result).where(
                    rollout_steps.c.rollout_id == int(rollout_id)
                )
            )
            return {int(i): res for i, res in rows}

    @op("reader", on=("rollout", "rollout_id"))
    def step_row(self, rollout_id: int, idx: int) -> StepRow | None:
        """Step ``idx`` of the rollout as stored (None before it started)."""
        check_int64("step_row", rollout_id=rollout_id, idx=idx)
        with self.store.read() as conn:
            row = conn.execute(
                sa.select(rollout_steps).where(
                    rollout_steps.c.rollout_id == int(rollout_id), rollout_steps.c.idx == int(idx)
                )
            ).first()
        if row is None:
            return None
        return StepRow(
            int(row.rollout_id),
            int(row.idx),
            row.name,
            row.traffic,
            row.baseline,
            row.started_at,
            row.ended_at,
            row.result,
        )
