"""Every change of a rollout's stored state, as service operations (``_rpc.op``).

Each operation takes JSON-able arguments (the rollout by id, the revision it was read at, the
client's clock reading) and runs one store transaction; on an ``http(s)://`` workspace it runs on
the server, so the events and audit rows it writes record the authenticated user. The model
server is never touched here: ``RolloutService`` (``_service.py``) talks to it from the
controller's or the CLI's process and calls these to record what it did.

A ``revision`` given to an operation makes it conditional: when the rollout changed since it was
read at that revision, nothing is written and :class:`RevisionConflict` is raised (a manual action
taken meanwhile wins; the controller re-reads). ``None`` applies the change to the rollout as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._rpc import op
from modelyard._shared import check_int64, now_ms, user_name
from modelyard.errors import ConflictError, InvalidArgumentError, NotFoundError, RevisionConflict
from modelyard.rollout._admission import refuse_busy
from modelyard.rollout._config import load_config
from modelyard.rollout._reads import Rollout, RolloutReads, _record
from modelyard.rollout._schema import rollout_events, rollout_steps, rollouts
from modelyard.rollout._state import RolloutState, StepResult, check_transition

__all__ = ["RevisionConflict", "RolloutWrites"]

_S = RolloutState
#: Event kinds a client may record with :meth:`RolloutWrites.record_event`.
EVENT_KINDS = frozenset({"start", "reapply", "rollback", "webhook_failed"})


class RolloutWrites(RolloutReads):
    """The store side of every rollout state change (one transaction each)."""

    # -- helpers (inside a transaction) ------------------------------------------------------------
    def _current(self, conn: Connection, model: str, rollout_id: int) -> Rollout:
        row = conn.execute(sa.select(rollouts).where(rollouts.c.id == int(rollout_id))).first()
        if row is None or row.model_name != model:
            raise NotFoundError(
                f"There is no rollout {rollout_id} of model {model!r}. List them with `yard rollout list`."
            )
        return _record(row)

    def _change(self, model: str, rollout_id: int, body: Callable[[Connection, Rollout], None]) -> None:
        """One write transaction on rollout ``rollout_id`` of ``model``: ``body(conn, its current row)``
        (NotFoundError when ``model`` has no such rollout)."""
        self.store.write(lambda conn: body(conn, self._current(conn, model, rollout_id)))

    def _changed(self, model: str, rollout_id: int, body: Callable[[Connection, Rollout], None]) -> Rollout:
        """:meth:`_change`, then the rollout as it is after the change."""
        self._change(model, rollout_id, body)
        return self.get(rollout_id)

    @staticmethod
    def _set_step(conn: Connection, rollout_id: int, idx: int, *where: Any, **values: Any) -> None:
        """Update step row ``idx`` of a rollout (only where ``where`` holds)."""
        t = rollout_steps
        conn.execute(t.update().where(t.c.rollout_id == rollout_id, t.c.idx == idx, *where).values(**values))

    @staticmethod
    def _set_quietly(conn: Connection, rollout_id: int, *where: Any, **values: Any) -> None:
        """Update a rollout's row where ``where`` holds, its revision unchanged (no state change:
        what a controller reads again, such as the live analysis or the step's start)."""
        conn.execute(rollouts.update().where(rollouts.c.id == rollout_id, *where).values(**values))

    def _update(self, conn: Connection, r: Rollout, revision: int | None, **values: Any) -> None:
        q = rollouts.update().where(rollouts.c.id == r.id)
        if revision is not None:
            q = q.where(rollouts.c.revision == revision)
        res = conn.execute(q.values(revision=rollouts.c.revision + 1, updated_at=now_ms(), **values))
        if res.rowcount != 1:
            raise RevisionConflict(r.id)

    def _event(
        self,
        conn: Connection,
        r: Rollout,
        kind: str,
        message: str,
        *,
        step: int | None = None,
        detail: dict[str, Any] | None = None,
        audit: bool = False,
        version: int | None = None,
    ) -> None:
        conn.execute(
            rollout_events.insert().values(
                rollout_id=r.id,
                at=now_ms(),
                kind=kind,
                step=step,
                message=message,
                detail=json.dumps(detail or {}, default=str),
                actor=user_name(),
            )
        )
        if audit:
            from modelyard.registry._service import RegistryService

            reg = RegistryService(self.ws)
            mid = reg._model_id(conn, r.model)
            reg._audit(
                conn,
                mid,
                f"rollout.{kind}",
                {
                    "rollout": r.id,
                    "strategy": r.strategy,
                    "stable": r.stable_version,
                    "candidate": r.candidate_version,
                    **({"step": step} if step is not None else {}),
                },
                version=version if version is not None else r.candidate_version,
                reason=message if len(message) <= 300 else message[:297] + "...",
            )

    # -- operations ------------------------------------------------------------------------------
    @op("writer", on=("model", "model"))
    def create(
        self,
        model: str,
        strategy: str,
        stable_version: int,
        candidate_version: int,
        config: dict[str, Any],
        base_spec: dict[str, Any],
        target: dict[str, Any],
    ) -> Rollout:
        """Store a new pending rollout (refused while another one of ``model`` is unfinished)."""
        check_int64("create", stable_version=stable_version, candidate_version=candidate_version)
        cfg = load_config(**{**config, "strategy": strategy})
        for name, v in (("stable_version", stable_version), ("candidate_version", candidate_version)):
            if v < 1:
                raise InvalidArgumentError(f"The {name} of a rollout is a version number from 1; got {v}.")
        if stable_version == candidate_version:
            raise InvalidArgumentError("A rollout needs a candidate version other than the stable one.")
        now = now_ms()

        def fn(conn: Connection) -> int:
            refuse_busy(conn, model)
            rid = conn.execute(
                rollouts.insert()
                .values(
                    model_name=model,
                    strategy=cfg.strategy,
                    state=_S.PENDING.value,
                    stable_version=stable_version,
                    candidate_version=candidate_version,
                    step_index=0,
                    step_started_at=None,
                    config=cfg.model_dump_json(),
                    base_spec=json.dumps(base_spec),
                    target=json.dumps(target),
                    active_model=model,
                    revision=0,
                    created_by=user_name(),
                    created_at=now,
                    updated_at=now,
                )
                .returning(rollouts.c.id)
            ).scalar_one()
            return int(rid)

        try:
            rid = self.store.write(fn)
        except sa.exc.IntegrityError:
            raise ConflictError(
                f"Another rollout of {model!r} started at the same time; one per model at a time."
            ) from None
        return self.get(rid)

    @op("writer", on=("model", "model"))
    def record_event(
        self,
        model: str,
        rollout_id: int,
        kind: str,
        message: str,
        step: int | None = None,
        detail: dict[str, Any] | None = None,
        audit: bool = False,
        version: int | None = None,
    ) -> None:
        """Append an event to the rollout's log (and the model's audit trail when ``audit``)."""
        check_int64("record_event", rollout_id=rollout_id, step=step, version=version)
        if kind not in EVENT_KINDS:
            raise InvalidArgumentError(
                f"The 'kind' parameter of record_event must be one of {', '.join(sorted(EVENT_KINDS))}. "
                f"Got {kind!r} instead."
            )

        def fn(conn: Connection, r: Rollout) -> None:
            self._event(conn, r, kind, message, step=step, detail=detail, audit=audit, version=version)

        self._change(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_analysis(self, model: str, rollout_id: int, revision: int, analysis_json: str) -> None:
        """Store the latest analysis (JSON) of the current step; nothing when the rollout moved on."""
        check_int64("record_analysis", rollout_id=rollout_id, revision=revision)
        try:
            if not isinstance(json.loads(analysis_json), dict):
                raise ValueError("not an object")
        except ValueError as exc:
            raise InvalidArgumentError(
                f"The 'analysis_json' parameter of record_analysis must be a JSON object ({exc})."
            ) from None

        def fn(conn: Connection, r: Rollout) -> None:
            self._set_quietly(conn, r.id, rollouts.c.revision == revision, analysis=analysis_json)

        self._change(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_step(
        self,
        model: str,
        rollout_id: int,
        revision: int | None,
        idx: int,
        at: int,
        reason: str | None = None,
    ) -> Rollout:
        """Move the rollout to step ``idx`` (started at ``at``, ms): state progressing, a fresh step
        row, a ``step`` event."""
        check_int64("record_step", rollout_id=rollout_id, revision=revision, idx=idx, at=at)

        def fn(conn: Connection, r: Rollout) -> None:
            if not 0 <= idx < len(r.steps):
                raise InvalidArgumentError(
                    f"{r.describe()} has steps 0 to {len(r.steps) - 1}; got step {idx}."
                )
            step = r.steps[idx]
            if r.state is not _S.PROGRESSING:
                check_transition(r.state, _S.PROGRESSING, "advance", r.describe())
            self._update(
                conn,
                r,
                revision,
                state=_S.PROGRESSING.value,
                step_index=idx,
                step_started_at=at,
                analysis=None,
                reason=reason,
            )
            conn.execute(
                rollout_steps.delete().where(rollout_steps.c.rollout_id == r.id, rollout_steps.c.idx == idx)
            )
            conn.execute(
                rollout_steps.insert().values(
                    rollout_id=r.id,
                    idx=idx,
                    name=step.name,
                    traffic=json.dumps(step.traffic),
                    baseline=None,
                    started_at=at,
                )
            )
            msg = f"step {idx + 1}/{len(r.steps)}: {step.name} for {step.window_s:g}s"
            self._event(conn, r, "step", msg, step=idx, detail={"traffic": step.traffic}, audit=True)

        return self._changed(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_baseline(
        self, model: str, rollout_id: int, idx: int, baseline: dict[str, Any], at: int
    ) -> None:
        """Store the metrics snapshot the window of step ``idx`` starts from (taken at ``at``, ms)."""
        check_int64("record_baseline", rollout_id=rollout_id, idx=idx, at=at)

        def fn(conn: Connection, r: Rollout) -> None:
            self._set_step(conn, r.id, idx, baseline=json.dumps(baseline), started_at=at)
            self._set_quietly(conn, r.id, rollouts.c.step_index == idx, step_started_at=at)

        self._change(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_step_end(
        self,
        model: str,
        rollout_id: int,
        idx: int,
        result: StepResult,
        message: str,
        detail: dict[str, Any] | None = None,
        audit: bool = False,
    ) -> None:
        """Record the result of step ``idx`` and an ``analysis`` event saying why, together."""
        check_int64("record_step_end", rollout_id=rollout_id, idx=idx)

        def fn(conn: Connection, r: Rollout) -> None:
            self._set_step(conn, r.id, idx, result=result.value, ended_at=now_ms())
            self._event(conn, r, "analysis", message, step=idx, detail=detail, audit=audit)

        self._change(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_hold(
        self, model: str, rollout_id: int, revision: int | None, reason: str, audit: bool = True
    ) -> Rollout:
        """Pause the rollout at its step with ``reason`` and a ``pause`` event, together."""
        check_int64("record_hold", rollout_id=rollout_id, revision=revision)

        def fn(conn: Connection, r: Rollout) -> None:
            if revision is None or r.revision == revision:
                check_transition(r.state, _S.PAUSED, "pause", r.describe())
            self._update(conn, r, revision, state=_S.PAUSED.value, reason=reason)
            self._event(conn, r, "pause", reason, step=r.step_index, audit=audit)

        return self._changed(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_resume(self, model: str, rollout_id: int, reason: str, at: int) -> Rollout:
        """Resume a paused rollout at its step with a fresh window starting at ``at`` (ms)."""
        check_int64("record_resume", rollout_id=rollout_id, at=at)

        def fn(conn: Connection, r: Rollout) -> None:
            check_transition(r.state, _S.PROGRESSING, "resume", r.describe())
            self._update(conn, r, None, state=_S.PROGRESSING.value, reason=reason, step_started_at=at)
            self._event(conn, r, "resume", reason, step=r.step_index, audit=True)

        return self._changed(model, rollout_id, fn)

    @op("writer", on=("model", "model"))
    def record_close(
        self,
        model: str,
        rollout_id: int,
        revision: int | None,
        state: RolloutState,
        reason: str,
        kind: str,
        action: str,
    ) -> Rollout:
        """Finish the rollout in ``state`` (promoted / failed / aborted): its lease released, its
        step ended, an event (``kind``: promote or abort) and an audit row naming the version served."""
        check_int64("record_close", rollout_id=rollout_id, revision=revision)
        if not state.finished:
            raise InvalidArgumentError(
                f"The 'state' parameter of record_close must be promoted, failed or aborted. "
                f"Got {state.value!r} instead."
            )
        if kind not in ("promote", "abort"):
            raise InvalidArgumentError(
                f"The 'kind' parameter of record_close must be promote or abort. Got {kind!r} instead."
            )
        now = now_ms()

        def fn(conn: Connection, cur: Rollout) -> None:
            version = cur.candidate_version if state is _S.PROMOTED else cur.stable_version
            if revision is not None and cur.revision != revision:
                raise RevisionConflict(cur.id)
            check_transition(cur.state, state, action, cur.describe())
            self._update(
                conn,
                cur,
                cur.revision,
                state=state.value,
                active_model=None,
                finished_at=now,
                reason=reason,
                lease_owner=None,
                lease_until=None,
            )
            self._set_step(conn, cur.id, cur.step_index, rollout_steps.c.ended_at.is_(None), ended_at=now)
            self._event(
                conn,
                cur,
                kind,
                reason,
                step=cur.step_index,
                audit=True,
                version=version,
                detail={"state": state.value, "serving": version},
            )

        return self._changed(model, rollout_id, fn)

    @op("writer", on=("rollout", "rollout_id"))
    def take_lease(self, rollout_id: int, owner: str, lease_ms: int) -> bool:
        """Make ``owner`` the controller driving an unfinished rollout for ``lease_ms`` from now;
        False when another owner holds an unexpired lease (or the rollout is finished). The
        server's clock decides, so controllers on several machines agree."""
        check_int64("take_lease", rollout_id=rollout_id, lease_ms=lease_ms)
        if not owner or len(owner) > 64 or not 1 <= lease_ms <= 10**12:
            raise InvalidArgumentError(
                "A lease needs an owner of 1 to 64 characters and a lease_ms from 1 to 10**12; got "
                f"owner={owner!r}, lease_ms={lease_ms}."
            )
        now = now_ms()

        def fn(conn: Connection) -> bool:
            res = conn.execute(
                rollouts.update()
                .where(rollouts.c.id == int(rollout_id), rollouts.c.active_model.is_not(None))
                .where(
                    sa.or_(
                        rollouts.c.lease_owner.is_(None),
                        rollouts.c.lease_owner == owner,
                        rollouts.c.lease_until < now,
                    )
                )
                .values(lease_owner=owner, lease_until=now + lease_ms)
            )
            return bool(res.rowcount == 1)

        return bool(self.store.write(fn))

    @op("writer", on=("rollout", "rollout_id"))
    def release_lease(self, rollout_id: int, owner: str) -> None:
        """Give up ``owner``'s lease on a rollout (nothing when another owner holds it)."""
        check_int64("release_lease", rollout_id=rollout_id)

        def fn(conn: Connection) -> None:
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == int(rollout_id), rollouts.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

        self.store.write(fn)
