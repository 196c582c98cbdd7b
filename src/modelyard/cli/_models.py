"""``yard models``: list, show, alias, rollback, archive, restore registered models; model cards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from modelyard._shared import format_when
from modelyard.cli._common import console, esc, print_json

__all__ = ["app"]

app = typer.Typer(help="Registered models: versions, aliases, audit log, model cards.", no_args_is_help=True)


_when = format_when


def _svc() -> Any:
    from modelyard.registry import RegistryService

    return RegistryService()


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List registered models with their newest version and aliases."""
    models = _svc().list_models()
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    c = console()
    if not models:
        c.print("No models registered. Register one with run.log_model(model, name=...).")
        return
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for col in ("name", "versions", "latest", "aliases", "updated"):
        table.add_column(col, no_wrap=True)
    table.add_column("description", overflow="fold", max_width=48)
    for m in models:
        aliases = ", ".join(f"{esc(a)}→{v}" for a, v in m.aliases.items()) or "-"
        table.add_row(
            esc(m.name),
            str(m.versions),
            str(m.latest_version or "-"),
            aliases,
            _when(m.updated_at),
            esc(m.description or ""),
        )
    c.print(table)


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Model name (or name@alias / name/3)."),
    version: str | None = typer.Option(
        None, "--version", "-v", help="Show one version (a number or an alias)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Show a model's versions, aliases, lineage, metrics and audit log (or one version in detail)."""
    svc = _svc()
    if "@" in name or "/" in name:
        from modelyard.registry import parse_ref

        ref = parse_ref(name)
        name, version = ref.name or name, str(ref.version) if ref.version else ref.alias
    model = svc.get_model(name)
    audit = svc.audit_log(name, version=int(version) if version and version.isdigit() else None)
    if version is not None:
        mv = svc.get_version(name, version)
        audit = svc.audit_log(name, version=mv.version)
        from modelyard.evaluation._hooks import evaluation_summaries, print_evaluations

        if as_json:
            print_json(
                {
                    **mv.to_dict(),
                    "audit": [e.to_dict() for e in audit],
                    "evaluations": evaluation_summaries(svc.ws, name, mv.version),
                }
            )
            return
        _print_version(mv, audit)
        print_evaluations(console(), svc.ws, name, mv.version)
        return
    versions = svc.list_versions(name)
    from modelyard.evaluation._hooks import evaluation_summaries, print_evaluations

    if as_json:
        print_json(
            {
                **model.to_dict(),
                "versions": [v.to_dict() for v in versions],
                "audit": [e.to_dict() for e in audit],
                "evaluations": evaluation_summaries(svc.ws, name),
            }
        )
        return
    from rich.table import Table

    c = console()
    c.print(f"[bold]{esc(model.name)}[/]  {esc(model.description or '')}")
    if model.tags:
        c.print("tags: " + ", ".join(f"{esc(k)}={esc(v)}" for k, v in model.tags.items()))
    c.print("aliases: " + (", ".join(f"[cyan]{esc(a)}[/] → {v}" for a, v in model.aliases.items()) or "-"))
    metric_keys: list[str] = []
    for v in versions:
        metric_keys += [k for k in v.metrics if k not in metric_keys]
    metric_keys = metric_keys[:5]
    table = Table(box=None, header_style="bold")
    for col in ("version", "status", "flavor", "aliases", "run", "created", "by"):
        table.add_column(col, no_wrap=True)
    for k in metric_keys:
        table.add_column(esc(k), justify="right")
    for v in versions:
        status = f"[{'green' if v.status == 'ready' else 'yellow'}]{v.status}[/]"
        table.add_row(
            str(v.version),
            status,
            v.flavor,
            esc(", ".join(v.aliases) or "-"),
            (v.run_id or "-")[:12],
            _when(v.created_at),
            esc(v.created_by or "-"),
            *[esc(_fmt(v.metrics.get(k, ""))) for k in metric_keys],
        )
    c.print(table)
    print_evaluations(c, svc.ws, name)
    _print_audit(audit)


def _print_version(mv: Any, audit: list[Any]) -> None:
    c = console()
    c.print(f"[bold]{esc(mv.name)}[/] version [bold]{mv.version}[/]  ({mv.status})")
    for k, v in [
        ("flavor", mv.flavor),
        ("aliases", ", ".join(mv.aliases) or "-"),
        ("run", mv.run_id or "-"),
        ("created", f"{_when(mv.created_at)} by {mv.created_by or '-'}"),
        ("modelyard", mv.modelyard_version),
        ("size", f"{mv.size:,} bytes"),
        ("manifest", mv.manifest_digest),
    ]:
        c.print(f"  {k:<10} {esc(v)}")
    if mv.signature:
        c.print("  inputs     " + esc(", ".join(f"{s.name}:{s.dtype}" for s in mv.signature.inputs)))
        if mv.signature.outputs:
            c.print("  outputs    " + esc(", ".join(f"{s.name}:{s.dtype}" for s in mv.signature.outputs)))
    if mv.metrics:
        c.print("  metrics    " + esc(", ".join(f"{k}={_fmt(v)}" for k, v in sorted(mv.metrics.items()))))
    c.print("  requires   " + esc(", ".join(f"{p}=={v}" for p, v in sorted(mv.requirements.items()))))
    _print_audit(audit)


def _print_audit(audit: list[Any]) -> None:
    from rich.table import Table

    c = console()
    table = Table(title="audit log", title_justify="left", box=None, header_style="bold")
    for col in ("when", "who", "action", "version", "change", "reason"):
        table.add_column(col)
    for e in audit:
        change = ", ".join(f"{k}={v}" for k, v in e.detail.items() if k in ("alias", "from", "to"))
        table.add_row(
            _when(e.at),
            esc(e.actor or "-"),
            e.action,
            str(e.version or "-"),
            esc(change),
            esc(e.reason or ""),
        )
    c.print(table)


@app.command("alias")
def alias(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias, e.g. production or staging."),
    version: int = typer.Argument(..., help="Version the alias should point at."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the audit log)."),
    force: bool = typer.Option(
        False, "--force", help="Override failed gates of a protected alias (needs --reason; audited)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Point an alias at a version (atomic, audited); a protected alias runs its gate policy first."""
    mv = _svc().set_alias(name, alias, version, reason=reason, force=force)
    if as_json:
        print_json(mv.to_dict())
        return
    typer.echo(f"{name}@{alias} → version {mv.version}")


@app.command("rollback")
def rollback(
    name: str = typer.Argument(..., help="Model name."),
    alias: str = typer.Argument(..., help="Alias to move back."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the audit log)."),
    as_json: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Point an alias back at the version it pointed at before its last move."""
    mv = _svc().rollback(name, alias, reason=reason)
    if as_json:
        print_json(mv.to_dict())
        return
    typer.echo(f"{name}@{alias} rolled back → version {mv.version}")


@app.command("archive")
def archive(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version to archive."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the audit log)."),
) -> None:
    """Archive a version: it keeps its files but can no longer be aliased or be latest."""
    _svc().archive(name, version, reason=reason)
    typer.echo(f"{name}/{version} archived")


@app.command("restore")
def restore(
    name: str = typer.Argument(..., help="Model name."),
    version: int = typer.Argument(..., help="Version to restore."),
    reason: str = typer.Option(None, "--reason", "-r", help="Why (kept in the audit log)."),
) -> None:
    """Bring an archived version back to ready."""
    _svc().restore(name, version, reason=reason)
    typer.echo(f"{name}/{version} restored")


@app.command("card")
def card(
    name: str = typer.Argument(..., help="Model name."),
    version: str = typer.Argument(None, help="Version number or alias (default: latest)."),
    html_out: Path = typer.Option(None, "--html", help="Write a self-contained HTML card to this file."),
    md_out: Path = typer.Option(None, "--output", "-o", help="Write the Markdown card to this file."),
) -> None:
    """Print a model card (Markdown), or write it as self-contained HTML with --html."""
    from modelyard.registry._card import model_card

    mc = model_card(name, version)
    if html_out is not None:
        html_out.write_text(mc.to_html(), encoding="utf-8")
        typer.echo(f"Wrote {html_out}")
    if md_out is not None:
        md_out.write_text(mc.to_markdown(), encoding="utf-8")
        typer.echo(f"Wrote {md_out}")
    if html_out is None and md_out is None:
        typer.echo(mc.to_markdown())
