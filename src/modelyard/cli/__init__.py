"""The ``yard`` command line: a thin layer over the services, one module per command group.

Command modules import only Typer at module level; services (SQLAlchemy, pandas, scikit-learn)
are imported inside the commands so that ``yard --help`` starts fast. Command groups register with
``lazy_group(name, "module:app", help)`` so their modules load only when used (see ``_group``).
"""

from __future__ import annotations

import os
import sys

import typer

from modelyard._version import __version__
from modelyard.cli import _store
from modelyard.cli._common import handle_errors
from modelyard.cli._group import YardGroup, lazy_group

__all__ = ["app", "main"]

app = typer.Typer(
    name="yard",
    cls=YardGroup,
    help="modelyard: track, version, validate, register, serve and monitor models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"modelyard {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    uri: str = typer.Option(
        None,
        "--uri",
        help="Store: a folder (default YARD_URI, else ./.yard), sqlite:///file.db or postgresql://...",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """modelyard: track, version, validate, register, serve and monitor models."""
    if uri:
        os.environ["YARD_URI"] = uri
        workspace = sys.modules.get("modelyard._workspace")  # not imported yet: nothing chosen earlier, and
        if workspace is not None:  # importing it loads SQLAlchemy, which an unchanged `data add` never needs
            workspace.set_uri(uri)  # an explicit store wins over one chosen earlier in this process


_store.register(app)
# Command groups: prefer lazy_group (imported on first use, so `yard --help` stays fast).
lazy_group("runs", "modelyard.cli._runs:app", "List, inspect, compare and delete tracked runs.")
lazy_group(
    "models", "modelyard.cli._models:app", "Registered models: versions, aliases, audit log, model cards."
)
lazy_group(
    "pipeline",
    "modelyard.cli._pipelines:app",
    "Run Python steps as a tracked, cached DAG (local, process or Ray).",
)
lazy_group(
    "rollout", "modelyard.cli._rollout:app", "Progressive delivery: canary, blue-green, shadow, A/B rollouts."
)
lazy_group(
    "automate", "modelyard.cli._automate:app", "Schedules and triggers: drift → retrain → gates → rollout."
)

# `yard deploy` (k8s here; `grafana` is added by _monitor.register below, into this same group)
from modelyard.cli import _deploy  # noqa: E402

_deploy.register(app)

from modelyard.cli import _quickstart  # noqa: E402

_quickstart.register(app)

from modelyard.cli import _data  # noqa: E402

_data.register(app)

from modelyard.cli import _evaluation  # noqa: E402

_evaluation.register(app)

from modelyard.cli import _serve  # noqa: E402

_serve.register(app)

from modelyard.cli import _build  # noqa: E402

_build.register(app)

from modelyard.cli import _monitor  # noqa: E402

_monitor.register(app)

from modelyard.cli import _rollout  # noqa: E402  (yard rollback: the one-command emergency rollback)

_rollout.register(app)

from modelyard.cli import _server  # noqa: E402  (yard server, login, whoami, users, tokens, groups, grants)

_server.register(app)

from modelyard.cli import _ui  # noqa: E402  (yard ui: the web UI on a local store)

_ui.register(app)


def main() -> None:
    """Entry point of the ``yard`` console script."""
    from modelyard.data import _allocator

    # this process is ours: profiling may tune glibc's allocator (YARD_TUNE_MALLOC=0 opts out)
    _allocator.allow()
    with handle_errors():
        app()


if __name__ == "__main__":  # pragma: no cover
    main()
