"""Rollouts in the store: start, manual actions, finishing (promote / roll back), events.
The records and the reads are in ``_reads.py``; this module holds every change of state.

The controller (``_controller.py``) drives progressing rollouts step by step; every manual action
here (pause, resume, promote, abort, rollback) works without it, straight on the store and the
model server, so ``yard rollback`` works in one command when the controller is down.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._redact import redact_webhook, scrub_urls
from modelyard._shared import now_ms, user_name
from modelyard.errors import ConflictError, InvalidArgumentError, ModelyardError, NotFoundError
from modelyard.rollout._admission import refuse_busy, refuse_failing_gates, served_stable_version
from modelyard.rollout._config import load_config, webhook_url
from modelyard.rollout._reads import Rollout, RolloutEvent, RolloutReads, _record, _shown_config
from modelyard.rollout._schema import rollout_events, rollout_steps, rollouts
from modelyard.rollout._state import RolloutState, StepResult, check_transition
from modelyard.rollout._target import TargetError, target_from

__all__ = ["Rollout", "RolloutEvent", "RolloutService"]

log = logging.getLogger("modelyard.rollout")

_S = RolloutState


class RevisionConflict(ConflictError):
    """Raised when a rollout changed since it was read (the controller re-reads it and carries on)."""

    def __init__(self, rollout_id: int) -> None:
        super().__init__(
            f"Rollout {rollout_id} changed while this action ran; read it again "
            "(yard rollout status) and retry."
        )
        self.rollout_id = rollout_id


def spec_for(r: Rollout, traffic: dict[str, Any] | None, version: int | None = None) -> dict[str, Any]:
    """The deployment spec of a step (``traffic`` over slots stable/candidate) or, with
    ``traffic=None``, the single-version spec of ``version``. Batching, fallback and limits are
    the ones the server had when the rollout started."""
    spec = dict(r.base_spec)
    base_models: dict[str, Any] = spec.get("models") or {}
    first: dict[str, Any] = next(iter(base_models.values()), {})
    warmup = first.get("warmup", 3) if base_models else 3
    spec["endpoint"] = spec.get("endpoint") or r.model
    if traffic is None:
        spec["models"] = {"primary": {"ref": f"{r.model}/{version}", "warmup": warmup}}
        spec["traffic"] = {"kind": "single", "model": "primary"}
    else:
        spec["models"] = {
            "stable": {"ref": f"{r.model}/{r.stable_version}", "warmup": warmup},
            "candidate": {"ref": f"{r.model}/{r.candidate_version}", "warmup": warmup},
        }
        spec["traffic"] = traffic
    return spec


class RolloutService(RolloutReads):
    """Rollouts of one workspace: starting them and every change of their state."""

    # -- writing helpers -------------------------------------------------------------------------
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

    def record(self, r: Rollout, kind: str, message: str, **kw: Any) -> None:
        """Append an event (outside any other change)."""
        self.store.write(lambda conn: self._event(conn, r, kind, message, **kw))

    def take_lease(self, rollout_id: int, owner: str, lease_ms: int) -> bool:
        """Make ``owner`` the controller driving an unfinished rollout for ``lease_ms`` from now;
        False when another owner holds an unexpired lease (or the rollout is finished)."""
        now = now_ms()

        def fn(conn: Connection) -> bool:
            res = conn.execute(
                rollouts.update()
                .where(rollouts.c.id == rollout_id, rollouts.c.active_model.is_not(None))
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

    def release_lease(self, rollout_id: int, owner: str) -> None:
        """Give up ``owner``'s lease on a rollout (nothing when another owner holds it)."""

        def fn(conn: Connection) -> None:
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == rollout_id, rollouts.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
            )

        self.store.write(fn)

    def save_analysis(self, r: Rollout, analysis_json: str) -> None:
        """Store the latest analysis of ``r``'s step (shown live by ``yard rollout status``); nothing
        when ``r`` changed meanwhile (its revision moved on)."""

        def fn(conn: Connection) -> None:
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == r.id, rollouts.c.revision == r.revision)
                .values(analysis=analysis_json)
            )

        self.store.write(fn)

    def end_step(
        self,
        r: Rollout,
        result: StepResult,
        message: str,
        *,
        detail: dict[str, Any] | None = None,
        audit: bool = False,
    ) -> None:
        """Record the result of ``r``'s current step and an ``analysis`` event saying why, together."""

        def fn(conn: Connection) -> None:
            conn.execute(
                rollout_steps.update()
                .where(rollout_steps.c.rollout_id == r.id, rollout_steps.c.idx == r.step_index)
                .values(result=result.value, ended_at=now_ms())
            )
            self._event(conn, r, "analysis", message, step=r.step_index, detail=detail, audit=audit)

        self.store.write(fn)

    def hold(self, r: Rollout, reason: str, *, check_revision: bool, audit: bool = True) -> Rollout:
        """Pause ``r`` at its step with ``reason`` and a ``pause`` event, together. With
        ``check_revision`` a change made meanwhile wins (:class:`RevisionConflict`)."""
        check_transition(r.state, _S.PAUSED, "pause", r.describe())

        def fn(conn: Connection) -> None:
            self._update(conn, r, check_revision=check_revision, state=_S.PAUSED.value, reason=reason)
            self._event(conn, r, "pause", reason, step=r.step_index, audit=audit)

        self.store.write(fn)
        return self.get(r.id)

    def _update(self, conn: Connection, r: Rollout, *, check_revision: bool, **values: Any) -> None:
        q = rollouts.update().where(rollouts.c.id == r.id)
        if check_revision:
            q = q.where(rollouts.c.revision == r.revision)
        res = conn.execute(q.values(revision=rollouts.c.revision + 1, updated_at=now_ms(), **values))
        if res.rowcount != 1:
            raise RevisionConflict(r.id)

    def notify(self, r: Rollout, kind: str, text: str, detail: dict[str, Any] | None = None) -> None:
        """POST a Slack-compatible message to the rollout's webhooks; failures become events."""
        if not r.config.webhooks:
            return
        import httpx

        body = {
            "text": text,
            "username": "modelyard",
            "modelyard": {
                "event": kind,
                "rollout": r.id,
                "model": r.model,
                "stable": r.stable_version,
                "candidate": r.candidate_version,
                "strategy": r.strategy,
                **(detail or {}),
            },
        }
        for ref in r.config.webhooks:
            try:
                httpx.post(webhook_url(ref), json=body, timeout=5.0).raise_for_status()
            except ModelyardError as exc:  # the reference does not resolve (variable unset, file gone)
                self.record(r, "webhook_failed", f"webhook {redact_webhook(ref)} failed: {exc}")
            except Exception as exc:  # an HTTP error quotes the URL: keep only its host
                self.record(
                    r,
                    "webhook_failed",
                    f"webhook {redact_webhook(ref)} failed: {scrub_urls(f'{type(exc).__name__}: {exc}')}",
                )

    # -- start -----------------------------------------------------------------------------------
    def start(
        self, model: str, to: int, *, target: Any = None, strategy: str = "canary", **options: Any
    ) -> Rollout:
        """Start rolling ``model`` version ``to`` out on the server ``target`` (a URL, a
        ModelServer or a target); traffic moves to the first step before this returns."""
        from modelyard.registry._service import RegistryService

        strategy = {"blue-green": "blue_green", "a/b": "ab"}.get(strategy, strategy)
        cfg = load_config(strategy=strategy, **options)
        for ref in cfg.webhooks:  # a reference that does not resolve here fails now, not at the first event
            webhook_url(ref)
        if isinstance(to, bool) or not isinstance(to, int) or to < 1:
            raise InvalidArgumentError(
                f"The 'to' parameter of rollout start must be a version number from 1. Got {to!r} instead."
            )
        cand = RegistryService(self.ws).get_version(model, to)
        if cand.status != "ready":
            raise ConflictError(
                f"Version {to} of {model!r} is {cand.status}; only a ready version can be rolled out."
            )
        if target is None:
            raise InvalidArgumentError(
                "A rollout needs the model server it changes: give --server http://HOST:PORT (or "
                "YARD_SERVE_URL)."
            )
        with self.store.read() as conn:
            refuse_busy(conn, model)
        tgt = target_from({}, target)
        base = tgt.spec()
        stable = served_stable_version(base, tgt.versions(), model, to)
        refuse_failing_gates(self.ws, model, to)
        now = now_ms()

        def fn(conn: Connection) -> int:
            refuse_busy(conn, model)
            rid = conn.execute(
                rollouts.insert()
                .values(
                    model_name=model,
                    strategy=cfg.strategy,
                    state=_S.PENDING.value,
                    stable_version=stable,
                    candidate_version=to,
                    step_index=0,
                    step_started_at=None,
                    config=cfg.model_dump_json(),
                    base_spec=json.dumps(base),
                    target=json.dumps(tgt.describe()),
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
        r = self.get(rid)
        steps = " → ".join(s.name for s in r.steps)
        msg = f"started: {r.describe()}; steps {steps}"
        self.record(r, "start", msg, detail={"config": _shown_config(cfg)}, audit=True)
        self.say(f"[rollout {r.id}] {msg}")
        self.notify(r, "start", f":rocket: {model}: {msg}")
        try:
            return self.advance(r, tgt, 0, check_revision=True)
        except TargetError as exc:
            r = self.get(rid)
            self._close(
                r, _S.FAILED, f"the server refused the first step: {exc}", kind="abort", check_revision=False
            )
            raise

    # -- steps -----------------------------------------------------------------------------------
    def advance(
        self, r: Rollout, tgt: Any, idx: int, *, check_revision: bool, reason: str | None = None
    ) -> Rollout:
        """Move ``r`` to step ``idx``: store it, apply its traffic, take the window's baseline."""
        step = r.steps[idx]
        now = self.clock()

        def fn(conn: Connection) -> None:
            if r.state is not _S.PROGRESSING:
                check_transition(r.state, _S.PROGRESSING, "advance", r.describe())
            self._update(
                conn,
                r,
                check_revision=check_revision,
                state=_S.PROGRESSING.value,
                step_index=idx,
                step_started_at=now,
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
                    started_at=now,
                )
            )
            msg = f"step {idx + 1}/{len(r.steps)}: {step.name} for {step.window_s:g}s"
            self._event(conn, r, "step", msg, step=idx, detail={"traffic": step.traffic}, audit=True)

        self.store.write(fn)
        r = self.get(r.id)
        self.say(f"[rollout {r.id}] step {idx + 1}/{len(r.steps)}: {step.name}")
        self.apply_step(r, tgt)
        self.notify(
            r,
            "step",
            f":arrow_forward: {r.model}: step {idx + 1}/{len(r.steps)} {step.name} "
            f"(version {r.candidate_version})",
        )
        return self.get(r.id)

    def apply_step(self, r: Rollout, tgt: Any) -> None:
        """Swap the server to the current step's traffic and store the window's baseline."""
        from modelyard.rollout._analysis import snapshot

        tgt.apply(spec_for(r, r.step.traffic))
        base = snapshot(tgt.scrape(), r.model)
        now = self.clock()

        def fn(conn: Connection) -> None:
            conn.execute(
                rollout_steps.update()
                .where(rollout_steps.c.rollout_id == r.id, rollout_steps.c.idx == r.step_index)
                .values(baseline=json.dumps(base), started_at=now)
            )
            conn.execute(
                rollouts.update()
                .where(rollouts.c.id == r.id, rollouts.c.step_index == r.step_index)
                .values(step_started_at=now)
            )

        self.store.write(fn)

    # -- finishing -------------------------------------------------------------------------------
    def _close(
        self,
        r: Rollout,
        state: RolloutState,
        reason: str,
        *,
        kind: str,
        check_revision: bool,
        actor_action: str | None = None,
    ) -> Rollout:
        now = now_ms()
        version = r.candidate_version if state is _S.PROMOTED else r.stable_version

        def fn(conn: Connection) -> None:
            cur = _record(conn.execute(sa.select(rollouts).where(rollouts.c.id == r.id)).first())
            check_transition(cur.state, state, actor_action or kind, cur.describe())
            self._update(
                conn,
                r if check_revision else cur,
                check_revision=True,
                state=state.value,
                active_model=None,
                finished_at=now,
                reason=reason,
                lease_owner=None,
                lease_until=None,
            )
            conn.execute(
                rollout_steps.update()
                .where(
                    rollout_steps.c.rollout_id == r.id,
                    rollout_steps.c.idx == cur.step_index,
                    rollout_steps.c.ended_at.is_(None),
                )
                .values(ended_at=now)
            )
            self._event(
                conn,
                r,
                kind,
                reason,
                step=cur.step_index,
                audit=True,
                version=version,
                detail={"state": state.value, "serving": version},
            )

        self.store.write(fn)
        return self.get(r.id)

    def promote(self, model: str, *, target: Any = None, reason: str | None = None) -> Rollout:
        """Send all traffic to the candidate of ``model``'s rollout and move the ``production`` alias to
        it (audited)."""
        return self.promote_rollout(self.latest(model), target=target, reason=reason)

    def promote_rollout(
        self, r: Rollout, *, target: Any = None, reason: str | None = None, check_revision: bool = False
    ) -> Rollout:
        """Promote rollout ``r``; with ``check_revision`` a change made to it meanwhile wins
        (:class:`RevisionConflict`)."""
        from modelyard.registry._service import RegistryService

        check_transition(r.state, _S.PROMOTED, "promote", r.describe())
        why = reason or "promoted by hand"
        tgt = target_from(r.target, target)
        # The alias first: a gate policy attached to the model may refuse it (GateFailed), and then
        # the traffic must not have moved. The controller fails the rollout and rolls back on that.
        RegistryService(self.ws).set_alias(
            r.model, "production", r.candidate_version, reason=f"rollout {r.id}: {why}"
        )
        try:
            tgt.apply(spec_for(r, None, r.candidate_version))
        except Exception as exc:
            raise TargetError(
                f"production now names version {r.candidate_version} of {r.model!r}, but the server "
                "could not be "
                f"switched to it ({type(exc).__name__}: {exc}); rollout {r.id} is still "
                f"{r.state.value}. Retry "
                f"`yard rollout promote {r.model}`, or `yard rollback {r.model}`."
            ) from exc
        r = self._close(r, _S.PROMOTED, why, kind="promote", check_revision=check_revision)
        self.say(f"[rollout {r.id}] promoted version {r.candidate_version} of {r.model!r}: {why}")
        self.notify(
            r, "promote", f":white_check_mark: {r.model}: version {r.candidate_version} promoted — {why}"
        )
        return r

    def roll_back(
        self,
        r: Rollout,
        state: RolloutState,
        reason: str,
        *,
        target: Any = None,
        check_revision: bool = False,
        action: str = "abort",
    ) -> Rollout:
        """All traffic back to the stable version first, then record ``state`` (failed / aborted)."""
        check_transition(r.state, state, action, r.describe())
        error = None
        try:
            target_from(r.target, target).apply(spec_for(r, None, r.stable_version))
        except Exception as exc:  # record the rollback even when the server is gone; say so
            error = f"{type(exc).__name__}: {exc}"
        why = reason + (f" (the server could not be reached to restore traffic: {error})" if error else "")
        r = self._close(r, state, why, kind="abort", check_revision=check_revision, actor_action=action)
        self.say(
            f"[rollout {r.id}] {'failed' if state is _S.FAILED else 'aborted'}: traffic back on version "
            f"{r.stable_version}; {why}"
        )
        self.notify(
            r,
            "abort",
            f":rotating_light: {r.model}: rollout of version {r.candidate_version} "
            f"{state.value}, traffic back on version {r.stable_version} — {why}",
        )
        if error:
            raise TargetError(f"Rollout {r.id} is {state.value}, but traffic could not be restored: {error}")
        return r

    # -- manual actions --------------------------------------------------------------------------
    def _active(self, model: str) -> Rollout:
        r = self.latest(model)
        return r

    def pause(self, model: str, *, reason: str | None = None) -> Rollout:
        return self.hold(self._active(model), reason or "paused by hand", check_revision=False)

    def resume(self, model: str, *, reason: str | None = None) -> Rollout:
        """Resume a paused rollout at its step, with a fresh window."""
        r = self._active(model)
        check_transition(r.state, _S.PROGRESSING, "resume", r.describe())
        why = reason or "resumed by hand"

        def fn(conn: Connection) -> None:
            self._update(
                conn,
                r,
                check_revision=False,
                state=_S.PROGRESSING.value,
                reason=why,
                step_started_at=self.clock(),
            )
            self._event(conn, r, "resume", why, step=r.step_index, audit=True)

        self.store.write(fn)
        return self.get(r.id)

    def abort(self, model: str, *, target: Any = None, reason: str | None = None) -> Rollout:
        """Stop the rollout: all traffic back to the stable version."""
        r = self._active(model)
        return self.roll_back(r, _S.ABORTED, reason or "aborted by hand", target=target)

    def rollback(self, model: str, *, target: Any = None, reason: str | None = None) -> dict[str, Any]:
        """Emergency: production alias and traffic back to the previous version, now.

        A rollout still running is aborted (traffic to its stable version). After a promoted
        rollout, the alias goes back to its stable version and the server serves it alone. With
        no rollout, the registry's alias rollback is used and, given a server, it serves that
        version alone. Works without the controller; the store and the server are edited directly.
        """
        from modelyard.registry._service import RegistryService

        why = reason or "emergency rollback"
        reg = RegistryService(self.ws)
        try:
            r: Rollout | None = self.latest(model)
        except NotFoundError:
            r = None
        if r is not None and not r.state.finished:
            r = self.roll_back(r, _S.ABORTED, why, target=target, action="roll back")
            return {"rollout": r.id, "serving": r.stable_version, "alias_moved": False}
        if r is not None and r.state in (
            _S.FAILED,
            _S.ABORTED,
        ):  # already rolled back: make sure of the traffic
            target_from(r.target, target).apply(spec_for(r, None, r.stable_version))
            self.record(r, "rollback", f"traffic confirmed on version {r.stable_version}: {why}")
            return {"rollout": r.id, "serving": r.stable_version, "alias_moved": False}
        if r is not None and r.state is _S.PROMOTED:
            mv = reg.set_alias(
                model, "production", r.stable_version, reason=f"rollback of rollout {r.id}: {why}"
            )
            target_from(r.target, target).apply(spec_for(r, None, r.stable_version))
            self.record(
                r, "rollback", f"rolled back after promotion: {why}", audit=True, version=r.stable_version
            )
            self.notify(r, "abort", f":rewind: {model}: rolled back to version {mv.version} — {why}")
            return {"rollout": r.id, "serving": mv.version, "alias_moved": True}
        mv = reg.rollback(model, "production", reason=why)
        if target is not None:
            from modelyard.rollout._target import target_from as tf

            tgt = tf({}, target)
            base = tgt.spec()
            base["models"] = {"primary": {"ref": f"{model}/{mv.version}"}}
            base["traffic"] = {"kind": "single", "model": "primary"}
            base["endpoint"] = base.get("endpoint") or model
            tgt.apply(base)
        return {"rollout": r.id if r else None, "serving": mv.version, "alias_moved": True}
