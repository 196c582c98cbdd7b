"""``yard runs``: list, show, compare, delete and download runs."""

from __future__ import annotations

from typing import Any

import typer

from modelyard._shared import format_when
from modelyard.cli._common import console, esc, print_json

__all__ = ["app"]

app = typer.Typer(help="List, inspect, compare and delete tracked runs.", no_args_is_help=True)


def _service() -> Any:
    from modelyard.tracking import TrackingService

    return TrackingService()


_when = format_when


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "NaN"
        return f"{v:.6g}"
    return str(v)


def _dataset_inputs(run_id: str) -> list[Any]:
    from modelyard.data import DataService

    inputs: list[Any] = DataService().inputs_of(run_id)
    return inputs


_STATUS_STYLE = {
    "running": "cyan",
    "finished": "green",
    "failed": "red",
    "killed": "yellow",
    "lost": "magenta",
}


@app.command("list")
def list_runs(
    experiment: list[str] = typer.Option(
        None, "--experiment", "-e", help="Only runs of this experiment (repeatable)."
    ),
    filter: str = typer.Option(
        None, "--filter", "-f", help="Filter, e.g. \"metrics.acc > 0.9 and params.lr = '0.01'\"."
    ),
    order_by: list[str] = typer.Option(
        None, "--order-by", "-o", help="e.g. 'metrics.acc desc' (repeatable)."
    ),
    limit: int = typer.Option(50, "--limit", "-n", help="At most this many runs."),
    deleted: bool = typer.Option(False, "--deleted", help="Include soft-deleted runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List runs, newest first, with their key metrics."""
    runs = _service().search_runs(
        experiment or None, filter=filter, order_by=order_by or None, limit=limit, include_deleted=deleted
    )
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    from rich.table import Table

    metric_keys: list[str] = []
    for r in runs:
        for k in r.metrics:
            if k not in metric_keys:
                metric_keys.append(k)
    metric_keys = metric_keys[:6]
    table = Table(box=None, header_style="bold")
    for col in ("run id", "experiment", "name", "status", "started", "duration"):
        table.add_column(col, no_wrap=True)
    for k in metric_keys:
        table.add_column(esc(k), justify="right")
    for r in runs:
        status = f"[{_STATUS_STYLE.get(r.status.value, '')}]{r.status.value}[/]"
        dur = f"{r.duration_s:.1f}s" if r.duration_s is not None else "-"
        name = ("  └ " if r.parent_id else "") + esc(r.name) + (" (deleted)" if r.deleted else "")
        # the full id: a 12-character prefix is only the start millisecond, shared by runs started together
        table.add_row(
            r.id,
            esc(r.experiment),
            name,
            status,
            _when(r.start_time),
            dur,
            *[esc(_fmt(r.metrics.get(k, ""))) for k in metric_keys],
        )
    c = console()
    if not runs:
        c.print("No runs found.")
        return
    c.print(table)


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="Run id (a unique prefix of 6+ characters works)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show a run: params, last metrics, tags, artifacts, environment."""
    r = _service().get_run(run_id)
    if as_json:
        print_json({**r.to_dict(), "inputs": [v.to_dict() for v in _dataset_inputs(r.id)]})
        return
    from rich.table import Table

    c = console()
    c.print(f"[bold]{esc(r.name)}[/]  {r.id}")
    c.print(f"experiment  {esc(r.experiment)}")
    c.print(
        f"status      [{_STATUS_STYLE.get(r.status.value, '')}]{r.status.value}[/]"
        + ("  (deleted)" if r.deleted else "")
    )
    c.print(f"started     {_when(r.start_time)}   ended {_when(r.end_time)}")
    if r.status.value in ("running", "lost") and r.heartbeat_time:
        note = ""
        if r.status.value == "lost":
            note = "  (no heartbeat since: its process probably died; yard.start_run(run_id=...) resumes it)"
        c.print(f"last seen   {_when(r.heartbeat_time)}{note}")
    if r.parent_id:
        c.print(f"parent      {r.parent_id}")
    if r.user:
        c.print(f"user        {esc(r.user)}")
    for title, data in (("params", r.params), ("metrics", r.metrics), ("tags", r.tags)):
        if data:
            t = Table(title=title, title_justify="left", box=None, show_header=False)
            t.add_column("key", style="bold")
            t.add_column("value")
            for k, v in data.items():
                t.add_row(esc(k), esc(_fmt(v)))
            c.print(t)
    if r.artifacts:
        t = Table(title="artifacts", title_justify="left", box=None)
        for col in ("path", "kind", "size", "digest"):
            t.add_column(col)
        for a in r.artifacts:
            t.add_row(esc(a.path), a.kind, f"{a.size:,}", a.digest[:16])
        c.print(t)
    inputs = _dataset_inputs(r.id)
    if inputs:
        t = Table(title="dataset inputs", title_justify="left", box=None)
        for col in ("dataset", "rows", "manifest"):
            t.add_column(col)
        for v in inputs:
            t.add_row(esc(v.ref), f"{v.rows:,}" if v.rows is not None else "-", v.manifest_digest[:16])
        c.print(t)
    if r.environment:
        t = Table(title="environment", title_justify="left", box=None, show_header=False)
        t.add_column("key", style="bold")
        t.add_column("value")
        for k, v in sorted(r.environment.items()):
            t.add_row(esc(k), esc(v))
        c.print(t)
    if r.error:
        c.print("[red]error[/]")
        c.print(r.error.rstrip(), markup=False)


@app.command("compare")
def compare(
    run_a: str = typer.Argument(..., help="First run id."),
    run_b: str = typer.Argument(..., help="Second run id."),
    all_rows: bool = typer.Option(False, "--all", help="Also show rows that are equal."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Compare two runs side by side; differences are highlighted."""
    svc = _service()
    a, b = svc.get_run(run_a), svc.get_run(run_b)
    rows: list[tuple[str, str, Any, Any]] = []
    for section, da, db in (
        ("param", a.params, b.params),
        ("metric", a.metrics, b.metrics),
        ("tag", a.tags, b.tags),
    ):
        for k in sorted(set(da) | set(db)):
            rows.append((section, k, da.get(k), db.get(k)))
    for k in sorted(set(a.environment) | set(b.environment)):
        rows.append(("env", k, a.environment.get(k), b.environment.get(k)))

    def same(x: Any, y: Any) -> bool:
        return x == y or (isinstance(x, float) and isinstance(y, float) and x != x and y != y)

    if as_json:
        print_json(
            {
                "a": a.id,
                "b": b.id,
                "rows": [
                    {"section": s, "key": k, "a": va, "b": vb, "differs": not same(va, vb)}
                    for s, k, va, vb in rows
                    if all_rows or not same(va, vb)
                ],
            }
        )
        return
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    t.add_column("")
    t.add_column("key")
    t.add_column(f"{esc(a.name)} ({a.id[:8]})")
    t.add_column(f"{esc(b.name)} ({b.id[:8]})")
    t.add_column("Δ", justify="right")
    shown = 0
    for section, k, va, vb in rows:
        diff = not same(va, vb)
        if not diff and not all_rows:
            continue
        delta = ""
        if diff and isinstance(va, float) and isinstance(vb, float):
            delta = f"{vb - va:+.4g}"
        style = "yellow" if diff else "dim"
        t.add_row(
            section,
            esc(k),
            esc(_fmt(va)) if va is not None else "—",
            esc(_fmt(vb)) if vb is not None else "—",
            delta,
            style=style,
        )
        shown += 1
    c = console()
    if shown == 0:
        c.print("The two runs have the same params, metrics, tags and environment.")
    else:
        c.print(t)


@app.command("delete")
def delete(
    run_ids: list[str] = typer.Argument(..., help="Run ids to soft-delete (children go too)."),
    restore: bool = typer.Option(False, "--restore", help="Undo a soft delete instead."),
) -> None:
    """Soft-delete runs; `yard gc` removes them and their unreferenced blobs later."""
    svc = _service()
    for rid in run_ids:
        svc.delete_run(rid, restore=restore)
        typer.echo(f"{'Restored' if restore else 'Deleted'} run {svc.resolve_run_id(rid)}")


@app.command("download")
def download(
    run_id: str = typer.Argument(..., help="Run id."),
    path: str = typer.Argument(..., help="Artifact path in the run (see `yard runs show`)."),
    dest: str = typer.Option(".", "--dest", "-d", help="Where to write it."),
) -> None:
    """Download an artifact (file or folder), verified against its digests."""
    out = _service().download_artifact(run_id, path, dest)
    typer.echo(str(out))


@app.command("metrics")
def metric_history(
    run_id: str = typer.Argument(..., help="Run id."),
    key: str = typer.Argument(..., help="Metric name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Print every logged point of one metric."""
    points = _service().metric_history(run_id, key)
    if as_json:
        print_json([{"step": p.step, "value": p.value, "timestamp": p.timestamp} for p in points])
        return
    for p in points:
        typer.echo(f"{p.step}\t{_fmt(p.value)}\t{_when(p.timestamp)}")
