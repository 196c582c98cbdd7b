"""The fluent tracking API: ``yard.start_run``, ``yard.search_runs``, ``yard.get_run``..."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from modelyard._shared import user_name
from modelyard._workspace import Workspace, get_workspace
from modelyard.tracking import _heartbeat
from modelyard.tracking._env import capture_environment
from modelyard.tracking._records import RunList, RunRecord, RunStatus
from modelyard.tracking._rows import _param_rows, _tag_rows, param_conflict
from modelyard.tracking._run import Run, _push_active, _require_no_active, active_run
from modelyard.tracking._service import TrackingService

__all__ = ["active_run", "delete_run", "get_run", "init", "search_runs", "start_run"]

DEFAULT_EXPERIMENT = "default"

_env_cache: dict[str, Any] = {}


def _environment() -> tuple[dict[str, Any], list[str]]:
    # The package list is read once per process; the git state is read for every run, since
    # files change between runs of one notebook session.
    env, packages = capture_environment(os.getcwd(), _env_cache.get("packages"))
    _env_cache["packages"] = packages
    return env, list(packages)


def init(uri: str | os.PathLike[str] | None = None) -> Workspace:
    """Create (or open and migrate) the store at ``uri`` (default: YARD_URI or ./.yard)."""
    return get_workspace(uri).open()


def start_run(
    experiment: str | None = None,
    name: str | None = None,
    *,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    nested: bool = False,
    run_id: str | None = None,
    capture_env: bool = True,
    uri: str | os.PathLike[str] | Workspace | None = None,
) -> Run:
    """Start a run (or resume one with ``run_id``) and make it the active run.

    Use it as a context manager: the run ends ``finished``, or ``failed`` with the traceback
    when the block raises, or ``killed`` on Ctrl-C. ``nested=True`` starts a child of the active
    run (its experiment is inherited). ``experiment`` defaults to ``YARD_EXPERIMENT`` or
    ``"default"``.
    """
    _heartbeat.interval_ms()  # a bad YARD_HEARTBEAT_INTERVAL fails here, not in the background thread
    parent = _require_no_active(nested)
    if parent is not None:
        service = parent._service
        experiment = parent.experiment if experiment is None else experiment
    else:
        service = TrackingService(get_workspace(uri))
    if run_id is not None:
        record = service.get_run(run_id)
        # check params and tags before reopening the run: a rejected call changes nothing stored
        for row in _param_rows(record.id, params or {}):
            old = record.params.get(row["key"])
            if old is not None and old != row["value"]:
                raise param_conflict(record.id, row["key"], old, row["value"])
        _tag_rows(record.id, tags or {})
        if record.status is not RunStatus.RUNNING:
            service.reopen_run(record.id)
        run = Run(service, service.get_run(record.id))
        # default steps carry on after the last stored step of each metric
        run._next_step.update({k: step + 1 for k, step in service.latest_steps(record.id).items()})
        if params:
            run.log_params(params)
        if tags:
            run.set_tags(tags)
        _push_active(run)
        return run
    if experiment is None:
        experiment = os.environ.get("YARD_EXPERIMENT") or DEFAULT_EXPERIMENT
    env: dict[str, Any] = {}
    packages: list[str] = []
    if capture_env:
        env, packages = _environment()
    record = service.create_run(
        experiment=experiment,
        name=name,
        parent_id=parent.id if parent is not None else None,
        user=user_name(),
        environment=env,
        params_=params,
        tags_=tags,
    )
    run = Run(service, record)
    if packages:
        service.log_bytes(run.id, ("\n".join(packages) + "\n").encode(), "environment/requirements.txt")
    _push_active(run)
    return run


def get_run(run_id: str, *, uri: str | os.PathLike[str] | Workspace | None = None) -> RunRecord:
    """Everything stored about a run (a unique id prefix of 6+ characters works too)."""
    return TrackingService(get_workspace(uri)).get_run(run_id)


def search_runs(
    experiment: str | Sequence[str] | None = None,
    *,
    filter: str | None = None,
    order_by: Sequence[str] | str | None = None,
    limit: int = 100,
    include_deleted: bool = False,
    uri: str | os.PathLike[str] | Workspace | None = None,
) -> RunList:
    """Runs of ``experiment`` (all when None) matching ``filter``.

    ``filter`` example: ``"metrics.acc > 0.9 and params.lr = '0.01' or tags.team = 'risk'"``;
    ``order_by`` example: ``["metrics.acc desc", "start_time"]``. Returns a list of
    :class:`RunRecord` with ``.to_pandas()``.
    """
    return TrackingService(get_workspace(uri)).search_runs(
        experiment, filter=filter, order_by=order_by, limit=limit, include_deleted=include_deleted
    )


def delete_run(run_id: str, *, uri: str | os.PathLike[str] | Workspace | None = None) -> None:
    """Soft-delete a run and its children (``yard gc`` purges them and their blobs later)."""
    TrackingService(get_workspace(uri)).delete_run(run_id)
