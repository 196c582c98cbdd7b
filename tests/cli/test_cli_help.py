"""Every command's ``--help``: flags are drawn without a value type (Typer 0.29 drew ``<bool>``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from modelyard.cli import app

runner = CliRunner()


def _commands(cmd: Any, path: list[str]) -> Iterator[list[str]]:
    yield path
    if hasattr(cmd, "list_commands"):
        ctx = type(cmd).context_class(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _commands(sub, [*path, name])


def test_no_help_screen_shows_a_bool_value_for_a_flag() -> None:
    paths = list(_commands(typer.main.get_command(app), []))
    assert (
        ["runs", "list"] in paths
        and ["rollout", "start"] in paths
        and ["monitor", "alerts"] in paths
        and len(paths) > 50
    )
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (path, res.output)
        assert "<bool>" not in res.output, (path, res.output)
        assert "install-completion" not in res.output, (
            path
        )  # the root has no completion options: nor do groups
        narrow = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "60"})
        assert "…" not in narrow.output, (path, narrow.output)  # a long word folds, never ends in an ellipsis
    # the flags are still listed, and options that take a value still show its type
    out = runner.invoke(app, ["runs", "list", "--help"], env={"COLUMNS": "200"}).output
    assert "--json" in out and "--deleted" in out and "<int>" in out
    out = runner.invoke(app, ["rollout", "start", "--help"], env={"COLUMNS": "200"}).output
    assert "--auto-promote" in out and "--no-auto-promote" in out
