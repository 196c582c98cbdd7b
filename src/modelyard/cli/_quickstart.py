"""``yard quickstart``: the end-to-end demo."""

from __future__ import annotations

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("quickstart")
    def quickstart() -> None:
        """Run an end-to-end demo on the embedded store (./.yard, or --uri / YARD_URI)."""
        import os

        from modelyard.cli._common import console
        from modelyard.quickstart import run_quickstart

        c = console()
        run_quickstart(os.environ.get("YARD_URI") or None, say=c.print)
