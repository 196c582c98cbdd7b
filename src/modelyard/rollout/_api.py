"""Module-level functions: ``yard.rollout.start(...)``, ``status``, ``pause`` ... (one workspace URI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelyard.rollout._controller import Controller
from modelyard.rollout._service import Rollout, RolloutService

__all__ = ["abort", "pause", "promote", "resume", "rollback", "run", "start", "status"]

Uri = str | None


def start(
    model: str,
    to: int,
    *,
    target: Any,
    strategy: str = "canary",
    uri: Uri = None,
    say: Callable[[str], None] | None = None,
    **options: Any,
) -> Rollout:
    """Start a rollout of ``model`` version ``to`` on ``target`` (server URL or ModelServer).
    Options are :class:`~modelyard.rollout.RolloutConfig` fields (``steps``, ``interval_s`` ...)."""
    return RolloutService(uri, say=say).start(model, to, target=target, strategy=strategy, **options)


def run(
    rollout_id: int | None = None,
    *,
    target: Any = None,
    uri: Uri = None,
    timeout: float | None = None,
    say: Callable[[str], None] | None = None,
) -> list[Rollout]:
    """Drive a rollout (or all active ones) until finished or paused, or ``timeout`` seconds."""
    return Controller(uri, target=target, say=say).run(rollout_id, timeout=timeout)


def status(model: str, *, uri: Uri = None) -> dict[str, Any]:
    """The newest rollout of ``model`` with its events."""
    svc = RolloutService(uri)
    r = svc.latest(model)
    return {**r.to_dict(), "events": [e.to_dict() for e in svc.events(r.id)]}


def pause(model: str, *, reason: str | None = None, uri: Uri = None) -> Rollout:
    return RolloutService(uri).pause(model, reason=reason)


def resume(model: str, *, reason: str | None = None, uri: Uri = None) -> Rollout:
    return RolloutService(uri).resume(model, reason=reason)


def promote(model: str, *, target: Any = None, reason: str | None = None, uri: Uri = None) -> Rollout:
    return RolloutService(uri).promote(model, target=target, reason=reason)


def abort(model: str, *, target: Any = None, reason: str | None = None, uri: Uri = None) -> Rollout:
    return RolloutService(uri).abort(model, target=target, reason=reason)


def rollback(model: str, *, target: Any = None, reason: str | None = None, uri: Uri = None) -> dict[str, Any]:
    """Emergency rollback (see :meth:`RolloutService.rollback`)."""
    return RolloutService(uri).rollback(model, target=target, reason=reason)
