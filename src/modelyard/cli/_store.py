"""``yard init``, ``yard doctor``, ``yard gc``: create and look after the store."""

from __future__ import annotations

import typer

from modelyard.cli._common import console, is_tty, print_json

__all__ = ["register"]


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def register(app: typer.Typer) -> None:
    @app.command("init")
    def init(
        path: str = typer.Argument(None, help="Store folder or URI (default: YARD_URI or ./.yard)."),
    ) -> None:
        """Create a store: a SQLite database and a blob folder (./.yard by default)."""
        from modelyard.tracking import init as do_init

        ws = do_init(path)
        loc = ws.location
        typer.echo(
            f"Initialized modelyard store: metadata {loc.dialect} ({loc.root or 'server'}), blobs "
            f"{loc.blob_uri}"
        )

    @app.command("doctor")
    def doctor(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
        """Verify every blob against its digest and every reference; exit 1 on problems."""
        from modelyard._maintenance import doctor as run_doctor

        progress = None
        if is_tty() and not as_json:
            from rich.progress import Progress

            progress = Progress(transient=True)
        if progress is not None:
            with progress:
                task = progress.add_task("verifying blobs", total=None)
                report = run_doctor(on_progress=lambda i, n: progress.update(task, completed=i, total=n))
        else:
            report = run_doctor()
        if as_json:
            print_json(report.to_dict())
        else:
            c = console()
            c.print(
                f"Checked {report.blobs_checked} blobs ({_size(report.bytes_checked)}) in "
                f"{report.seconds:.2f}s."
            )
            for d in report.corrupt:
                c.print(f"[red]corrupt[/]  {d}  (bytes do not match the digest)")
            for d in report.missing:
                c.print(f"[red]missing[/]  {d}  (referenced by the metadata store)")
            if report.stale_temp_files:
                c.print(
                    f"{report.stale_temp_files} unfinished temp file(s) from interrupted writes; "
                    f"`yard gc` removes them."
                )
            if report.unreferenced:
                c.print(f"{report.unreferenced} unreferenced blob(s); `yard gc` removes them.")
            c.print(
                "[green]The store is healthy.[/]"
                if report.healthy
                else "[red]The store has problems (see above).[/]"
            )
        if not report.healthy:
            raise typer.Exit(1)

    @app.command("gc")
    def gc(
        grace: float = typer.Option(3600.0, "--grace", help="Keep blobs younger than this many seconds."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be removed."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    ) -> None:
        """Purge soft-deleted runs and remove blobs nothing references."""
        from modelyard._maintenance import gc as run_gc

        report = run_gc(grace_seconds=grace, dry_run=dry_run)
        if as_json:
            print_json(report.to_dict())
            return
        verb = "Would remove" if dry_run else "Removed"
        typer.echo(
            f"{verb} {report.blobs_removed} blob(s) ({_size(report.bytes_removed)}), "
            f"{report.temp_files_removed} temp file(s); purged {report.runs_purged} deleted run(s)."
        )
