"""What must hold before a rollout starts: one unfinished rollout per model, a server that
serves the model on a single-version policy (and not already the candidate), and a candidate that
passes the gates guarding ``production``. ``RolloutService.start`` calls these before it stores
anything.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._workspace import Workspace
from modelyard.errors import ConflictError, InvalidArgumentError
from modelyard.rollout._schema import rollouts
from modelyard.rollout._target import TargetError


def refuse_busy(conn: Connection, model: str) -> None:
    """Refuse a second rollout of ``model`` while one is unfinished."""
    busy = conn.execute(
        sa.select(rollouts.c.id, rollouts.c.state, rollouts.c.step_index).where(
            rollouts.c.active_model == model
        )
    ).first()
    if busy is not None:
        raise ConflictError(busy_message(busy.id, busy.state, busy.step_index, model))


def busy_message(rollout_id: int, state: str, step_index: int, model: str) -> str:
    """Why a second rollout of ``model`` is refused while rollout ``rollout_id`` is unfinished."""
    return (
        f"Rollout {rollout_id} of {model!r} is still {state} (step {step_index + 1}); one rollout "
        f"per model at a time. Wait for it, or `yard rollout abort {model}`."
    )


def refuse_failing_gates(ws: Workspace, model: str, version: int) -> None:
    """Refuse to start a rollout whose candidate fails the gates guarding ``production`` (it
    could never be promoted); the failed gates are listed."""
    from modelyard.errors import ModelyardError, ValidationFailed
    from modelyard.evaluation import GateFailed, attached_policy, run_gates

    policy = attached_policy(model, uri=ws)
    if policy is None or "production" not in policy.protected:
        return
    try:
        report = run_gates(f"{model}/{version}", policy, trigger="rollout", alias="production", uri=ws)
    except ModelyardError as exc:
        raise ValidationFailed(
            f"Refusing to start a rollout of {model!r} version {version}: the gates of the "
            f"policy attached to {model!r} could not run: {exc}"
        ) from exc
    if report.passed:
        return
    bad = report.failed
    lines = report.failures()
    raise GateFailed(
        f"Refusing to start a rollout of {model!r} version {version}: {len(bad)} of "
        f"{len(report.results)} gates "
        f"of the policy attached to {model!r} fail, so it could never be promoted to production:\n{lines}\n"
        f"Fix the model (check with `yard gate {model}/{version}`) before rolling it out.",
        report,
    )


def served_stable_version(base: dict[str, Any], versions: dict[str, int], model: str, to: int) -> int:
    """The version of ``model`` the server serves on all traffic (``base`` is its spec,
    ``versions`` its slots' versions); refused when a rollout may still drive it, when it serves
    another model, or when it already serves ``to``."""
    kind = (base.get("traffic") or {}).get("kind", "single")
    if kind != "single":
        raise ConflictError(
            f"The server's traffic policy is {kind!r}, not 'single': a rollout may still be driving it. "
            f"Finish it, or run `yard rollback {model}` to put one version back on all traffic."
        )
    slot = (base.get("traffic") or {}).get("model", "primary")
    ref = base["models"][slot] if isinstance(base["models"][slot], str) else base["models"][slot]["ref"]
    from modelyard.serving._spec import parse_model_ref

    served = parse_model_ref(ref)[0]
    if served != model:
        raise InvalidArgumentError(
            f"The server serves {served!r}, not {model!r}; point --server at the server of {model!r}."
        )
    stable = versions.get(slot)
    if stable is None:
        raise TargetError(f"The server did not report which version of {model!r} it serves.")
    if stable == to:
        raise ConflictError(f"Version {to} of {model!r} is already serving all traffic; nothing to roll out.")
    return stable
