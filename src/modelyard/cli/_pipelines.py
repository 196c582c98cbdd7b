"""``yard pipeline``: run a pipeline, say which steps would run and why, show a run, draw the DAG."""

from __future__ import annotations

from typing import Any

import typer

from modelyard.cli._common import console, esc, print_json

__all__ = ["app"]

app = typer.Typer(
    help="Run cached pipelines of Python steps, explain the cache, show runs and DAGs.", no_args_is_help=True
)

_REF_HELP = "The pipeline as path/to/file.py:name (or package.module:name)."
_PARAM_HELP = "A pipeline param as name=value (repeatable); the value is parsed as JSON when it can be."


def _params(items: list[str] | None) -> dict[str, Any]:
    import json

    from modelyard.errors import InvalidArgumentError

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise InvalidArgumentError(f"--param takes name=value. Got {item!r} instead.")
        k, _, v = item.partition("=")
        try:
            out[k.strip()] = json.loads(v)
        except ValueError:
            out[k.strip()] = v
    return out


def _tags(items: list[str] | None) -> dict[str, str] | None:
    from modelyard.errors import InvalidArgumentError

    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k.strip():
            raise InvalidArgumentError(f"--tag takes name=value. Got {item!r} instead.")
        out[k.strip()] = v
    return out


_STYLE = {
    "cached": "blue",
    "done": "green",
    "failed": "red",
    "skipped": "yellow",
    "pending": "cyan",
    "running": "cyan",
}


def _dur(v: float | None) -> str:
    return f"{v:.2f}s" if v is not None else "-"


@app.command("run")
def run(
    ref: str = typer.Argument(..., help=_REF_HELP),
    param: list[str] = typer.Option(None, "--param", "-p", help=_PARAM_HELP),
    executor: str = typer.Option(
        None, "--executor", "-x", help="local, process (default with > 1 core) or ray."
    ),
    workers: int = typer.Option(None, "--workers", "-w", help="Steps run at once (process, ray)."),
    force: list[str] = typer.Option(
        None, "--force", help="Rerun this step and everything downstream (repeatable)."
    ),
    ray_address: str = typer.Option(None, "--ray-address", envvar="RAY_ADDRESS", help="Ray cluster address."),
    only: list[str] = typer.Option(
        None,
        "--step",
        help="Run only this step (repeatable; a step name or node id). Its upstream steps' outputs are "
        "read from the cache, never recomputed: the run fails if one is missing. One Airflow task runs "
        "one step this way.",
    ),
    tag: list[str] = typer.Option(
        None, "--tag", help="A tag on the pipeline run as name=value (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Run a pipeline: cached steps are skipped, the rest run on the executor; everything is tracked."""
    from modelyard.pipelines import load_pipeline, run_pipeline

    fn = load_pipeline(ref)
    result = run_pipeline(
        fn,
        _params(param),
        executor=executor,
        workers=workers,
        force=force or None,
        ray_address=ray_address,
        progress=None if not as_json else False,
        only=only or None,
        tags=_tags(tag),
    )
    value, value_error = _value(result)
    if as_json:
        out = {**result.to_dict(), "value": _json_value(value), "value_type": _type_name(value)}
        if value_error:
            out["value_error"] = value_error
        print_json(out)
        return
    c = console()
    n = len(result.steps)
    c.print(
        f"Pipeline [bold]{esc(result.pipeline)}[/] finished: run {result.run_id[:12]}, "
        f"{len(result.executed)} of {n} "
        f"steps ran, {len(result.cached)} cached."
    )
    if value_error:
        c.print(f"  returned: (not loaded: {value_error})", markup=False)
    elif value is not None:
        text = short_repr(value)
        sep = "\n" if "\n" in text else " "
        c.print(f"  returned ({_type_name(value)}):{sep}{text}", markup=False)
    c.print(f"  look:  yard pipeline show {result.run_id[:12]}")


#: Text mode shows at most this many characters of the returned value's repr (--json shows all).
REPR_CHARS = 2000


def _value(result: Any) -> tuple[Any, str | None]:
    """The pipeline's return value with step outputs loaded, or why it could not be loaded."""
    from modelyard.errors import ModelyardError

    try:
        return result.value, None
    except ModelyardError as exc:
        return None, str(exc)


def _type_name(value: Any) -> str:
    tp = type(value)
    return tp.__qualname__ if tp.__module__ == "builtins" else f"{tp.__module__}.{tp.__qualname__}"


def short_repr(value: Any, limit: int = REPR_CHARS) -> str:
    """``repr(value)`` for a terminal: containers abbreviated, at most ``limit`` characters."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxdict, r.maxlist, r.maxtuple, r.maxset = 4, 20, 20, 20, 20
    r.maxstring, r.maxlong, r.maxother = 400, 100, limit
    text = r.repr(value)
    if len(text) > limit:
        text = f"{text[:limit]} [... {len(text) - limit:,} more characters; --json shows all]"
    return text


def _json_value(value: Any) -> Any:
    """The value itself when it is plain JSON (dicts, lists, strings, numbers), else its full repr."""
    import json

    from modelyard._json import strict_json

    try:
        json.dumps(strict_json(value), allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


@app.command("status")
def status(
    ref: str = typer.Argument(..., help=_REF_HELP),
    param: list[str] = typer.Option(None, "--param", "-p", help=_PARAM_HELP),
    force: list[str] = typer.Option(None, "--force", help="As for run: treat this step as forced."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Which steps a run would execute and WHY (code changed, param changed, input changed, output
    missing)."""
    from modelyard.pipelines import load_pipeline, pipeline_status

    outcomes = pipeline_status(load_pipeline(ref), _params(param), force=force or None)
    if as_json:
        print_json([o.to_dict() for o in outcomes])
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("step", "would", "why"):
        table.add_column(col)
    for o in outcomes:
        would = "[blue]use cache[/]" if not o.would_run else "[cyan]run[/]"
        table.add_row(esc(o.node), would, esc(o.reason))
    c = console()
    c.print(table)
    todo = sum(o.would_run for o in outcomes)
    c.print(f"{todo} of {len(outcomes)} steps would run.")


@app.command("show")
def show(
    run_id: str = typer.Argument(..., help="A pipeline run id (or a unique prefix of 6+ characters)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """A pipeline run: its steps, durations, cache hits and why, inputs and outputs (lineage)."""
    from modelyard.pipelines import show_pipeline_run

    info = show_pipeline_run(run_id)
    if as_json:
        print_json(info)
        return
    from rich.table import Table

    c = console()
    status_style = {
        "finished": "green",
        "failed": "red",
        "running": "cyan",
        "killed": "yellow",
        "lost": "magenta",
    }.get(info["status"], "")
    c.print(
        f"Pipeline [bold]{esc(info['pipeline'])}[/]  run {info['run_id']}  "
        f"[{status_style}]{info['status']}[/]  "
        f"{_dur(info['duration_s'])}  executor {info['executor']}  experiment {esc(info['experiment'])}"
    )
    if info["params"]:
        c.print("params: " + esc(", ".join(f"{k}={v}" for k, v in sorted(info["params"].items()))))
    table = Table(box=None, pad_edge=False)
    for col in ("step", "status", "time", "run", "output", "why"):
        table.add_column(col, no_wrap=col != "why")
    for s in info["steps"]:
        st = "cached" if s["cache_hit"] else s["status"]
        table.add_row(
            esc(s["node"]),
            f"[{_STYLE.get(st, '')}]{st}[/]",
            _dur(s["duration_s"]),
            s["run_id"][:12],
            (s["output_digest"] or "-")[:12],
            esc(s["reason"] or ""),
        )
    c.print(table)


@app.command("dag")
def dag(
    ref: str = typer.Argument(..., help=_REF_HELP),
    param: list[str] = typer.Option(None, "--param", "-p", help=_PARAM_HELP),
    svg: str = typer.Option(None, "--svg", help="Write the DAG as an SVG file here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Draw the pipeline's DAG (text, or --svg FILE)."""
    from modelyard.pipelines import build_graph, load_pipeline
    from modelyard.pipelines._render import dag_svg, dag_text

    graph = build_graph(load_pipeline(ref), _params(param))
    if as_json:
        print_json(graph.to_dict())
        return
    if svg:
        from pathlib import Path

        Path(svg).write_text(dag_svg(graph))
        typer.echo(f"Wrote {svg} ({len(graph.nodes)} steps).")
        return
    typer.echo(dag_text(graph))


@app.command("clear-cache")
def clear_cache_cmd(
    pipeline: str = typer.Argument(..., help="The pipeline's name (its function name, or name=...)."),
    step: str = typer.Option(None, "--step", help="Only this step's entries."),
) -> None:
    """Forget cache entries so the next run recomputes; `yard gc` then frees unreferenced outputs."""
    from modelyard.pipelines import clear_cache

    n = clear_cache(pipeline, step=step)
    typer.echo(
        f"Removed {n} cache entr{'y' if n == 1 else 'ies'} of pipeline {pipeline}"
        + (f" step {step}." if step else ".")
    )


export_app = typer.Typer(
    help="Export a pipeline to run it from another orchestrator (modelyard still caches and tracks).",
    no_args_is_help=True,
)
app.add_typer(export_app, name="export")


@export_app.command("airflow")
def export_airflow_cmd(
    ref: str = typer.Argument(..., help=_REF_HELP),
    out: str = typer.Option(..., "--out", "-o", help="Folder to write the DAG file into (e.g. your dags/)."),
    param: list[str] = typer.Option(None, "--param", "-p", help=_PARAM_HELP),
    dag_id: str = typer.Option(None, "--dag-id", help="The Airflow DAG id (default: yard_<pipeline>)."),
    schedule: str = typer.Option(
        None,
        "--schedule",
        help="An Airflow schedule, e.g. '0 3 * * 1' or '@daily' (default: none, trigger it).",
    ),
    project_dir: str = typer.Option(
        None, "--project-dir", help="Folder the tasks run in (default: this one; YARD_PROJECT_DIR overrides)."
    ),
    python: str = typer.Option(
        None,
        "--python",
        help="Interpreter that has modelyard and the pipeline's packages (default: the Airflow worker's; "
        "YARD_PYTHON overrides).",
    ),
    executor: str = typer.Option(
        "local", "--executor", "-x", help="How each task runs its step: local, process or ray."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Write an Airflow DAG with one task per pipeline step and the pipeline's dependencies.

    Each task runs `python -m modelyard pipeline run REF --step NODE`: inputs come from modelyard's
    cache, the step is cached and tracked as usual. The store: DAG param or Airflow Variable
    `yard_uri`, else YARD_URI.
    """
    from modelyard.pipelines._airflow import export_airflow

    done = export_airflow(
        ref,
        out,
        params=_params(param),
        dag_id=dag_id,
        schedule=schedule,
        project_dir=project_dir,
        python=python,
        executor=executor,
    )
    if as_json:
        print_json(done.to_dict())
        return
    typer.echo(
        f"Wrote {done.path}: Airflow DAG {done.dag_id!r}, {len(done.tasks)} task(s), "
        f"{len(done.dependencies)} dependenc{'y' if len(done.dependencies) == 1 else 'ies'}."
    )
    typer.echo(f"  try:  airflow dags test {done.dag_id}   (with {out} as the dags folder)")
