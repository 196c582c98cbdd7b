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


_PARAM, _METRIC, _TAG, _ARTIFACT = range(4)


def _among(col: Any, run_ids: list[str], dialect: str, name: str = "run_ids") -> Any:
    """``col IN run_ids`` with the ids as ONE bound value named ``name`` (a PostgreSQL array, a JSON
    array on SQLite): the statement's text is the same for any number of ids, so neither SQLAlchemy
    nor the driver renders and parses a placeholder per id (400 of them in a page of 100 runs) every
    time, and a statement built once takes other ids as a parameter."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        return col == sa.any_(sa.bindparam(name, run_ids, type_=ARRAY(sa.String)))
    if dialect == "sqlite":
        each = sa.func.json_each(sa.bindparam(name, json.dumps(run_ids))).table_valued("value")
        return col.in_(sa.select(each.c.value))
    return col.in_(run_ids)


def _children(run_ids: list[str], dialect: str) -> sa.CompoundSelect[Any]:
    """The params, latest metrics, tags and artifacts of ``run_ids`` as one ``UNION ALL``: rows of
    ``(kind, run_id, key or path, text value or artifact kind, metric value, is_nan, digest, size,
    created_at)``, the columns a kind has no use for NULL."""

    def null(type_: Any) -> Any:
        return sa.cast(sa.null(), type_)

    text, number, flag, big = null(sa.String), null(sa.Float), null(sa.Boolean), null(sa.BigInteger)
    lm = latest_metrics
    parts = [
        sa.select(
            sa.literal(_PARAM), params.c.run_id, params.c.key, params.c.value, number, flag, text, big, big
        ).where(_among(params.c.run_id, run_ids, dialect)),
        sa.select(
            sa.literal(_METRIC), lm.c.run_id, lm.c.key, text, lm.c.value, lm.c.is_nan, text, big, big
        ).where(_among(lm.c.run_id, run_ids, dialect)),
        sa.select(
            sa.literal(_TAG), tags.c.run_id, tags.c.key, tags.c.value, number, flag, text, big, big
        ).where(_among(tags.c.run_id, run_ids, dialect)),
        sa.select(
            sa.literal(_ARTIFACT),
            artifacts.c.run_id,
            artifacts.c.path,
            artifacts.c.kind,
            number,
            flag,
            artifacts.c.digest,
            artifacts.c.size,
            artifacts.c.created_at,
        ).where(_among(artifacts.c.run_id, run_ids, dialect)),
    ]
    return sa.union_all(*parts)


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
        # One statement for the four tables (one round trip, not four); plain tuples fetched at
        # once: attribute access on rows costs more than the query.
        result = conn.execute(_children(ids[chunk_start : chunk_start + 500], conn.dialect.name))
        try:  # the driver's tuples: SQLAlchemy's Row objects cost as much again as the fetch
            fetched = result.cursor.fetchall() if result.cursor is not None else []
        finally:
            result.close()
        for kind, run_id, key, text, number, flag, digest, size, created in fetched:
            if kind == _METRIC:
                m[run_id][key] = float("nan") if flag else float(number)
            elif kind == _PARAM:
                p[run_id][key] = text
            elif kind == _TAG:
                t[run_id][key] = text
            else:
                a[run_id].append(ArtifactRecord(key, text, digest, int(size), int(created)))
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
            artifacts=sorted(a[r.id], key=lambda x: x.path),
            heartbeat_time=int(r.heartbeat_time) if r.heartbeat_time is not None else None,
        )
        for r in rows
    ]
