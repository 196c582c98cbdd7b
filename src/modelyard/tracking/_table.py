"""A page of the runs table: each run's attributes, and only the params, latest metrics and tags of the
columns shown, with the keys the shown runs have (the column chooser's choices).

:func:`~modelyard.tracking._rows.run_records` makes whole runs (each run's environment parsed, every
child in sorted dicts, its artifacts): the table shows a few columns of them. Here one prepared
statement reads the runs' params, latest metrics and tags (no artifacts), and only the chosen keys'
values are kept. (Reading the keys and then only the chosen values by ``(run_id, key)`` was slower
on SQLite with most keys chosen: a seek per value.)
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.store._schema import latest_metrics, params, tags
from modelyard.tracking import _heartbeat
from modelyard.tracking._records import RunStatus
from modelyard.tracking._rows import _among

__all__ = ["KINDS", "RunTable", "TableRun", "table_runs"]

#: The kinds of child a column can show, in the order the chooser lists them.
KINDS = ("metrics", "params", "tags")
_TABLES = {"params": params, "metrics": latest_metrics, "tags": tags}


@dataclass(frozen=True)
class TableRun:
    """A run as the runs table shows it: its attributes and the values of the columns read."""

    id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None
    user: str | None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RunTable:
    """One page of runs: ``runs`` in order, ``more`` when a run follows them, and ``keys``: the
    sorted distinct keys of each kind (``metrics``, ``params``, ``tags``) among ``runs``."""

    runs: list[TableRun]
    more: bool
    keys: dict[str, list[str]]


def _fetch(conn: Connection, statement: Any, bound: dict[str, Any]) -> Sequence[Any]:
    """The driver's tuples (SQLAlchemy's Row objects cost as much again as the fetch)."""
    result = conn.execute(statement, bound)
    try:
        return result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()


@functools.cache
def _children(dialect: str) -> sa.CompoundSelect[Any]:
    """``(kind index, run_id, key, text value, metric value, is_nan)`` of the runs of the bound
    ``run_ids``: one statement, built once per dialect (building it costs more than running it)."""
    null = sa.cast(sa.null(), sa.String), sa.cast(sa.null(), sa.Float), sa.cast(sa.null(), sa.Boolean)
    parts = []
    for i, kind in enumerate(KINDS):
        t = _TABLES[kind]
        if kind == "metrics":
            cols: list[Any] = [null[0], t.c.value, t.c.is_nan]
        else:
            cols = [t.c.value, null[1], null[2]]
        among = _among(t.c.run_id, [], dialect)  # the ids are bound when it runs
        parts.append(sa.select(sa.literal(i), t.c.run_id, t.c.key, *cols).where(among))
    return sa.union_all(*parts)


def table_runs(
    conn: Connection, rows: Sequence[Any], limit: int, wanted: dict[str, set[str]] | None
) -> RunTable:
    """The :class:`RunTable` of the first ``limit`` of ``rows`` (``runs`` rows: ``more`` when there
    are more), with the values of the ``wanted`` keys of each kind (None: all of them)."""
    shown = list(rows[:limit])
    ids = [r.id for r in shown]
    keys: dict[str, list[str]] = {k: [] for k in KINDS}
    values: dict[str, dict[str, dict[str, Any]]] = {k: {i: {} for i in ids} for k in KINDS}
    dialect = conn.dialect.name
    if ids:
        bound: Any = json.dumps(ids) if dialect == "sqlite" else ids
        seen: list[set[str]] = [set(), set(), set()]
        chosen = [None if wanted is None else wanted.get(k, set()) for k in KINDS]
        into = [values[k] for k in KINDS]
        for kind, run_id, key, text, number, flag in _fetch(conn, _children(dialect), {"run_ids": bound}):
            seen[kind].add(key)
            c = chosen[kind]
            if c is None or key in c:
                if kind == 0:  # metrics
                    into[0][run_id][key] = float("nan") if flag else float(number)
                else:
                    into[kind][run_id][key] = text
        keys = {k: sorted(seen[i]) for i, k in enumerate(KINDS)}
    cutoff = _heartbeat.lost_cutoff()
    out = [
        TableRun(
            id=r.id,
            name=r.name,
            status=RunStatus.LOST
            if _heartbeat.is_lost(r.status, r.heartbeat_time, int(r.start_time), cutoff=cutoff)
            else RunStatus(r.status),
            start_time=int(r.start_time),
            end_time=int(r.end_time) if r.end_time is not None else None,
            user=r.user,
            params=values["params"][r.id],
            metrics=values["metrics"][r.id],
            tags=values["tags"][r.id],
        )
        for r in shown
    ]
    return RunTable(out, len(rows) > limit, keys)
