"""Evaluation records, gate checks and attached gate policies in the metadata store."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard import _rpc
from modelyard._rpc import op, service
from modelyard._shared import new_run_id, now_ms, user_name
from modelyard._workspace import WorkspaceService
from modelyard.errors import InvalidArgumentError, NotFoundError
from modelyard.evaluation._evaluate import Evaluation, _dumps
from modelyard.evaluation._schema import evaluations, gate_checks, gate_policies

__all__ = ["EvaluationService", "parse_model_ref"]


def parse_model_ref(ref: str) -> tuple[str, int | None]:
    """``churn-clf`` → (churn-clf, None); ``churn-clf/8`` → (churn-clf, 8)."""
    name, sep, version = ref.rpartition("/")
    if sep and version.isdigit():
        return name, int(version)
    return ref, None


def _nan(values: Any) -> Any:
    if isinstance(values, dict):
        return {k: _nan(v) for k, v in values.items()}
    return float("nan") if values is None else values


def _newest_rows_of(table: sa.Table, model: str, limit: int) -> sa.Select[Any]:
    """The query of ``table``'s rows about ``name`` or ``name/version``, newest first."""
    name, version = parse_model_ref(model)
    q = sa.select(table).where(table.c.model_name == name)
    if version is not None:
        q = q.where(table.c.model_version == version)
    return q.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)


@service("evaluation")
class EvaluationService(WorkspaceService):
    """Stores and reads evaluations, gate checks and the gate policy attached to each model."""

    # -- evaluations ---------------------------------------------------------------------
    def record_evaluation(self, ev: Evaluation) -> Evaluation:
        """Store ``ev`` (it must name a model version); fills in its id, time and user."""
        if ev.model_name is None or ev.model_version is None:
            raise InvalidArgumentError("Only evaluations of a registered model version can be stored.")
        ev.id = ev.id or new_run_id()
        ev.created_at = ev.created_at or now_ms()
        # classes may be numpy scalars: send them as the JSON values they are stored as
        stored = self.store_evaluation(dataclasses.replace(ev, classes=ev.to_dict()["classes"]))
        ev.user = stored.user
        return ev

    @op("writer", on=("model", "ev.model_name"))
    def store_evaluation(self, ev: Evaluation) -> Evaluation:
        """Store an evaluation of a registered model version (its id set); the user is the caller."""
        if ev.model_name is None or ev.model_version is None or not ev.id:
            raise InvalidArgumentError(
                "Only evaluations of a registered model version, with an id, can be stored."
            )
        ev.created_at = ev.created_at or now_ms()
        if not ev.user or _rpc.current_principal.get() is not None:  # a server records who called
            ev.user = user_name()
        row = {
            "id": ev.id,
            "model_name": ev.model_name,
            "model_version": ev.model_version,
            "dataset_name": ev.dataset_name,
            "dataset_version": ev.dataset_version,
            "data_source": ev.data_source,
            "data_digest": ev.data_digest,
            "label": ev.label,
            "task": ev.task,
            "n_rows": ev.n_rows,
            "metrics": _dumps(ev.metrics),
            "slices": _dumps(ev.slices),
            "classes": _dumps(ev.to_dict()["classes"]),
            "created_at": ev.created_at,
            "duration_ms": ev.duration_ms,
            "user": ev.user,
            "modelyard_version": ev.modelyard_version,
        }
        self.store.write(lambda conn: conn.execute(evaluations.insert().values(**row)))
        return ev

    @staticmethod
    def _to_evaluation(r: Any) -> Evaluation:
        return Evaluation(
            task=r.task,
            label=r.label,
            n_rows=int(r.n_rows),
            metrics=_nan(json.loads(r.metrics)),
            slices=_nan(json.loads(r.slices)),
            classes=json.loads(r.classes) if r.classes else None,
            model_name=r.model_name,
            model_version=int(r.model_version),
            dataset_name=r.dataset_name,
            dataset_version=r.dataset_version,
            data_source=r.data_source,
            data_digest=r.data_digest,
            id=r.id,
            created_at=int(r.created_at),
            duration_ms=int(r.duration_ms),
            user=r.user,
            modelyard_version=r.modelyard_version,
        )

    @op("reader")
    def list_evaluations(self, model: str, *, limit: int = 50) -> list[Evaluation]:
        """Evaluations of ``name`` or ``name/version``, newest first."""
        q = _newest_rows_of(evaluations, model, limit)
        with self.store.read() as conn:
            return [self._to_evaluation(r) for r in conn.execute(q)]

    @op("reader")
    def get_evaluation(self, evaluation_id: str) -> Evaluation:
        """One evaluation by id or unique prefix (6+ characters)."""
        if len(evaluation_id) < 6:
            raise InvalidArgumentError(
                f"An evaluation id prefix needs at least 6 characters. Got {evaluation_id!r}."
            )
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(evaluations).where(evaluations.c.id.like(f"{evaluation_id}%")).limit(2)
            ).all()
        if not rows:
            raise NotFoundError(
                f"No evaluation with id {evaluation_id!r}. List them with: yard evaluations list MODEL"
            )
        if len(rows) > 1:
            raise InvalidArgumentError(
                f"The id prefix {evaluation_id!r} matches several evaluations; give more characters."
            )
        return self._to_evaluation(rows[0])

    # -- gate checks ---------------------------------------------------------------------
    @op("writer", on=("model", "model_name"))
    def record_gate_check(
        self,
        *,
        model_name: str,
        model_version: int,
        policy_text: str,
        policy_digest: str,
        passed: bool,
        results: list[dict[str, Any]],
        trigger: str,
        evaluation_id: str | None = None,
        alias: str | None = None,
        reason: str | None = None,
    ) -> str:
        """Store the outcome of one gate run; returns its id."""
        cid = new_run_id()
        row = {
            "id": cid,
            "model_name": model_name,
            "model_version": model_version,
            "evaluation_id": evaluation_id,
            "policy_digest": policy_digest,
            "policy_text": policy_text,
            "passed": passed,
            "results": _dumps(results),
            "trigger": trigger,
            "alias": alias,
            "reason": reason,
            "created_at": now_ms(),
            "user": user_name(),
        }
        self.store.write(lambda conn: conn.execute(gate_checks.insert().values(**row)))
        return cid

    @op("reader")
    def list_gate_checks(self, model: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """Gate checks of ``name`` or ``name/version``, newest first."""
        q = _newest_rows_of(gate_checks, model, limit)
        with self.store.read() as conn:
            out = []
            for r in conn.execute(q):
                d = dict(r._mapping)
                d["results"] = json.loads(d["results"])
                d.pop("policy_text")
                out.append(d)
            return out

    # -- attached policies ---------------------------------------------------------------
    @op("maintainer", on=("model", "model_name"))
    def attach_policy(self, model_name: str, policy_text: str, source: str | None = None) -> None:
        """Attach (or replace) the gate policy that guards ``model_name``'s protected aliases."""

        def fn(conn: Connection) -> None:
            values = {
                "policy_text": policy_text,
                "source": source,
                "updated_at": now_ms(),
                "user": user_name(),
            }
            done = conn.execute(
                gate_policies.update().where(gate_policies.c.model_name == model_name).values(**values)
            ).rowcount
            if not done:
                conn.execute(gate_policies.insert().values(model_name=model_name, **values))

        self.store.write(fn)

    @op("maintainer", on=("model", "model_name"))
    def detach_policy(self, model_name: str) -> bool:
        """Remove ``model_name``'s gate policy; False when none was attached."""
        return bool(
            self.store.write(
                lambda conn: (
                    conn.execute(
                        gate_policies.delete().where(gate_policies.c.model_name == model_name)
                    ).rowcount
                )
            )
        )

    @op("reader", on=("model", "model_name"))
    def policy_text(self, model_name: str) -> list[str | None] | None:
        """``[policy YAML, source]`` attached to ``model_name``, or None (a list: it crosses the
        server API as a JSON array)."""
        with self.store.read() as conn:
            r = conn.execute(
                sa.select(gate_policies.c.policy_text, gate_policies.c.source).where(
                    gate_policies.c.model_name == model_name
                )
            ).first()
        return [r[0], r[1]] if r else None
