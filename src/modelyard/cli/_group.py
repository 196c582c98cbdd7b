"""The root ``yard`` group: command groups loaded on first use, and a fast rich help screen.

``yard --help`` must start fast (target < 0.25 s wall). Two things make it slow: importing
every command module, and Typer's rich help, which imports ``rich.markdown`` (markdown-it) and
``rich.traceback`` (pygments) even to print a few panels. So:

- a command group registered with :func:`lazy_group` is listed in the help with the short help
  given at registration, and its module is imported only when the group is invoked (or its own
  help is asked for);
- the root help screen is drawn here with ``rich.console``/``rich.table``/``rich.panel`` only,
  in the same layout as Typer's (usage, description, Options and Commands panels, honouring
  ``rich_help_panel``). Sub-command help and error panels stay Typer's.

Register a group in ``cli/__init__.py`` with one line::

    lazy_group("registry", "modelyard.cli._registry:app", "Register, promote and fetch models.")

The target is ``"module:attribute"`` naming a ``typer.Typer`` (a command group) or a click
command. Eager registration (``app.add_typer(...)``, ``register(app)``) works as before.
"""

from __future__ import annotations

import difflib
import importlib
import os
from dataclasses import dataclass
from typing import Any

import typer
from typer.core import TyperGroup

__all__ = ["LAZY_GROUPS", "LazyGroup", "YardGroup", "lazy_group"]


@dataclass
class LazyGroup:
    """A command registered by name; its module is imported on first use."""

    name: str
    target: str
    help: str
    rich_help_panel: str | None = None
    hidden: bool = False

    def load(self) -> Any:
        """Import the target and turn it into a click command named ``name``."""
        module, _, attr = self.target.partition(":")
        obj = getattr(importlib.import_module(module), attr)
        if isinstance(obj, typer.Typer):
            cmd = typer.main.get_command(obj)
            # a sub-app made with Typer's defaults grows --install/--show-completion: the root has none
            cmd.params = [p for p in cmd.params if p.name not in ("install_completion", "show_completion")]
        else:
            cmd = obj
        cmd.name = self.name
        if self.rich_help_panel and getattr(cmd, "rich_help_panel", None) is None:
            cmd.rich_help_panel = self.rich_help_panel  # type: ignore[attr-defined]
        return cmd


def _flags_show_no_type() -> None:
    """Typer 0.29 draws every flag in the help as taking a ``<bool>`` value (``--json  <bool>``,
    even ``--help  <bool>``), which reads as if ``--json true`` were needed. A flag takes no value:
    show no type for it, as click and older Typer do."""
    from typer.core import TyperOption

    original = getattr(TyperOption, "display_type_rich", None)
    if original is None or getattr(original, "_yard_flags", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "count", False):
            return None
        shown: str | None = original(self, ctx)
        return shown

    display_type_rich._yard_flags = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _help_folds() -> None:
    """Typer's help tables end a word too long for its column with an ellipsis
    (``(http://HOST:POR…``): fold it onto the next line instead, as every yard table does."""
    from typer import rich_utils

    original = rich_utils._get_rich_console
    if getattr(original, "_yard_folds", False):
        return

    def get_console(stderr: bool = False) -> Any:
        from modelyard.cli._common import _whole

        con = original(stderr=stderr)
        plain_print = con.print
        # this one console's print folds long cells first (an instance attribute, on purpose)
        con.print = lambda *objects, **kwargs: plain_print(  # type: ignore[method-assign]
            *(_whole(o, False) for o in objects), **kwargs
        )
        return con

    get_console._yard_folds = True  # type: ignore[attr-defined]
    rich_utils._get_rich_console = get_console


_flags_show_no_type()

#: Lazily registered top-level commands, by name, in registration order.
LAZY_GROUPS: dict[str, LazyGroup] = {}


def lazy_group(
    name: str, target: str, help: str, *, rich_help_panel: str | None = None, hidden: bool = False
) -> None:
    """Register a top-level command (group) ``name`` imported from ``target`` when first used.

    ``help`` is the one-line help shown in ``yard --help`` (keep it equal to the group's own).
    """
    if ":" not in target:
        raise ValueError(f"lazy_group target must look like 'package.module:attribute', got {target!r}")
    LAZY_GROUPS[name] = LazyGroup(name, target, help, rich_help_panel, hidden)


class YardGroup(TyperGroup):
    """The root group: adds :data:`LAZY_GROUPS` and draws its own help without heavy imports."""

    def list_commands(self, ctx: Any) -> list[str]:
        names = super().list_commands(ctx)
        return names + [n for n in LAZY_GROUPS if n not in self.commands]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        cmd = self.commands.get(cmd_name)
        if cmd is None and cmd_name in LAZY_GROUPS:
            cmd = LAZY_GROUPS[cmd_name].load()
            self.commands[cmd_name] = cmd
        return cmd

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if any(a in ("--help", "-h") for a in args):  # Typer draws this help: rich_utils loads anyway
            _help_folds()
        try:
            return super().resolve_command(ctx, args)
        except Exception as exc:  # click's UsageError: suggest lazy names too
            message = getattr(exc, "message", None)
            if isinstance(message, str) and args and message.startswith("No such command"):
                # click suggests among the commands it has loaded; suggest among all, lazy ones included
                base = message.split(" Did you mean", 1)[0].rstrip(".")
                matches = difflib.get_close_matches(args[0], self.list_commands(ctx))
                names = ", ".join(repr(m) for m in matches)
                exc.message = f"{base}. Did you mean {names}?" if matches else f"{base}."  # type: ignore[attr-defined]
            raise

    def format_help(self, ctx: Any, formatter: Any) -> None:
        if self.rich_markup_mode is None:
            return super().format_help(ctx, formatter)
        _print_help(self, ctx)
        return None

    def _command_rows(self, ctx: Any) -> list[tuple[str, str, str | None, bool]]:
        """(name, short help, panel, deprecated) without importing lazy groups."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.commands.get(name)
            if cmd is None:
                lazy = LAZY_GROUPS[name]
                if not lazy.hidden:
                    rows.append((name, lazy.help, lazy.rich_help_panel, False))
            elif not cmd.hidden:
                text = cmd.short_help or cmd.help or ""
                rows.append((name, text, getattr(cmd, "rich_help_panel", None), bool(cmd.deprecated)))
        return rows


# -- the help screen (layout and styles follow typer.rich_utils) --------------------------------------
_STYLE_OPTION = "bold cyan"
_STYLE_SWITCH = "bold green"
_STYLE_TYPES = "bold yellow"
_STYLE_USAGE = "yellow"
_STYLE_ENVVAR = "dim yellow"
_STYLE_DEFAULT = "dim"
_STYLE_REQUIRED = "red"


def _first_paragraph(text: str) -> str:
    import inspect

    text = inspect.cleandoc(text or "")
    return " ".join(text.split("\n\n")[0].split())


def _markup(text: str) -> Any:
    from rich.text import Text

    try:
        return Text.from_markup(text)
    except Exception:  # not valid rich markup: show it as it is
        return Text(text)


def _console() -> Any:
    from rich.console import Console

    width = os.environ.get("TERMINAL_WIDTH")
    force = (
        True
        if (os.environ.get("FORCE_COLOR") or os.environ.get("PY_COLORS") or os.environ.get("GITHUB_ACTIONS"))
        else None
    )
    if os.environ.get("_TYPER_FORCE_DISABLE_TERMINAL"):
        force = False
    return Console(highlight=False, width=int(width) if width else None, force_terminal=force)


def _table() -> Any:
    from rich.table import Table

    return Table(highlight=False, show_header=False, expand=True, box=None, padding=(0, 1), pad_edge=False)


def _panel(table: Any, title: str) -> Any:
    from rich.panel import Panel

    return Panel(table, border_style="dim", title=title, title_align="left")


def _param_row(param: Any, ctx: Any) -> list[Any]:
    from rich.text import Text

    longs = [o for o in [*param.opts, *param.secondary_opts] if o.startswith("--")]
    shorts = [o for o in [*param.opts, *param.secondary_opts] if not o.startswith("--")]
    metavar = ""
    if not getattr(param, "is_flag", False) and not getattr(param, "count", False):
        try:
            metavar = (
                param.display_type_rich(ctx)
                if hasattr(param, "display_type_rich")
                else param.make_metavar(ctx)
            )
        except Exception:  # pragma: no cover - metavar is decoration only
            metavar = ""
    help_text = Text()
    help_text.append_text(_markup(_first_paragraph(param.help or "")))
    envvar = param.envvar if getattr(param, "show_envvar", False) else None
    if envvar:
        help_text.append(
            f"\n[env var: {envvar if isinstance(envvar, str) else ', '.join(envvar)}]", style=_STYLE_ENVVAR
        )
    if getattr(param, "required", False):
        help_text.append(" [required]", style=_STYLE_REQUIRED)
    return [
        Text(",".join(longs), style=_STYLE_OPTION),
        Text(",".join(shorts), style=_STYLE_SWITCH),
        Text(metavar or "", style=_STYLE_TYPES),
        help_text,
    ]


def _print_help(group: YardGroup, ctx: Any) -> None:
    from rich.padding import Padding
    from rich.text import Text

    console = _console()
    usage = Text.assemble(
        ("Usage: ", _STYLE_USAGE), (" ".join([ctx.command_path, *group.collect_usage_pieces(ctx)]), "bold")
    )
    console.print(Padding(usage, 1))
    if group.help:
        console.print(Padding(_markup(_first_paragraph(group.help)), (0, 1, 1, 1)))

    panels: dict[str, list[list[Any]]] = {}
    for param in group.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        title = getattr(param, "rich_help_panel", None) or (
            "Options" if param.param_type_name == "option" else "Arguments"
        )
        panels.setdefault(title, []).append(_param_row(param, ctx))
    for title in sorted(panels, key=lambda t: (t != "Arguments", t != "Options")):
        table = _table()
        for row in panels[title]:
            table.add_row(*row)
        console.print(_panel(table, title))

    rows = group._command_rows(ctx)
    width = max((len(r[0]) for r in rows), default=0)
    by_panel: dict[str, list[tuple[str, str, bool]]] = {}
    for name, text, panel, deprecated in rows:
        by_panel.setdefault(panel or "Commands", []).append((name, text, deprecated))
    for title in sorted(by_panel, key=lambda t: t != "Commands"):
        table = _table()
        table.add_column(style="bold cyan", no_wrap=True, width=width)
        table.add_column()
        for name, text, deprecated in by_panel[title]:
            help_text = _markup(_first_paragraph(text))
            if deprecated:
                help_text = Text.assemble(("(deprecated) ", "red"), help_text)
            table.add_row(Text(name, style="dim" if deprecated else "bold cyan"), help_text)
        console.print(_panel(table, title))
    if group.epilog:
        console.print(Padding(_markup(group.epilog), 1))
