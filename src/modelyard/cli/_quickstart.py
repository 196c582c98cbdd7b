"""``yard quickstart``: the end-to-end demo."""

from __future__ import annotations

import typer

__all__ = ["COMMAND_PREFIXES", "register", "strip_markup"]


def register(app: typer.Typer) -> None:
    @app.command("quickstart")
    def quickstart() -> None:
        """Run an end-to-end demo on the embedded store (./.yard, or --uri / YARD_URI)."""
        import os

        from modelyard.cli._common import console
        from modelyard.quickstart import run_quickstart

        c = console()

        def say(text: str) -> None:
            if text.lstrip().startswith(COMMAND_PREFIXES):  # commands to copy: plain, never wrapped
                print(strip_markup(text), flush=True)
            else:
                c.print(text, soft_wrap=True)

        run_quickstart(os.environ.get("YARD_URI") or None, say=say)


#: Lines of the quickstart that suggest commands to run.
COMMAND_PREFIXES = ("look:", "try:", "yourself:")


def strip_markup(text: str) -> str:
    """``text`` without rich markup tags like ``[bold]`` / ``[/]``."""
    import re

    return re.sub(r"\[/?[a-z ]*\]", "", text)
