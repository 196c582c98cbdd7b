"""The automation service: applying automations, their runs, triggers and approvals.

Every public method marked :func:`~modelyard._rpc.op` is an operation of the HTTP API, so
``yard automate ...`` works the same on a local store and on ``YARD_URI=http://...``. The
scheduler (``_engine.py``) runs next to the store (inside ``yard server``, or ``yard automate
run``) and calls the store-side helpers here (firing, leases, steps) directly.

Firing is a row insert with a unique ``(automation, trigger_key)``: a schedule tick, an alert
firing or a dataset version fires once however many schedulers look at it. ``concurrency: 1``
is kept by two unique slots: one run holds ``active_slot`` (running), one ``queued_slot``; a
trigger arriving while both are taken is recorded as a *dropped* run (so history shows it).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._rpc import current_principal, op, require, service
from modelyard._shared import now_ms, user_name
from modelyard._workspace import Workspace, WorkspaceService
from modelyard.automation._config import AutomationError, check_spec, where
from modelyard.automation._records import plan, run_dict, step_dict
from modelyard.automation._schema import automation_events, automation_runs, automation_steps, automations
from modelyard.errors import (
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    did_you_mean,
)

__all__ = ["AutomationService"]

#: tables of other features read by name (the team server's users and grants live in a door,
#: which this layer may not import; the columns read are part of migration 0800)
_groups = sa.table("yard_groups", sa.column("name"))
_members = sa.table("yard_group_members", sa.column("group_name"), sa.column("user_name"))
_users = sa.table("yard_users", sa.column("name"), sa.column("role"))
_grants = sa.table(
    "yard_grants", sa.column("principal"), sa.column("kind"), sa.column("target"), sa.column("role")
)


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@service("automation")
class AutomationService(WorkspaceService):
    """Automations of one workspace: apply, list, history, trigger, approve."""

    def __init__(
        self,
        workspace: Workspace | str | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(workspace)
        #: milliseconds since the epoch: schedules, leases and records use it (injectable in tests)
        self.clock: Callable[[], int] = clock or now_ms

    # -- apply -----------------------------------------------------------------------------------
    @op("admin")
    def apply(self, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Create or replace automations (as checked by ``parse_automations``); the store's
        references (alert rules, datasets, approval groups) and cycles are checked here. Admin only:
        an automation makes the scheduler run a pipeline's code."""
        if not specs:
            raise InvalidArgumentError("apply needs at least one automation.")
        for s in specs:
            check_spec(s)
        if len({s["name"] for s in specs}) != len(specs):
            raise InvalidArgumentError("apply got the same automation name twice.")
        now = self.clock()

        def fn(conn: Connection) -> list[dict[str, Any]]:
            self._check_references(conn, specs)
            out = []
            alert_max = conn.execute(sa.text("SELECT MAX(id) FROM monitor_alert_firings")).scalar() or 0
            ds_max = conn.execute(sa.text("SELECT MAX(id) FROM dataset_versions")).scalar() or 0
            for s in specs:
                hook = next((t for t in s["triggers"] if t["kind"] == "webhook"), None)
                values = {
                    "spec": json.dumps(s, sort_keys=True),
                    "source": s.get("source"),
                    "webhook_secret_hash": hook.get("secret_sha256") if hook else None,
                    "updated_at": now,
                    "updated_by": user_name(),
                    "enabled": 1,
                }
                old = conn.execute(
                    sa.select(automations.c.name).where(automations.c.name == s["name"])
                ).first()
                if old is None:
                    conn.execute(
                        automations.insert().values(
                            name=s["name"],
                            created_at=now,
                            schedule_cursor=now,
                            alert_cursor=int(alert_max),
                            dataset_cursor=int(ds_max),
                            **values,
                        )
                    )
                else:
                    conn.execute(automations.update().where(automations.c.name == s["name"]).values(**values))
                self._event(
                    conn,
                    s["name"],
                    None,
                    "apply",
                    ("created" if old is None else "updated") + f" from {s.get('source')}",
                )
                out.append({"name": s["name"], "created": old is None})
            return out

        return list(self.store.write(fn))

    def _check_references(self, conn: Connection, specs: list[dict[str, Any]]) -> None:
        rules = [(m, n) for m, n in conn.execute(sa.text("SELECT model_name, name FROM monitor_alert_rules"))]
        datasets = {n for (n,) in conn.execute(sa.text("SELECT name FROM datasets"))}
        for s in specs:
            from pathlib import Path

            file = s["run"]["pipeline"].rpartition(":")[0]
            if (file.endswith(".py") or "/" in file) and not Path(file).is_file():
                raise AutomationError(
                    f"{where(s, s['run'].get('line'))}: unknown pipeline: {file!r} is not a file on the "
                    "machine that runs the scheduler."
                )
            for t in s["triggers"]:
                if t["kind"] == "alert":
                    found = [(m, n) for m, n in rules if n == t["rule"] and (t.get("model") in (None, m))]
                    if not found:
                        names = sorted({n for _, n in rules})
                        raise AutomationError(
                            f"{where(s, t.get('line'))}: unknown alert rule {t['rule']!r}"
                            + (f" of model {t['model']!r}" if t.get("model") else "")
                            + f".{did_you_mean(t['rule'], names)} Alert rules are stored by "
                            "`yard monitor alerts MODEL --rules rules.yaml`"
                            + (f"; stored: {', '.join(names)}." if names else "; none is stored.")
                        )
                elif t["kind"] == "dataset" and t["dataset"] not in datasets:
                    raise AutomationError(
                        f"{where(s, t.get('line'))}: unknown dataset {t['dataset']!r}."
                        f"{did_you_mean(t['dataset'], datasets)} "
                        "Add its first version with `yard data add`."
                    )
                elif t["kind"] == "webhook" and not t.get("secret_sha256"):
                    raise AutomationError(f"{where(s, t.get('line'))}: the webhook secret was not resolved.")
            if s.get("approval"):
                self._check_approvers(conn, s)
        self._check_cycles(conn, specs)

    def _check_approvers(self, conn: Connection, s: dict[str, Any]) -> None:
        group = s["approval"]["group"]
        at = where(s, s["approval"].get("line"))
        known = [g for (g,) in conn.execute(sa.select(_groups.c.name))]
        if group not in known:
            raise AutomationError(
                f"{at}: unknown approval group {group!r}.{did_you_mean(group, known)} Create it on the "
                f"server: yard groups add {group} USER."
            )
        model = s.get("model")
        if not model:
            raise AutomationError(
                f"{at}: an approval needs the automation's 'model:' (its maintainers approve)."
            )
        members = [
            u for (u,) in conn.execute(sa.select(_members.c.user_name).where(_members.c.group_name == group))
        ]
        roles = dict(conn.execute(sa.select(_users.c.name, _users.c.role)).all())
        grants = conn.execute(
            sa.select(_grants.c.principal, _grants.c.role).where(
                _grants.c.kind == "model", _grants.c.target == model
            )
        ).all()
        from modelyard._rpc import role_at_least

        def can(user: str) -> bool:
            if role_at_least(roles.get(user), "maintainer"):
                return True
            return any(p in (user, f"group:{group}") and role_at_least(r, "maintainer") for p, r in grants)

        if not any(can(u) for u in members):
            raise AutomationError(
                f"{at}: no member of group {group!r} has role maintainer on model {model!r}, so nobody could "
                f"approve. Grant it: yard grants add group:{group} --model {model} --role maintainer."
            )

    def _check_cycles(self, conn: Connection, specs: list[dict[str, Any]]) -> None:
        every = {
            s["name"]: s for s in (json.loads(r.spec) for r in conn.execute(sa.select(automations.c.spec)))
        }
        every.update({s["name"]: s for s in specs})

        # an edge A -> B when a run of A writes a dataset that triggers B
        def targets(a: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
            out = []
            for b in every.values():
                for t in b["triggers"]:
                    if t["kind"] == "dataset" and t["dataset"] in (a.get("produces") or []):
                        out.append((b, t))
            return out

        for s in specs:
            path = [s["name"]]
            stack = [(s, iter(targets(s)))]
            seen = {s["name"]}
            while stack:
                _, it = stack[-1]
                nxt = next(it, None)
                if nxt is None:
                    stack.pop()
                    path.pop()
                    continue
                b, t = nxt
                if b["name"] == s["name"]:  # back at s: t is one of its own dataset triggers
                    chain = " → ".join([*path, s["name"]])
                    raise AutomationError(
                        f"{where(s, t.get('line'))}: cycle: {chain} (a run writes dataset {t['dataset']!r}, "
                        "which triggers a run again). Remove the dataset trigger or the 'produces' entry."
                    )
                if b["name"] not in seen:
                    seen.add(b["name"])
                    path.append(b["name"])
                    stack.append((b, iter(targets(b))))

    # -- reads -----------------------------------------------------------------------------------
    def spec(self, conn: Connection, name: str) -> dict[str, Any]:
        row = conn.execute(sa.select(automations.c.spec).where(automations.c.name == name)).first()
        if row is None:
            names = [n for (n,) in conn.execute(sa.select(automations.c.name))]
            raise NotFoundError(
                f"There is no automation {name!r}.{did_you_mean(name, names)} "
                "Apply one with `yard automate apply automations.yaml`."
            )
        return dict(json.loads(row.spec))

    @op("reader")
    def list_automations(self) -> list[dict[str, Any]]:
        """Every automation with its triggers, steps, the next schedule tick and its latest run."""
        from modelyard.automation._cron import Schedule, in_zone

        now = self.clock()
        out = []
        with self.store.read() as conn:
            for row in conn.execute(sa.select(automations).order_by(automations.c.name)):
                s = json.loads(row.spec)
                last = conn.execute(
                    sa.select(automation_runs)
                    .where(automation_runs.c.automation == row.name)
                    .order_by(automation_runs.c.id.desc())
                    .limit(1)
                ).first()
                ticks = sorted(
                    (Schedule(t["cron"], t["timezone"]).next_after(now), t["timezone"])
                    for t in s["triggers"]
                    if t["kind"] == "schedule"
                )
                tick, zone = ticks[0] if ticks else (None, None)
                out.append(
                    {
                        "name": row.name,
                        "enabled": bool(row.enabled),
                        "model": s.get("model"),
                        "triggers": [_trigger_text(t) for t in s["triggers"]],
                        "pipeline": s["run"]["pipeline"],
                        "steps": plan(s),
                        "next_tick": tick,  # ms since the epoch
                        # the same instant in the zone of its schedule, with the offset
                        "next_tick_at": in_zone(tick, zone).isoformat() if tick and zone else None,
                        "next_tick_zone": zone,
                        "last_run": run_dict(last) if last else None,
                        "source": row.source,
                        "updated_at": int(row.updated_at),
                    }
                )
        return out

    @op("reader")
    def get(self, name: str) -> dict[str, Any]:
        """One automation as applied (its checked spec)."""
        with self.store.read() as conn:
            return self.spec(conn, name)

    @op("reader")
    def history(self, name: str, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs of automation ``name`` with their steps, newest first."""
        if not 1 <= limit <= 1000:
            raise InvalidArgumentError(
                f"The 'limit' parameter of history must be from 1 to 1000. Got {limit}."
            )
        with self.store.read() as conn:
            self.spec(conn, name)
            rows = conn.execute(
                sa.select(automation_runs)
                .where(automation_runs.c.automation == name)
                .order_by(automation_runs.c.id.desc())
                .limit(limit)
            ).all()
            out = []
            for r in rows:
                d = run_dict(r)
                d["steps"] = self._steps(conn, int(r.id))
                out.append(d)
            return out

    @op("reader")
    def show_run(self, run_id: int) -> dict[str, Any]:
        """One run with its steps and events."""
        with self.store.read() as conn:
            r = self._run(conn, run_id)
            d = run_dict(r)
            d["steps"] = self._steps(conn, run_id)
            d["events"] = [
                {"at": int(e.at), "kind": e.kind, "message": e.message, "actor": e.actor}
                for e in conn.execute(
                    sa.select(automation_events)
                    .where(automation_events.c.run_id == int(run_id))
                    .order_by(automation_events.c.id)
                )
            ]
            return d

    def _run(self, conn: Connection, run_id: int) -> Any:
        if not 0 < int(run_id) < 2**62:
            raise InvalidArgumentError(f"A run id is a positive number; got {run_id}.")
        row = conn.execute(sa.select(automation_runs).where(automation_runs.c.id == int(run_id))).first()
        if row is None:
            raise NotFoundError(f"There is no automation run {run_id}. See `yard automate history NAME`.")
        return row

    def _steps(self, conn: Connection, run_id: int) -> list[dict[str, Any]]:
        return [
            step_dict(s)
            for s in conn.execute(
                sa.select(automation_steps)
                .where(automation_steps.c.run_id == run_id)
                .order_by(automation_steps.c.idx)
            )
        ]

    # -- triggers --------------------------------------------------------------------------------
    @op("writer")
    def trigger(self, name: str, reason: str) -> dict[str, Any]:
        """Trigger automation ``name`` by hand; ``reason`` goes to the run and the audit trail. The
        scheduler runs it (queued behind a running one; dropped when one is queued already)."""
        if not reason or not reason.strip() or len(reason) > 500:
            raise InvalidArgumentError("A manual trigger needs a --reason of 1 to 500 characters.")
        with self.store.read() as conn:
            self.spec(conn, name)
        run = self.fire(
            name, "manual", f"manual:{uuid.uuid4().hex}", f"manual by {user_name()}: {reason.strip()}"
        )
        assert run is not None  # a fresh key always inserts
        return run

    @op("reader")
    def webhook(self, name: str, secret: str, reason: str | None = None) -> dict[str, Any]:
        """Trigger automation ``name`` from a webhook: ``secret`` must be the one its ``webhook:``
        trigger names (compared in constant time). On a server the call also needs an API token."""
        with self.store.read() as conn:
            self.spec(conn, name)
            stored = conn.execute(
                sa.select(automations.c.webhook_secret_hash).where(automations.c.name == name)
            ).scalar()
        if not stored or not hmac.compare_digest(stored, secret_hash(secret or "")):
            raise PermissionDeniedError(
                f"The webhook secret for automation {name!r} is wrong (or it has no webhook trigger)."
            )
        why = (reason or "").strip()[:300]
        run = self.fire(
            name, "webhook", f"webhook:{uuid.uuid4().hex}", "webhook" + (f": {why}" if why else "")
        )
        assert run is not None
        return run

    def fire(self, name: str, trigger: str, key: str, reason: str) -> dict[str, Any] | None:
        """Record a firing as a run: queued, or dropped when a run is queued already; None when
        this ``key`` fired before (another scheduler saw it first)."""
        now = self.clock()
        values = {
            "automation": name,
            "trigger": trigger,
            "trigger_key": key,
            "reason": reason,
            "created_by": user_name(),
            "created_at": now,
        }

        def queued(conn: Connection) -> int:
            rid = conn.execute(
                automation_runs.insert()
                .values(state="queued", queued_slot=name, **values)
                .returning(automation_runs.c.id)
            ).scalar_one()
            self._event(conn, name, int(rid), "fired", f"{trigger}: {reason}; queued")
            return int(rid)

        def dropped(conn: Connection) -> int:
            rid = conn.execute(
                automation_runs.insert()
                .values(
                    state="dropped",
                    finished_at=now,
                    error="a run was already queued (concurrency: 1 queues one trigger and drops the rest)",
                    **values,
                )
                .returning(automation_runs.c.id)
            ).scalar_one()
            self._event(
                conn, name, int(rid), "dropped", f"{trigger}: {reason}; dropped: a run is already queued"
            )
            return int(rid)

        try:
            rid = self.store.write(queued)
        except sa.exc.IntegrityError:
            with self.store.read() as conn:
                if conn.execute(
                    sa.select(automation_runs.c.id).where(
                        automation_runs.c.automation == name, automation_runs.c.trigger_key == key
                    )
                ).first():
                    return None
            try:
                rid = self.store.write(dropped)
            except sa.exc.IntegrityError:
                return None
        with self.store.read() as conn:
            return run_dict(self._run(conn, rid))

    # -- approval --------------------------------------------------------------------------------
    @op("reader")
    def approve(
        self, name: str, run_id: int, reason: str | None = None, reject: bool = False
    ) -> dict[str, Any]:
        """Say yes (or no, ``reject``) to run ``run_id`` of ``name`` waiting for approval. On a server
        the caller needs role maintainer on the run's model and, when the automation names an
        approval group, to be a member of it (or an admin)."""
        with self.store.read() as conn:
            s = self.spec(conn, name)
            r = self._run(conn, run_id)
            if r.automation != name:
                raise NotFoundError(f"Run {run_id} belongs to automation {r.automation!r}, not {name!r}.")
            waiting = conn.execute(
                sa.select(automation_steps.c.kind, automation_steps.c.state)
                .where(automation_steps.c.run_id == int(run_id))
                .order_by(automation_steps.c.idx.desc())
                .limit(1)
            ).first()
        if not s.get("approval"):
            raise ConflictError(f"Automation {name!r} has no approval step.")
        if r.state != "running" or waiting is None or tuple(waiting) != ("approval", "waiting"):
            raise ConflictError(
                f"Run {run_id} of {name!r} is not waiting for approval (it is {r.state}, at step {r.step})."
            )
        group = s["approval"]["group"]
        require("maintainer", "model", r.model_name, why=f"approving run {run_id} of automation {name!r}")
        who = current_principal.get()
        if who is not None and who.role != "admin" and group not in who.groups:
            raise PermissionDeniedError(
                f"{who.name} is not in group {group!r}, whose members approve automation {name!r}. "
                f"An admin can add them: yard groups add {group} {who.name}"
            )
        verdict = "rejected" if reject else "approved"
        note = (reason or "").strip()[:300]

        def fn(conn: Connection) -> None:
            res = conn.execute(
                automation_runs.update()
                .where(automation_runs.c.id == int(run_id), automation_runs.c.approval.is_(None))
                .values(approval=verdict, approved_by=user_name())
            )
            if res.rowcount != 1:
                raise ConflictError(f"Run {run_id} of {name!r} was already approved or rejected.")
            self._event(
                conn,
                name,
                int(run_id),
                verdict,
                f"{verdict} by {user_name()}" + (f": {note}" if note else ""),
            )

        self.store.write(fn)
        with self.store.read() as conn:
            return run_dict(self._run(conn, run_id))

    # -- the scheduler's side (runs next to the store) -------------------------------------------
    @op("admin")
    def tick(self) -> dict[str, Any]:
        """Run one scheduler pass on the server now (fire due triggers, advance runs); what it did."""
        from modelyard.automation._engine import Engine

        return Engine(self).tick()

    def _event(self, conn: Connection, name: str, run_id: int | None, kind: str, message: str) -> None:
        conn.execute(
            automation_events.insert().values(
                automation=name, run_id=run_id, at=self.clock(), kind=kind, message=message, actor=user_name()
            )
        )

    def event(self, name: str, run_id: int | None, kind: str, message: str) -> None:
        self.store.write(lambda conn: self._event(conn, name, run_id, kind, message))


def _trigger_text(t: dict[str, Any]) -> str:
    if t["kind"] == "schedule":
        return f"schedule {t['cron']} ({t['timezone']})"
    if t["kind"] == "alert":
        return f"alert {t['model'] + '/' if t.get('model') else ''}{t['rule']}"
    if t["kind"] == "dataset":
        return f"dataset {t['dataset']}"
    return "webhook"
