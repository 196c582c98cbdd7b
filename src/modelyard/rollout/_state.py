"""The rollout lifecycle: states, the transitions allowed between them, step results.

::

    pending ──► progressing ──► promoted
       │          │   ▲  │     (progressing moves from step to step without a transition)
       │          ▼   │  └────► failed    (the analysis failed: rolled back)
       │         paused ──────► promoted  (a human promotes)
       └──────────┴───────────► aborted   (a human aborts or rolls back)
"""

from __future__ import annotations

from enum import StrEnum

from modelyard.errors import RolloutStateError

__all__ = ["RolloutState", "RolloutStateError", "StepResult", "check_transition"]


class RolloutState(StrEnum):
    PENDING = "pending"
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTED = "promoted"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def finished(self) -> bool:
        return self in (RolloutState.PROMOTED, RolloutState.FAILED, RolloutState.ABORTED)


class StepResult(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


_S = RolloutState
TRANSITIONS: dict[RolloutState, frozenset[RolloutState]] = {
    _S.PENDING: frozenset({_S.PROGRESSING, _S.ABORTED, _S.FAILED}),
    _S.PROGRESSING: frozenset({_S.PAUSED, _S.PROMOTED, _S.FAILED, _S.ABORTED}),
    _S.PAUSED: frozenset({_S.PROGRESSING, _S.PROMOTED, _S.ABORTED}),
    _S.PROMOTED: frozenset(),
    _S.FAILED: frozenset(),
    _S.ABORTED: frozenset(),
}

_WHY = {
    _S.PROMOTED: "it finished: the candidate was promoted",
    _S.FAILED: "the analysis failed it and traffic was rolled back to the stable version",
    _S.ABORTED: "it was aborted and traffic was rolled back to the stable version",
    _S.PAUSED: "it is paused",
    _S.PROGRESSING: "it is progressing",
    _S.PENDING: "it has not started yet",
}


def check_transition(current: RolloutState, to: RolloutState, action: str, what: str) -> None:
    """Raise :class:`RolloutStateError` naming ``current`` when ``action`` may not move it to ``to``."""
    if to in TRANSITIONS[current]:
        return
    hint = ""
    if current.finished:
        hint = " Start a new rollout with `yard rollout start`."
    elif action == "resume":
        hint = " Only a paused rollout resumes."
    elif action == "pause":
        hint = " Only a progressing rollout pauses."
    raise RolloutStateError(f"Cannot {action} {what}: it is {current.value} ({_WHY[current]}).{hint}")
