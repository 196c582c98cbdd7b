"""The rollout controller: drives progressing rollouts step by step from the store.

Everything it knows is in the store (state, step, the window's baseline, the latest analysis), so
a controller that stops and starts again resumes each rollout at the step it was in. A lease
(``lease_owner`` / ``lease_until``) keeps two controllers from driving one rollout; changes are
conditional on the rollout's ``revision``, so a manual action (pause, abort, rollback) taken
meanwhile wins and the controller re-reads.

Each tick of a progressing rollout scrapes the server, analyses the step's window, stores the
analysis (``yard rollout status --watch`` shows it live) and acts on a decided result:
Successful → next step (or promotion after the last), Failed → roll back, Inconclusive → pause.
A step is judged on sample counts (see ``_analysis.py``); ``clock`` (milliseconds) is injectable.
Promotion moves the ``production`` alias first: when the model's gate policy refuses it, the
rollout fails and traffic goes back to the stable version.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from modelyard._workspace import Workspace
from modelyard.rollout._analysis import Analysis, analyse, snapshot
from modelyard.rollout._service import RevisionConflict, Rollout, RolloutService
from modelyard.rollout._state import RolloutState, StepResult
from modelyard.rollout._target import target_from

__all__ = ["Controller"]

log = logging.getLogger("modelyard.rollout")
_S = RolloutState


class Controller:
    """Drives rollouts. ``target``: the server to act on when the rollout's stored one is not
    reachable from here (a ModelServer in this process, or another URL). ``clock``: milliseconds
    since the epoch that step windows are measured on (default: the wall clock)."""

    def __init__(
        self,
        workspace: Workspace | str | None = None,
        *,
        target: Any = None,
        owner: str | None = None,
        lease_s: float = 15.0,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.service = RolloutService(workspace, say=say, clock=clock)
        self.target = target
        self.owner = owner or f"{os.uname().nodename[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_s = lease_s
        self._verified: set[tuple[int, int]] = set()

    def __repr__(self) -> str:
        return f"Controller(owner={self.owner!r})"

    @property
    def say(self) -> Callable[[str], None]:
        return self.service.say

    # -- lease -----------------------------------------------------------------------------------
    def _lease(self, rid: int) -> bool:
        return self.service.take_lease(rid, self.owner, int(self.lease_s * 1000))

    def release(self, rid: int) -> None:
        """Give up this controller's lease on rollout ``rid``."""
        self.service.release_lease(rid, self.owner)

    # -- one tick --------------------------------------------------------------------------------
    def tick(self, rollout_id: int) -> Rollout:
        """Analyse and act on one rollout once; returns it as stored afterwards."""
        svc = self.service
        r = svc.get(rollout_id)
        if r.state.finished or not self._lease(r.id):
            return r
        try:
            self._tick(r)
        except RevisionConflict:
            pass  # changed by someone else meanwhile: the next tick sees it
        return svc.get(rollout_id)

    def _tick(self, r: Rollout) -> None:
        svc = self.service
        tgt = target_from(r.target, self.target)
        if r.state is _S.PENDING:
            svc.advance(r, tgt, 0, check_revision=True)
            return
        if r.state is not _S.PROGRESSING:
            return
        row = svc.step_row(r.id, r.step_index)
        key = (r.id, r.step_index)
        if row is None or row.baseline is None or key not in self._verified:
            # first look at this step from this process: make sure the server runs its traffic
            # (it may have restarted, or the swap may not have happened before a crash)
            try:
                current = tgt.spec().get("traffic")
            except Exception:
                current = None
            if row is None or row.baseline is None or current != _normalized(r.step.traffic):
                if row is None:
                    svc.advance(r, tgt, r.step_index, check_revision=True)
                else:
                    svc.apply_step(r, tgt)
                    svc.record(
                        r,
                        "reapply",
                        f"controller {self.owner} re-applied step {r.step_index + 1} "
                        f"({r.step.name}) to the server",
                        step=r.step_index,
                    )
                r = svc.get(r.id)
                row = svc.step_row(r.id, r.step_index)
            self._verified.add(key)
        try:
            text = tgt.scrape()
        except Exception as exc:
            log.warning("rollout %s: cannot scrape the server: %s", r.id, exc)
            return
        current_snap = snapshot(text, r.model)
        baseline = json.loads(row.baseline) if row is not None and row.baseline else None
        now = svc.clock()
        elapsed = (now - (r.step_started_at or now)) / 1000
        prev_p = 1.0
        if r.analysis and r.analysis.get("step") == r.step_index and r.analysis.get("ab"):
            prev_p = float(r.analysis["ab"].get("always_valid_p") or 1.0)
        a = analyse(
            r.config,
            model=r.model,
            stable=r.stable_version,
            candidate=r.candidate_version,
            step=r.step_index,
            current=current_snap,
            baseline=baseline,
            elapsed_s=elapsed,
            window_s=r.step.window_s,
            previous_p=prev_p,
        )
        svc.save_analysis(r, a.to_json())
        if a.result is not None:
            self._decide(r, tgt, a, a.result)

    def _decide(self, r: Rollout, tgt: Any, a: Analysis, result: StepResult) -> None:
        svc = self.service
        n = len(r.steps)
        label = f"step {r.step_index + 1}/{n} ({r.step.name})"
        svc.end_step(
            r,
            result,
            f"{label}: {result.value}: {a.reason}",
            detail=a.to_dict(),
            audit=result is not StepResult.SUCCESSFUL or r.step_index == n - 1,
        )
        svc.say(f"[rollout {r.id}] {label}: {result.value.upper()} — {a.reason}")
        if result is StepResult.FAILED:
            svc.roll_back(
                r,
                _S.FAILED,
                f"analysis failed at {label}: {a.reason}",
                target=tgt,
                check_revision=True,
                action="fail",
            )
        elif result is StepResult.INCONCLUSIVE:
            why = f"inconclusive at {label}: {a.reason}; resume or promote or abort by hand"
            svc.hold(r, why, check_revision=True, audit=True)
            svc.say(f"[rollout {r.id}] paused for a human: {why}")
            svc.notify(r, "pause", f":pause_button: {r.model}: rollout paused — {why}")
        elif r.step_index + 1 < n:
            svc.advance(r, tgt, r.step_index + 1, check_revision=True, reason=f"{label} passed")
        elif r.config.promote_automatically:
            from modelyard.errors import ValidationFailed

            try:
                svc.promote_rollout(
                    r,
                    target=tgt,
                    check_revision=True,
                    reason=f"analysis passed every step ({n}); "
                    "last: "
                    + "; ".join(f"{c.metric} {c.value:.4g}" for c in a.checks if c.value is not None),
                )
            except ValidationFailed as exc:  # the gate policy attached to the model refused `production`
                bad = getattr(getattr(exc, "report", None), "failed", None)
                failed = ", ".join(g.gate for g in bad) if bad else str(exc).splitlines()[0]
                svc.roll_back(
                    r,
                    _S.FAILED,
                    f"the analysis passed every step, but the gate policy attached to "
                    f"{r.model!r} refused to make version {r.candidate_version} production ({failed} "
                    f"failed)",
                    target=tgt,
                    check_revision=True,
                    action="fail",
                )
        else:
            why = f"analysis passed ({label}); promote with `yard rollout promote {r.model}`"
            svc.hold(r, why, check_revision=True, audit=False)
            svc.say(f"[rollout {r.id}] waiting for a human: {why}")

    # -- loop ------------------------------------------------------------------------------------
    def run(
        self,
        rollout_id: int | None = None,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
        idle_s: float = 1.0,
    ) -> list[Rollout]:
        """Drive rollout ``rollout_id`` until it finishes or pauses (or every active rollout,
        forever, when None) until ``timeout`` seconds or ``stop`` is set."""
        deadline = None if timeout is None else time.monotonic() + timeout
        stop = stop or threading.Event()
        held: set[int] = set()
        try:
            while not stop.is_set():
                todo = (
                    [self.service.get(rollout_id)]
                    if rollout_id is not None
                    else self.service.list_rollouts(active=True)
                )
                if rollout_id is not None and (todo[0].state.finished or todo[0].state is _S.PAUSED):
                    return todo
                waits = []
                for r in todo:
                    held.add(r.id)
                    try:
                        self.tick(r.id)
                    except Exception as exc:  # keep driving the others; say why
                        log.exception("rollout %s: tick failed", r.id)
                        self.service.say(f"[rollout {r.id}] controller error: {type(exc).__name__}: {exc}")
                    waits.append(r.config.tick)
                if deadline is not None and time.monotonic() > deadline:
                    break
                stop.wait(min(waits) if waits else idle_s)
        finally:
            for rid in held:
                try:
                    self.release(rid)
                except Exception:
                    pass
        return (
            [self.service.get(rollout_id)]
            if rollout_id is not None
            else self.service.list_rollouts(active=True)
        )


def _normalized(traffic: dict[str, Any]) -> dict[str, Any]:
    """A step's traffic as the server reports it (defaults filled in)."""
    from modelyard.serving._spec import load_spec

    spec = load_spec({"models": {"stable": "m/1", "candidate": "m/2"}, "traffic": traffic})
    return spec.traffic.model_dump(mode="json")
