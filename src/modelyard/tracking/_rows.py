"""Run rows and records: the checked params and tags rows a run writes (a param never changes:
``param_conflict``) and the ``RunRecord`` read back from a ``runs`` row with its params, latest
metrics, tags and artifacts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import ConflictError, invalid_param
from modelyard.store._schema import artifacts, latest_metrics, params, tags
from modelyard.tracking import _heartbeat
from modelyard.tracking._env import redact_environment
from modelyard.tracking._records import ArtifactRecord, RunRecord, RunStatus
from modelyard.tracking._validation import check_key, check_value

__all__ = ["param_conflict", "run_records"]


def param_conflict(run_id: str, key: str, old: str, new: str) -> ConflictError:
    """The error for a param logged again with another value."""
    return ConflictError(
        f"Param {key!r} of run {run_id} is already {old!r}; it cannot change to {new!r}. "
        "Params are fixed once logged: start a new run for a new value, or log it as a tag."
    )


def _key_value_rows(run_id: str, values: Mapping[str, Any], what: str, caller: str) -> list[dict[str, Any]]:
    """The rows of a run's ``what``s (``"param"``/``"tag"``), each name and value checked."""
    if not isinstance(values, Mapping):
        raise invalid_param(f"{what}s", caller, "a mapping of name to value", values)
    return [
        {"run_id": run_id, "key": check_key(k, f"{what} name"), "value": check_value(k, v, what)}
        for k, v in values.items()
    ]


def _param_rows(run_id: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _key_value_rows(run_id, values, "param", "log_params")


def _tag_rows(run_id: str, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    return _key_value_rows(run_id, values, "tag", "set_tags")


def run_records(conn: Connection, rows: Sequence[Any]) -> list[RunRecord]:
    """The ``RunRecord`` of each ``runs`` row, with its params, latest metrics, tags and artifacts."""
    ids = [r.id for r in rows]
    if not ids:
        return []
    p: dict[str, dict[str, str]] = {i: {} for i in ids}
    m: dict[str, dict[str, float]] = {i: {} for i in ids}
    t: dict[str, dict[str, str]] = {i: {} for i in ids}
    a: dict[str, list[ArtifactRecord]] = {i: [] for i in ids}
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        # Plain tuples fetched at once: attribute access on rows costs more than the query.
        for run_id, key, value in conn.execute(
            sa.select(params.c.run_id, params.c.key, params.c.value).where(params.c.run_id.in_(chunk))
        ).all():
            p[run_id][key] = value
        for run_id, key, value, is_nan in conn.execute(
            sa.select(
                latest_metrics.c.run_id,
                latest_metrics.c.key,
                latest_metrics.c.value,
                latest_metrics.c.is_nan,
            ).where(latest_metrics.c.run_id.in_(chunk))
        ).all():
            m[run_id][key] = float("nan") if is_nan else float(value)
        for run_id, key, value in conn.execute(
            sa.select(tags.c.run_id, tags.c.key, tags.c.value).where(tags.c.run_id.in_(chunk))
        ).all():
            t[run_id][key] = value
        for r in conn.execute(
            sa.select(artifacts).where(artifacts.c.run_id.in_(chunk)).order_by(artifacts.c.path)
        ):
            a[r.run_id].append(ArtifactRecord(r.path, r.kind, r.digest, int(r.size), int(r.created_at)))
    cutoff = _heartbeat.lost_cutoff()
    return [
        RunRecord(
            id=r.id,
            experiment=r.experiment_name,
            name=r.name,
            status=RunStatus.LOST
            if _heartbeat.is_lost(r.status, r.heartbeat_time, int(r.start_time), cutoff=cutoff)
            else RunStatus(r.status),
            start_time=int(r.start_time),
            end_time=int(r.end_time) if r.end_time is not None else None,
            parent_id=r.parent_id,
            user=r.user,
            deleted=bool(r.deleted),
            error=r.error,
            environment=redact_environment(json.loads(r.environment)) if r.environment else {},
            params=dict(sorted(p[r.id].items())),
            metrics=dict(sorted(m[r.id].items())),
            tags=dict(sorted(t[r.id].items())),
            artifacts=a[r.id],
            heartbeat_time=int(r.heartbeat_time) if r.heartbeat_time is not None else None,
        )
        for r in rows
    ]
