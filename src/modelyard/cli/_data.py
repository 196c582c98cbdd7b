"""``yard data`` (add, list, show, diff, get, schema) and ``yard validate data``."""

from __future__ import annotations

from typing import Any

import typer

from modelyard._shared import format_when
from modelyard.cli._common import console, esc, print_json
from modelyard.data._record import human_size as _size

__all__ = ["register"]

app = typer.Typer(
    help="Version datasets: add, list, show, diff, get, and infer expectations.", no_args_is_help=True
)
validate_app = typer.Typer(
    help="Validate data against a dataset version or an expectation suite.", no_args_is_help=True
)


def _svc() -> Any:
    from modelyard.data import DataService

    return DataService()


_when = format_when


def _num(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


@app.command("add")
def add(
    path: str = typer.Argument(
        ..., help="A file or a folder (Parquet, CSV, Arrow/Feather files get a profile)."
    ),
    name: str = typer.Option(..., "--name", "-n", help="Dataset name, e.g. churn-train."),
    description: str = typer.Option(None, "--description", "-d", help="A note stored with the version."),
    no_profile: bool = typer.Option(False, "--no-profile", help="Skip profiling tabular files."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Store a file or folder as the next version of a dataset (no new version when unchanged)."""
    from modelyard.data._unchanged import unchanged_version

    # an unchanged path is answered by one read-only query, before SQLAlchemy and the store open
    v = unchanged_version(path, name) or _svc().add(
        path, name, description=description, profile=not no_profile
    )
    if as_json:
        print_json(v.to_dict())
        return
    state = "added" if v.created else "unchanged, still"
    rows = f", {v.rows:,} rows" if v.rows is not None else ""
    typer.echo(f"{state} {v.ref}  {v.manifest_digest[:16]}  ({v.files} file(s), {_size(v.bytes)}{rows})")


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List datasets with their latest version."""
    items = _svc().list_datasets()
    if as_json:
        print_json(items)
        return
    c = console()
    if not items:
        c.print("No datasets yet. Add one with: yard data add PATH --name NAME")
        return
    from rich.table import Table

    t = Table(box=None, header_style="bold")
    for col in ("dataset", "latest", "versions", "format", "rows", "size", "created"):
        t.add_column(col, no_wrap=True)
    for d in items:
        v = d["latest"] or {}
        t.add_row(
            esc(d["name"]),
            f"v{v.get('version', '-')}",
            str(d["versions"]),
            v.get("format", "-"),
            f"{v['rows']:,}" if v.get("rows") is not None else "-",
            _size(v.get("bytes")),
            _when(v.get("created_at")),
        )
    c.print(t)


@app.command("show")
def show(
    ref: str = typer.Argument(..., help="NAME, NAME@latest or NAME@vN."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show a version: files, schema, profile, the runs that used it, and the other versions."""
    from modelyard.data import show as do_show

    info = do_show(ref)
    if as_json:
        print_json(info)
        return
    from rich.table import Table

    v = info["version"]
    c = console()
    c.print(f"[bold]{esc(v['ref'])}[/]  manifest {v['manifest_digest']}")
    rows = f"{v['rows']:,}" if v["rows"] is not None else "-"
    c.print(
        f"format {v['format']}   files {v['files']}   rows {rows}   size {_size(v['bytes'])}   "
        f"created {_when(v['created_at'])}"
    )
    if v.get("run_id"):
        c.print(f"produced by run {v['run_id']}")
    if v.get("description"):
        c.print(v["description"], markup=False)
    prof = info["profile"]
    if prof:
        t = Table(title="profile", title_justify="left", box=None, header_style="bold")
        for col in ("column", "type", "nulls", "distinct", "min", "max", "mean", "std", "top values"):
            t.add_column(col, no_wrap=col != "top values")
        for col in prof["columns"]:
            top = esc(", ".join(f"{k} ({n})" for k, n in col["top"][:3]))
            t.add_row(
                esc(col["name"]),
                col["type"],
                f"{col['nulls']:,}",
                ("" if col["distinct_exact"] else "~") + f"{col['distinct']:,}",
                esc(_num(col["min"])),
                esc(_num(col["max"])),
                _num(col["mean"]),
                _num(col["std"]),
                top,
            )
        c.print(t)
    elif info["schema"]:
        t = Table(title="schema", title_justify="left", box=None)
        t.add_column("column")
        t.add_column("type")
        for col in info["schema"]["columns"]:
            t.add_row(esc(col["name"]), col["type"])
        c.print(t)
    files = info["files"]
    t = Table(title=f"files ({len(files)})", title_justify="left", box=None)
    for col in ("path", "size", "digest"):
        t.add_column(col)
    for f in files[:20]:
        t.add_row(esc(f["path"]), _size(f["size"]), f["digest"][:16])
    if len(files) > 20:
        t.add_row(f"... {len(files) - 20} more (--json lists all)", "", "")
    c.print(t)
    if info["runs"]:
        t = Table(title="used by runs", title_justify="left", box=None)
        for col in ("run id", "experiment", "name", "status", "started"):
            t.add_column(col)
        for r in info["runs"]:
            t.add_row(r["id"][:12], esc(r["experiment"]), esc(r["name"]), r["status"], _when(r["start_time"]))
        c.print(t)
    else:
        c.print("used by runs: none yet (run.use_dataset(...) records it)")
    if len(info["versions"]) > 1:
        c.print("versions: " + "  ".join(f"v{x['version']}" for x in info["versions"]))


@app.command("diff")
def diff(
    a: str = typer.Argument(..., help="Older version, e.g. churn-train@v2."),
    b: str = typer.Argument(..., help="Newer version, e.g. churn-train@v3."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Files added/removed/changed, schema changes and statistics changes between two versions."""
    d = _svc().diff(a, b)
    if as_json:
        print_json(d)
        return
    from rich.table import Table

    c = console()
    c.print(
        f"[bold]{esc(d['a'])} → {esc(d['b'])}[/]   rows {_num(d['rows'][0])} → "
        f"{_num(d['rows'][1])}   size {_size(d['bytes'][0])} → {_size(d['bytes'][1])}"
    )
    f = d["files"]
    for e in f["added"]:
        c.print(f"[green]+ {esc(e['path'])}[/]  ({_size(e['size'])})")
    for e in f["removed"]:
        c.print(f"[red]- {esc(e['path'])}[/]  ({_size(e['size'])})")
    for e in f["changed"]:
        c.print(f"[yellow]~ {esc(e['path'])}[/]  ({_size(e['size_a'])} → {_size(e['size_b'])})")
    c.print(f"{f['unchanged']} file(s) unchanged")
    s = d["schema"]
    for e in s["added"]:
        c.print(f"[green]+ column {esc(e['column'])}[/] ({e['type']})")
    for e in s["removed"]:
        c.print(f"[red]- column {esc(e['column'])}[/] ({e['type']})")
    for e in s["type_changed"]:
        c.print(f"[yellow]~ column {esc(e['column'])}[/] {e['a']} → {e['b']}")
    if d["columns"]:
        t = Table(box=None, header_style="bold")
        for col in ("column", "nulls %", "distinct", "min", "max", "mean", "std", "PSI"):
            t.add_column(col, justify="right" if col != "column" else "left")
        for r in d["columns"]:

            def pair(key: str, r: dict[str, Any] = r) -> str:
                x, y = r[key]
                if key == "null_fraction":
                    x = None if x is None else 100 * x
                    y = None if y is None else 100 * y
                text = esc(f"{_num(x)} → {_num(y)}")
                return text if x != y else f"[dim]{esc(_num(x))}[/]"

            psi, limit = r["psi"], r.get("psi_limit")
            # "0.31 > 0.26 shifted": beyond what two samples of one distribution reach (as `validate` judges)
            text = _num(psi) if not r.get("shifted") else f"{_num(psi)} > {_num(limit)} shifted"
            t.add_row(
                esc(r["column"]),
                pair("null_fraction"),
                pair("distinct"),
                pair("min"),
                pair("max"),
                pair("mean"),
                pair("std"),
                f"[red]{esc(text)}[/]" if r.get("shifted") else text,
            )
        c.print(t)


@app.command("get")
def get(
    ref: str = typer.Argument(..., help="NAME@vN (or NAME for the latest)."),
    dest: str = typer.Argument(..., help="Folder to write the files into."),
    link: bool = typer.Option(
        False,
        "--link",
        help="Hard-link the stored files instead of copying (no extra space). RISK: the files ARE the stored "
        "version; editing one in place corrupts it (read-only mode does not stop root).",
    ),
    copy: bool = typer.Option(False, "--copy", hidden=True, help="Copy: the default (kept for old scripts)."),
) -> None:
    """Materialize a version's files as verified copies (reflinks where the filesystem has them)."""
    if link and copy:
        from modelyard.errors import InvalidArgumentError

        raise InvalidArgumentError("Give --link or --copy, not both (copying is the default).")
    out = _svc().get(ref, dest, link=link)
    typer.echo(str(out))


@app.command("schema")
def schema(
    ref: str = typer.Argument(..., help="NAME@vN: the reference to infer expectations from."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of YAML."),
) -> None:
    """Print expectations inferred from a version as editable YAML (redirect to a file)."""
    from modelyard.data._expectations import infer_suite

    suite = infer_suite(ref)
    if as_json:
        print_json(suite.to_dict())
    else:
        typer.echo(suite.to_yaml(), nl=False)


@validate_app.command("data")
def validate_data(
    path: str = typer.Argument(..., help="A file or folder of Parquet/CSV/Arrow files to check."),
    against: str = typer.Option(
        None, "--against", "-a", help="Reference dataset version, e.g. churn-train@v3."
    ),
    suite: str = typer.Option(None, "--suite", "-s", help="Expectations YAML (see `yard data schema`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    html: str = typer.Option(None, "--html", help="Also write a self-contained HTML report here."),
    junit: str = typer.Option(
        None, "--junit", help="Also write JUnit XML here (one test case per expectation)."
    ),
    all_checks: bool = typer.Option(False, "--all", help="List every check, not only the failed ones."),
) -> None:
    """Check data against expectations; exit code 1 when any check fails. Prints the failed checks
    (with failing row counts and sample rows) and a count of the passes; --all lists every check."""
    from pathlib import Path

    from modelyard.data._validate import validate

    report = validate(path, against=against, suite=suite)
    if html:
        Path(html).write_text(report.to_html(), encoding="utf-8")
    if junit:
        Path(junit).write_text(report.to_junit(), encoding="utf-8")
    if as_json:
        typer.echo(report.to_json())
    else:
        report.print(console(), all_checks=all_checks, hint="--all")
        for label, target in (("HTML report", html), ("JUnit XML", junit)):
            if target:
                typer.echo(f"{label}: {target}")
    if not report.ok:
        raise typer.Exit(1)


def register(root: typer.Typer) -> None:
    """Add ``yard data`` and ``yard validate`` to the root app."""
    root.add_typer(app, name="data")
    root.add_typer(validate_app, name="validate")
