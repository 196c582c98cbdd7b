"""``yard quickstart``: the end-to-end demo."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

__all__ = ["COMMAND_PREFIXES", "printer", "register", "strip_markup"]


def register(app: typer.Typer) -> None:
    @app.command("quickstart")
    def quickstart() -> None:
        """Run an end-to-end demo on the embedded store (./.yard, or --uri / YARD_URI)."""
        import os

        from modelyard.cli._common import console
        from modelyard.quickstart import run_quickstart

        run_quickstart(os.environ.get("YARD_URI") or None, say=printer(console()))


def printer(con: Any) -> Callable[[str], None]:
    """How the quickstart prints on ``con`` (a rich console): prose never wrapped mid-line, and
    the commands it suggests as plain text, so they copy and paste whole at any width."""
    import sys

    def say(text: str) -> None:
        if text.lstrip().startswith(COMMAND_PREFIXES):
            print(strip_markup(text), file=sys.stdout, flush=True)
        else:
            con.print(text, soft_wrap=True)

    return say


#: Lines of the quickstart that suggest commands to run.
COMMAND_PREFIXES = ("look:", "try:", "yourself:")


def strip_markup(text: str) -> str:
    """``text`` without rich markup tags like ``[bold]`` / ``[/]``."""
    import re

    return re.sub(r"\[/?[a-z ]*\]", "", text)
