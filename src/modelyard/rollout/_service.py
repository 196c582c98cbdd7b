"""Rollouts: start, manual actions, finishing (promote / roll back), events.
The records and the reads are in ``_reads.py``, the store transactions of every change of state
(service operations, run on the server when the store is ``http(s)://``) in ``_writes.py``; this
module drives the model server (the target) from the caller's process and records each change.

The controller (``_controller.py``) drives progressing rollouts step by step; every manual action
here (pause, resume, promote, abort, rollback) works without it, straight on the store and the
model server, so ``yard rollback`` works in one command when the controller is down.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from modelyard._redact import redact_webhook, scrub_urls
from modelyard._rpc import service
from modelyard.errors import ConflictError, InvalidArgumentError, ModelyardError, NotFoundError
from modelyard.rollout._admission import busy_message, refuse_failing_gates, served_stable_version
from modelyard.rollout._config import load_config, webhook_url
from modelyard.rollout._reads import Rollout, RolloutEvent, _shown_config
from modelyard.rollout._state import RolloutState, StepResult, check_transition
from modelyard.rollout._target import TargetError, target_from
from modelyard.rollout._writes import RevisionConflict, RolloutWrites

__all__ = ["RevisionConflict", "Rollout", "RolloutEvent", "RolloutService"]

log = logging.getLogger("modelyard.rollout")

_S = RolloutState


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


@service("rollout")
class RolloutService(RolloutWrites):
    """Rollouts of one workspace: starting them and every change of their state."""

    # -- recording (the store side is in _writes.py) ---------------------------------------------
    def record(self, r: Rollout, kind: str, message: str, **kw: Any) -> None:
        """Append an event (outside any other change)."""
        self.record_event(r.model, r.id, kind, message, **kw)

    def save_analysis(self, r: Rollout, analysis_json: str) -> None:
        """Store the latest analysis of ``r``'s step (shown live by ``yard rollout status``); nothing
        when ``r`` changed meanwhile (its revision moved on)."""
        self.record_analysis(r.model, r.id, r.revision, analysis_json)

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
        self.record_step_end(
            r.model, r.id, r.step_index, result, message, detail=_jsonable(detail), audit=audit
        )

    def hold(self, r: Rollout, reason: str, *, check_revision: bool, audit: bool = True) -> Rollout:
        """Pause ``r`` at its step with ``reason`` and a ``pause`` event, together. With
        ``check_revision`` a change made meanwhile wins (:class:`RevisionConflict`)."""
        check_transition(r.state, RolloutState.PAUSED, "pause", r.describe())
        return self.record_hold(r.model, r.id, r.revision if check_revision else None, reason, audit=audit)

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
        busy = self.list_rollouts(model, active=True)
        if busy:
            raise ConflictError(busy_message(busy[0].id, busy[0].state.value, busy[0].step_index, model))
        tgt = target_from({}, target)
        base = tgt.spec()
        stable = served_stable_version(base, tgt.versions(), model, to)
        refuse_failing_gates(self.ws, model, to)
        r = self.create(model, cfg.strategy, stable, to, cfg.model_dump(mode="json"), base, tgt.describe())
        rid = r.id
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
        if r.state is not RolloutState.PROGRESSING:
            check_transition(r.state, RolloutState.PROGRESSING, "advance", r.describe())
        r = self.record_step(
            r.model, r.id, r.revision if check_revision else None, idx, self.clock(), reason=reason
        )
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
        self.record_baseline(r.model, r.id, r.step_index, _jsonable(base), self.clock())

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
        return self.record_close(
            r.model,
            r.id,
            r.revision if check_revision else None,
            state,
            reason,
            kind,
            actor_action or kind,
        )

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
        return self.record_resume(r.model, r.id, why, self.clock())

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


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (numpy numbers and the like become floats or strings)."""
    return None if value is None else json.loads(json.dumps(value, default=str))
