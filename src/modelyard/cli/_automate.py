"""``yard automate``: apply automations.yaml, list them, their history, trigger, approve, and run
the scheduler for a local store (``yard server`` runs its own)."""

from __future__ import annotations

from typing import Any

import typer

from modelyard._shared import format_when
from modelyard.cli._common import print_json

__all__ = ["app"]

app = typer.Typer(
    help="Automations: a schedule, an alert, a new dataset version, a webhook or a person triggers a "
    "pipeline, its gates, an approval and a rollout.",
    no_args_is_help=True,
)


def _svc() -> Any:
    from modelyard.automation import AutomationService

    return AutomationService()


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    from modelyard.cli._common import console, esc

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*[esc("" if v is None else str(v)) for v in r])
    console().print(t)


@app.command("apply")
def apply(path: str = typer.Argument(..., help="The automations file (automations.yaml).")) -> None:
    """Check and store the automations of PATH (created or replaced).

    Errors name the file and line: invalid cron, unknown pipeline/alert/dataset/approval group, cycles."""
    from modelyard.automation import apply_file

    for r in apply_file(path):
        typer.echo(f"{'created' if r['created'] else 'updated'} automation {r['name']}")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """The automations: triggers, steps, next schedule tick, latest run."""
    from modelyard.automation._cron import zoned_text

    rows = _svc().list_automations()
    if as_json:
        print_json(rows)
        return
    _table(
        "Automations",
        ["name", "triggers", "steps", "next tick", "last run"],
        [
            [
                a["name"],
                "; ".join(a["triggers"]),
                " → ".join(a["steps"]),
                zoned_text(a["next_tick"], a["next_tick_zone"]) if a["next_tick"] else "",
                f"{a['last_run']['id']} {a['last_run']['state']}" if a["last_run"] else "never",
            ]
            for a in rows
        ],
    )


@app.command("history")
def history(
    name: str = typer.Argument(..., help="The automation."),
    limit: int = typer.Option(20, "--limit", min=1, max=1000, help="How many runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """The newest runs of NAME with each step's outcome and links (run id, version, rollout)."""
    runs = _svc().history(name, limit)
    if as_json:
        print_json(runs)
        return
    rows = []
    for r in runs:
        steps = " → ".join(f"{s['kind']}:{s['state']}" for s in r["steps"])
        links = ", ".join(
            x
            for x in (
                f"pipeline run {r['pipeline_run_id'][:12]}" if r["pipeline_run_id"] else "",
                f"{r['model']} v{r['version']}" if r["model"] else "",
                f"rollout {r['rollout_id']}" if r["rollout_id"] else "",
            )
            if x
        )
        rows.append(
            [r["id"], format_when(r["created_at"]), r["state"], r["reason"], steps, links, r["error"] or ""]
        )
    _table(f"Runs of {name}", ["run", "when", "state", "trigger", "steps", "links", "error"], rows)


@app.command("show")
def show(
    run_id: int = typer.Argument(..., help="The run id (yard automate history NAME)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """One run: its steps and every event."""
    r = _svc().show_run(run_id)
    if as_json:
        print_json(r)
        return
    typer.echo(f"run {r['id']} of {r['automation']}: {r['state']} ({r['trigger']}: {r['reason']})")
    for s in r["steps"]:
        typer.echo(f"  {s['idx'] + 1}. {s['kind']}: {s['state']} — {s['message'] or ''}")
    for e in r["events"]:
        typer.echo(f"  {format_when(e['at'])} {e['kind']}: {e['message']} ({e['actor']})")


@app.command("trigger")
def trigger(
    name: str = typer.Argument(..., help="The automation."),
    reason: str = typer.Option(..., "--reason", help="Why (kept with the run and in the audit trail)."),
    now: bool = typer.Option(
        False, "--now", help="Local store: run scheduler passes here until it waits or ends."
    ),
) -> None:
    """Trigger NAME by hand (the scheduler runs it).

    One run at a time: a trigger while one runs is queued (one); later ones are dropped."""
    r = _svc().trigger(name, reason)
    typer.echo(
        f"run {r['id']} of {name}: {r['state']}" + (f" ({r['error']})" if r["state"] == "dropped" else "")
    )
    if now and r["state"] != "dropped":
        _drive_until_settled(r["id"])


def _drive_until_settled(run_id: int, passes: int = 10_000) -> None:
    from modelyard.automation import AutomationService, Engine

    svc = AutomationService()
    engine = Engine(svc, say=typer.echo)
    for _ in range(passes):
        engine.tick()
        r = svc.show_run(run_id)
        waiting = r["steps"] and r["steps"][-1]["kind"] == "approval" and r["steps"][-1]["state"] == "waiting"
        if r["state"] in ("succeeded", "failed", "dropped") or waiting:
            typer.echo(f"run {run_id}: {r['state']}" + (" (waiting for approval)" if waiting else ""))
            return
        import time

        time.sleep(0.2)


@app.command("approve")
def approve(
    name: str = typer.Argument(..., help="The automation."),
    run_id: int = typer.Argument(..., help="The run waiting for approval."),
    reason: str = typer.Option(None, "--reason", help="A note kept with the approval."),
    reject: bool = typer.Option(False, "--reject", help="Say no: the run fails, no rollout starts."),
) -> None:
    """Approve (or --reject) a run waiting at its approval step.

    Needs role maintainer on the model and membership of the automation's approval group."""
    r = _svc().approve(name, run_id, reason, reject)
    typer.echo(f"run {r['id']} of {name}: {r['approval']} by {r['approved_by']}")


@app.command("run")
def run(
    interval: float = typer.Option(15.0, "--interval", min=0.05, help="Seconds between scheduler passes."),
    once: bool = typer.Option(False, "--once", help="One pass, then exit (for cron)."),
) -> None:
    """The scheduler for a local store, in the foreground: fires due triggers, drives runs.

    `yard server` runs one itself; several schedulers on one store fire each tick once."""
    from modelyard.automation import Scheduler

    s = Scheduler(interval_s=interval, say=typer.echo)
    typer.echo("scheduler running; Ctrl-C stops it" if not once else "one scheduler pass")
    try:
        s.run(passes=1 if once else None)
    except KeyboardInterrupt:
        s.stop()
