"""Helpers shared by CLI commands: error handling, JSON output, consoles."""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Iterator
from typing import IO, Any, NoReturn

import typer

from modelyard._json import strict_json

__all__ = ["PIPE_WIDTH", "console", "err_console", "esc", "fail", "handle_errors", "is_tty", "print_json"]

#: Width of a console whose stream is not a terminal (CI logs, ``| cat``, files): wide enough that a
#: table never squeezes a column; nothing pads lines to it (tables are only as wide as their cells).
PIPE_WIDTH = 100_000


def is_tty() -> bool:
    """True when stdout is a terminal (progress bars and colours only then)."""
    return sys.stdout.isatty()


def esc(value: Any) -> str:
    """``str(value)`` escaped so rich prints it as it is.

    Every stored name or value shown through rich (table cells and headers, ``print`` with markup)
    goes through this: rich would take ``drift_score[tenure]`` or ``[relu, tanh]`` for style tags and
    drop them, and fail on a stray ``[/]``.
    """
    from rich.markup import escape

    return escape(str(value))


def _whole(obj: Any, wide: bool) -> Any:
    """``obj`` with every table column set never to lose text: fold, never an ellipsis or a crop.

    On a terminal a too-long cell wraps inside its column; off a terminal (``wide``) column width caps
    are dropped too, so each value stays on one line where ``grep`` finds it.
    """
    from rich.columns import Columns
    from rich.console import Group
    from rich.panel import Panel
    from rich.protocol import rich_cast
    from rich.table import Table
    from rich.text import Text

    if isinstance(obj, str):
        return obj
    obj = rich_cast(obj)
    if isinstance(obj, Text):
        if obj.overflow in (None, "ellipsis", "crop"):
            obj.overflow = "fold"
    elif isinstance(obj, Columns):  # Typer's help cells: a grid whose columns would ellipsize
        obj.renderables = [_whole(r, wide) for r in obj.renderables]
    elif isinstance(obj, Panel):
        obj.renderable = _whole(obj.renderable, wide)
    elif isinstance(obj, Table):
        for col in obj.columns:
            col.overflow = "fold"
            col.no_wrap = False  # a no_wrap column is cropped (not folded) when the table is too wide
            if wide:
                col.max_width = None
            col._cells = [_whole(cell, wide) for cell in col._cells]
    elif isinstance(obj, Group):
        obj._render = [_whole(r, wide) for r in obj.renderables]
    return obj


@functools.cache
def _console_class() -> Any:
    from rich.console import Console

    class YardConsole(Console):
        """A rich Console whose tables never truncate (see :func:`console`)."""

        def __init__(self, wide: bool, **kwargs: Any) -> None:
            self._wide = wide
            super().__init__(**kwargs)

        def print(self, *objects: Any, **kwargs: Any) -> None:
            super().print(*(_whole(o, self._wide) for o in objects), **kwargs)

    return YardConsole


def _make_console(stream: IO[str], **kwargs: Any) -> Any:
    wide = not stream.isatty()
    if wide:  # a pipe or a file: no terminal width to respect (COLUMNS is ignored), never wrap text
        kwargs.update(width=PIPE_WIDTH, soft_wrap=True)
    return _console_class()(wide, highlight=False, **kwargs)


def console() -> Any:
    """The console every command prints with.

    On a terminal it is rich's usual console, except that table cells fold instead of ending in an
    ellipsis. When stdout is not a terminal (CI logs, ``| cat``) it is :data:`PIPE_WIDTH` wide and
    soft-wrapping, so tables show every value in full on one line, aligned, without colour codes.
    """
    return _make_console(sys.stdout)


def err_console() -> Any:
    """Like :func:`console`, on stderr."""
    return _make_console(sys.stderr, stderr=True)


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
