"""Helpers shared by CLI commands: error handling, JSON output, consoles."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import typer

from modelyard._json import strict_json

__all__ = ["console", "err_console", "fail", "handle_errors", "is_tty", "print_json"]


def is_tty() -> bool:
    """True when stdout is a terminal (progress bars and colours only then)."""
    return sys.stdout.isatty()


def console() -> Any:
    from rich.console import Console

    return Console(highlight=False)


def err_console() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``Error: message`` to stderr and exit with ``code``."""
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def handle_errors() -> Iterator[None]:
    """Turn modelyard errors into a one-line message and a non-zero exit, without a traceback."""
    from modelyard.errors import ModelyardError

    try:
        yield
    except ModelyardError as exc:
        typer.echo(f"Error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        sys.exit(130)


def _default(o: Any) -> Any:
    if isinstance(o, float):
        return str(o)
    if hasattr(o, "to_dict"):
        return o.to_dict()
    if hasattr(o, "isoformat"):
        return o.isoformat()
    return str(o)


def print_json(obj: Any) -> None:
    """Print strict JSON (NaN and inf as strings) to stdout."""
    typer.echo(json.dumps(strict_json(obj), indent=2, default=_default, allow_nan=False))
