"""The scheduler's work: fire due triggers, then drive each automation's run step by step.

One :meth:`Engine.tick` is one pass (``yard automate run`` repeats it; ``yard server`` runs it in
a background thread). Everything is in the store, so several schedulers (server workers,
replicas) can run at once:

* a trigger fires by inserting its run (unique per tick / alert firing / dataset version);
* missed ticks (the scheduler was down) are **caught up once**: one run for the latest missed tick,
  its reason counting the ticks missed; none is fired retroactively at ``apply``;
* a run is driven by the scheduler holding its lease (``lease_until`` on the store's clock, renewed
  while a step executes). A scheduler that stops mid-step leaves the step ``running``; the next one
  to take the lease after it expired marks the run **failed** ("interrupted"), visibly, and never
  runs the pipeline or the gates twice. Waiting steps (approval, rollout) resume where they were.

Steps: ``pipeline`` (its result names the model version: ``{"model": NAME, "version": N}`` or a
registered ``ModelVersion``), ``gate`` (a failure stops the run: no rollout starts), ``approval``
(waits for ``yard automate approve``), ``rollout`` (started, then driven by this scheduler with the
rollout controller's own lease, until promoted or failed). A failure stops the chain and notifies
the automation's webhooks; every step writes the model's audit trail with the trigger as reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.automation._cron import Schedule, in_zone
from modelyard.automation._records import plan, run_dict
from modelyard.automation._schema import automation_runs, automation_steps, automations
from modelyard.automation._service import AutomationService
from modelyard.automation._steps import StepFailed, StepsMixin, approval_message

__all__ = ["Engine", "StepFailed"]

log = logging.getLogger("modelyard.automation")


class Engine(StepsMixin):
    """Fires triggers and drives runs of every enabled automation of ``service``'s workspace.

    ``target``: the model server rollouts act on when the automation names none (a URL or a
    ``ModelServer`` in this process); ``say``: where decisions are printed; ``lease_ms``: how long a
    run stays owned by this scheduler without renewal."""

    svc: AutomationService

    def __init__(
        self,
        service: AutomationService,
        *,
        target: Any = None,
        say: Callable[[str], None] | None = None,
        owner: str | None = None,
        lease_ms: int = 120_000,
    ) -> None:
        if service.ws.remote is not None:
            from modelyard.errors import UsageError

            raise UsageError(
                "The scheduler runs next to the store: on a team server it runs inside `yard server`; "
                "`yard automate run` is for a local store (or call `yard automate trigger`)."
            )
        self.svc = service
        self.target = target
        self.say = say or (lambda msg: log.info(msg))
        self.owner = owner or f"{os.uname().nodename[:32]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.lease_ms = lease_ms

    # -- one pass --------------------------------------------------------------------------------
    def tick(self) -> dict[str, Any]:
        """Fire what is due and advance every automation's run once; returns what happened."""
        fired: list[dict[str, Any]] = []
        advanced: list[dict[str, Any]] = []
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(automations).where(automations.c.enabled == 1).order_by(automations.c.name)
            ).all()
        for row in rows:
            spec = json.loads(row.spec)
            try:
                fired += self._fire_due(spec, row)
                r = self.advance(spec["name"])
                if r is not None:
                    advanced.append(r)
            except Exception as exc:  # one broken automation must not stop the others
                log.exception("automation %s: scheduler pass failed", spec["name"])
                self.say(f"[automate {spec['name']}] scheduler error: {type(exc).__name__}: {exc}")
        return {"fired": fired, "advanced": advanced}

    # -- triggers --------------------------------------------------------------------------------
    def _fire_due(self, spec: dict[str, Any], row: Any) -> list[dict[str, Any]]:
        name = spec["name"]
        now = self.svc.clock()
        out: list[dict[str, Any]] = []
        cursor = int(row.schedule_cursor if row.schedule_cursor is not None else now)
        due: list[tuple[int, str]] = []
        for t in spec["triggers"]:
            if t["kind"] == "schedule":
                ticks = Schedule(t["cron"], t["timezone"]).ticks(cursor, now)
                if ticks:
                    missed = len(ticks) - 1
                    local = in_zone(ticks[-1], t["timezone"]).isoformat(timespec="minutes")
                    why = f"schedule {t['cron']} ({t['timezone']}) tick {local}"
                    if missed:
                        why += f"; {missed} earlier tick(s) missed while no scheduler ran, caught up once"
                    due.append((ticks[-1], why))
        for at, why in sorted(set(due)):
            r = self.svc.fire(name, "schedule", f"schedule:{at}", why)
            if r is not None:
                out.append(r)
                self.say(f"[automate {name}] fired run {r['id']} ({r['state']}): {why}")
        if cursor < now:
            self.store.write(
                lambda conn: conn.execute(
                    automations.update()
                    .where(automations.c.name == name, automations.c.schedule_cursor <= now)
                    .values(schedule_cursor=now)
                )
            )
        for kind in ("alert", "dataset"):
            wanted = [t for t in spec["triggers"] if t["kind"] == kind]
            if wanted:
                out += self._fire_rows(spec, row, kind, wanted)
        return out

    def _fire_rows(
        self, spec: dict[str, Any], row: Any, kind: str, wanted: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        name = spec["name"]
        col = automations.c.alert_cursor if kind == "alert" else automations.c.dataset_cursor
        cursor = int((row.alert_cursor if kind == "alert" else row.dataset_cursor) or 0)
        with self.store.read() as conn:
            if kind == "alert":
                rows = conn.execute(
                    sa.text(
                        "SELECT id, model_name, rule_name, value, threshold FROM monitor_alert_firings "
                        "WHERE id > :c ORDER BY id"
                    ),
                    {"c": cursor},
                ).all()
                hits = [
                    (
                        int(r.id),
                        f"alert {r.model_name}/{r.rule_name} fired "
                        f"(value {r.value:.4g}, threshold {r.threshold:g})",
                    )
                    for r in rows
                    if any(
                        t["rule"] == r.rule_name and t.get("model") in (None, r.model_name) for t in wanted
                    )
                ]
            else:
                ours = {
                    p
                    for (p,) in conn.execute(
                        sa.select(automation_runs.c.pipeline_run_id).where(
                            automation_runs.c.automation == name,
                            automation_runs.c.pipeline_run_id.is_not(None),
                        )
                    )
                }
                rows = conn.execute(
                    sa.text(
                        "SELECT v.id, d.name, v.version, v.run_id FROM dataset_versions v JOIN datasets d "
                        "ON d.id = v.dataset_id WHERE v.id > :c ORDER BY v.id"
                    ),
                    {"c": cursor},
                ).all()
                names = {t["dataset"] for t in wanted}
                # a version this automation's own pipeline wrote never triggers it again
                hits = [
                    (int(r.id), f"new dataset version {r.name}@v{r.version}")
                    for r in rows
                    if r.name in names and r.run_id not in ours
                ]
            top = max([int(r.id) for r in rows], default=cursor)
        out = []
        for rid, why in hits:
            r = self.svc.fire(name, kind, f"{kind}:{rid}", why)
            if r is not None:
                out.append(r)
                self.say(f"[automate {name}] fired run {r['id']} ({r['state']}): {why}")
        if top > cursor:
            self.store.write(
                lambda conn: conn.execute(
                    automations.update().where(automations.c.name == name, col < top).values({col.name: top})
                )
            )
        return out

    # -- runs ------------------------------------------------------------------------------------
    def advance(self, name: str) -> dict[str, Any] | None:
        """Start the queued run when none runs, then drive the running one as far as it goes now."""
        with self.store.read() as conn:
            spec = self.svc.spec(conn, name)
            active = conn.execute(
                sa.select(automation_runs).where(automation_runs.c.active_slot == name)
            ).first()
            if active is None:
                queued = conn.execute(
                    sa.select(automation_runs).where(automation_runs.c.queued_slot == name)
                ).first()
        if active is None:
            if queued is None:
                return None
            if not self._start(name, int(queued.id)):
                return None
            run_id = int(queued.id)
        else:
            run_id = int(active.id)
        if not self._lease(run_id):
            return None
        try:
            self._drive(spec, run_id)
        finally:
            self._release(run_id)
        with self.store.read() as conn:
            return run_dict(self.svc._run(conn, run_id))

    def _start(self, name: str, run_id: int) -> bool:
        now = self.svc.clock()

        def fn(conn: Connection) -> bool:
            res = conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == run_id, automation_runs.c.state == "queued")
                .values(state="running", active_slot=name, queued_slot=None, started_at=now)
            )
            if res.rowcount == 1:
                self.svc._event(conn, name, run_id, "started", f"started by scheduler {self.owner}")
            return bool(res.rowcount == 1)

        try:
            return bool(self.store.write(fn))
        except sa.exc.IntegrityError:  # another scheduler started one meanwhile
            return False

    def _lease(self, run_id: int) -> bool:
        now = self.svc.clock()

        def fn(conn: Connection) -> bool:
            res = conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == run_id, automation_runs.c.state == "running")
                .where(
                    sa.or_(
                        automation_runs.c.lease_owner.is_(None),
                        automation_runs.c.lease_owner == self.owner,
                        automation_runs.c.lease_until < now,
                    )
                )
                .values(lease_owner=self.owner, lease_until=now + self.lease_ms)
            )
            return bool(res.rowcount == 1)

        return bool(self.store.write(fn))

    def _release(self, run_id: int) -> None:
        self.store.write(
            lambda conn: conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == run_id, automation_runs.c.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=None)
            )
        )

    @contextlib.contextmanager
    def _renewing(self, run_id: int) -> Iterator[None]:
        """Keep the run's lease while a step executes (renewed every third of the lease)."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(self.lease_ms / 3000):
                try:
                    self._lease(run_id)
                except Exception:
                    log.warning("automation run %s: lease renewal failed", run_id, exc_info=True)

        t = threading.Thread(target=loop, name=f"yard-automate-lease-{run_id}", daemon=True)
        t.start()
        try:
            yield
        finally:
            stop.set()
            t.join(timeout=5)

    # -- steps -----------------------------------------------------------------------------------
    def _drive(self, spec: dict[str, Any], run_id: int) -> None:
        steps = plan(spec)
        while True:
            with self.store.read() as conn:
                run = self.svc._run(conn, run_id)
                last = conn.execute(
                    sa.select(automation_steps)
                    .where(automation_steps.c.run_id == run_id)
                    .order_by(automation_steps.c.idx.desc())
                    .limit(1)
                ).first()
            if run.state != "running":
                return
            if last is not None and last.state == "running":
                # this scheduler executes steps synchronously under the lease: a step still marked
                # running now was left by a scheduler that stopped; it is never executed twice
                self._fail(
                    spec,
                    run,
                    int(last.idx),
                    f"interrupted: the scheduler running step {last.kind} stopped (its "
                    "lease expired); the step is not run again — trigger the automation again",
                    kind="interrupted",
                )
                return
            if last is not None and last.state == "failed":
                return
            idx = 0 if last is None else int(last.idx) + (last.state == "ok")
            if idx >= len(steps):
                self._finish(spec, run)
                return
            kind = steps[idx]
            if last is None or int(last.idx) != idx:
                if kind == "approval":  # waiting, and what for, in one write (a reader never sees one alone)
                    msg = approval_message(spec, run_id)
                    self._begin(run_id, idx, kind, "waiting", msg)
                    self.announce_approval(spec, run, msg)
                else:
                    self._begin(run_id, idx, kind, "running")
            try:
                if kind in ("pipeline", "gate"):
                    with self._renewing(run_id):
                        message, detail = getattr(self, f"_step_{kind}")(spec, run)
                    self._end(spec, run, idx, kind, "ok", message, detail)
                    continue
                outcome = getattr(self, f"_step_{kind}")(spec, run, idx)
                if outcome is None:  # still waiting
                    return
                self._end(spec, run, idx, kind, "ok", outcome[0], outcome[1])
            except StepFailed as exc:
                self._fail(spec, run, idx, str(exc), detail=exc.detail)
                return
            except Exception as exc:
                self._fail(spec, run, idx, f"{kind} failed: {type(exc).__name__}: {exc}")
                return

    def _begin(self, run_id: int, idx: int, kind: str, state: str, message: str | None = None) -> None:
        now = self.svc.clock()

        def fn(conn: Connection) -> None:
            conn.execute(
                automation_steps.insert().values(
                    run_id=run_id,
                    idx=idx,
                    kind=kind,
                    state=state,
                    message=message,
                    detail="{}",
                    started_at=now,
                )
            )
            conn.execute(automation_runs.update().where(automation_runs.c.id == run_id).values(step=kind))

        self.store.write(fn)

    def _end(
        self,
        spec: dict[str, Any],
        run: Any,
        idx: int,
        kind: str,
        state: str,
        message: str,
        detail: dict[str, Any],
    ) -> None:
        now = self.svc.clock()
        links: dict[str, Any] = {
            k: detail[k] for k in ("model", "version", "pipeline_run_id", "rollout_id") if k in detail
        }

        def fn(conn: Connection) -> None:
            conn.execute(
                automation_steps.update()
                .where(automation_steps.c.run_id == int(run.id), automation_steps.c.idx == idx)
                .values(state=state, message=message, detail=json.dumps(detail, default=str), ended_at=now)
            )
            values = {
                {"model": "model_name", "version": "model_version"}.get(k, k): v for k, v in links.items()
            }
            if values:
                conn.execute(
                    automation_runs.update().where(automation_runs.c.id == int(run.id)).values(**values)
                )
            self.svc._event(conn, spec["name"], int(run.id), f"{kind}_{state}", message)
            self._audit(conn, spec, run, f"automation.{kind}", message, detail, links)

        self.store.write(fn)
        self.say(f"[automate {spec['name']} run {run.id}] {kind}: {state.upper()} — {message}")

    def _audit(
        self, conn: Connection, spec: dict[str, Any], run: Any, action: str, message: str,
        detail: dict[str, Any], links: dict[str, Any] | None = None,
    ) -> None:  # fmt: skip
        """A row in the model's audit trail (when the run's model is known), the trigger as reason."""
        from modelyard.errors import NotFoundError
        from modelyard.registry._service import RegistryService

        model = (links or {}).get("model") or run.model_name
        if not model:
            return
        version = (links or {}).get("version") or run.model_version
        try:
            mid = RegistryService(self.svc.ws)._model_id(conn, model)
        except NotFoundError:
            return
        why = f"automation {spec['name']} run {run.id} ({run.trigger}: {run.reason})"
        RegistryService._audit(
            conn, mid, action, {"automation": spec["name"], "run": int(run.id), "outcome": message[:300]},
            version=version, reason=why[:500],
        )  # fmt: skip

    def _fail(
        self,
        spec: dict[str, Any],
        run: Any,
        idx: int,
        message: str,
        *,
        detail: dict[str, Any] | None = None,
        kind: str = "failed",
    ) -> None:
        now = self.svc.clock()
        name = spec["name"]

        def fn(conn: Connection) -> None:
            conn.execute(
                automation_steps.update()
                .where(automation_steps.c.run_id == int(run.id), automation_steps.c.idx == idx)
                .values(
                    state="failed",
                    message=message,
                    detail=json.dumps(detail or {}, default=str),
                    ended_at=now,
                )
            )
            conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == int(run.id))
                .values(
                    state="failed",
                    error=message,
                    finished_at=now,
                    active_slot=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            self.svc._event(conn, name, int(run.id), kind, message)
            fresh = self.svc._run(conn, int(run.id))
            self._audit(conn, spec, fresh, "automation.failed", message, detail or {})

        self.store.write(fn)
        self.say(f"[automate {name} run {run.id}] FAILED — {message}")
        self.notify(spec, int(run.id), "failed", f":x: automation {name}: run {run.id} failed — {message}")

    def _finish(self, spec: dict[str, Any], run: Any) -> None:
        now = self.svc.clock()
        name = spec["name"]
        what = f"version {run.model_version} of {run.model_name}" if run.model_name else "the pipeline"
        message = f"done: {what} " + ("released" if spec.get("rollout") else "trained and checked")

        def fn(conn: Connection) -> None:
            conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == int(run.id))
                .values(
                    state="succeeded", finished_at=now, active_slot=None, lease_owner=None, lease_until=None
                )
            )
            self.svc._event(conn, name, int(run.id), "succeeded", message)

        self.store.write(fn)
        self.say(f"[automate {name} run {run.id}] SUCCEEDED — {message}")
        self.notify(
            spec, int(run.id), "succeeded", f":white_check_mark: automation {name}: run {run.id} {message}"
        )
