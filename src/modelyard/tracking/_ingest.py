"""How metric points reach the database: one statement per batch (``COPY`` on PostgreSQL), the latest
value of each key advanced in the same transaction, and the columnar form a batch crosses the network in.

A flush over a team server sends :class:`MetricColumns` (keys once, then one array per field) rather
than a list of rows: about half the bytes, and the server parses arrays of numbers without building a
Python object per point before it builds the rows it inserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.errors import InvalidArgumentError, NotFoundError
from modelyard.store import MetadataStore
from modelyard.store._schema import latest_metrics, runs

__all__ = ["MetricColumns", "MetricRow", "store_points"]

#: (run_id, key, step, value or None, is_nan, timestamp_ms)
MetricRow = tuple[str, str, int, float | None, bool, int]

_COLUMNS = "run_id, key, step, value, is_nan, timestamp"


@dataclass(frozen=True)
class MetricColumns:
    """Metric points of one run as columns: point ``i`` is metric ``keys[key_index[i]]`` at
    ``steps[i]`` with ``values[i]`` (``None`` for NaN) logged at ``timestamps[i]`` (ms)."""

    keys: list[str]
    key_index: list[int]
    steps: list[int]
    values: list[float | None]
    timestamps: list[int]

    @classmethod
    def from_rows(cls, rows: Sequence[MetricRow]) -> MetricColumns:
        index: dict[str, int] = {}
        key_index = [index.setdefault(r[1], len(index)) for r in rows]
        return cls(
            keys=list(index),
            key_index=key_index,
            steps=[r[2] for r in rows],
            values=[r[3] for r in rows],
            timestamps=[r[5] for r in rows],
        )

    def rows(self, run_id: str) -> list[MetricRow]:
        """The points as rows of run ``run_id`` (InvalidArgumentError when the columns disagree)."""
        n = len(self.key_index)
        if not len(self.steps) == len(self.values) == len(self.timestamps) == n:
            raise InvalidArgumentError(
                f"Metric columns of different lengths: key_index {n}, steps {len(self.steps)}, "
                f"values {len(self.values)}, timestamps {len(self.timestamps)}; each holds one entry "
                "per point."
            )
        if n and (min(self.key_index) < 0 or max(self.key_index) >= len(self.keys)):
            raise InvalidArgumentError(
                f"key_index holds {min(self.key_index)}..{max(self.key_index)}, but there are "
                f"{len(self.keys)} keys (indexes 0..{len(self.keys) - 1})."
            )
        names = [self.keys[i] for i in self.key_index]
        nans = [v is None for v in self.values]
        ids = repeat(run_id, n)
        return list(zip(ids, names, self.steps, self.values, nans, self.timestamps, strict=False))


def _latest_upsert(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert  # type: ignore[assignment]
    up = dialect_insert(latest_metrics)
    return up.on_conflict_do_update(
        index_elements=[latest_metrics.c.run_id, latest_metrics.c.key],
        set_={c: up.excluded[c] for c in ("step", "value", "is_nan", "timestamp")},
        where=sa.or_(
            up.excluded.step > latest_metrics.c.step,
            sa.and_(
                up.excluded.step == latest_metrics.c.step,
                up.excluded.timestamp >= latest_metrics.c.timestamp,
            ),
        ),
    )


def _insert_points(conn: Connection, dialect: str, rows: Sequence[MetricRow]) -> None:
    """One ``executemany`` on SQLite; one ``COPY ... FROM STDIN`` on PostgreSQL (psycopg), which skips
    the per-row statement work an INSERT pays."""
    if dialect == "sqlite":
        conn.exec_driver_sql(f"INSERT INTO metrics ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", list(rows))
        return
    raw: Any = conn.connection.dbapi_connection
    if type(raw).__module__.split(".")[0] != "psycopg":  # another driver (psycopg2): a plain INSERT
        conn.exec_driver_sql(f"INSERT INTO metrics ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)", list(rows))
        return
    with raw.cursor() as cur, cur.copy(f"COPY metrics ({_COLUMNS}) FROM STDIN") as copy:
        write = copy.write_row
        for row in rows:
            write(row)


def store_points(
    store: MetadataStore,
    rows: Sequence[MetricRow],
    latest: Sequence[MetricRow],
    run_ids: Sequence[str] | None = None,
) -> None:
    """Insert metric points and advance the latest value per key, in one write transaction.

    ``run_ids``: the runs the points belong to, when the caller knows them (else read from the rows)."""
    dialect = store.dialect
    up = _latest_upsert(dialect)
    latest_dicts = [
        {"run_id": r[0], "key": r[1], "step": r[2], "value": r[3], "is_nan": r[4], "timestamp": r[5]}
        for r in latest
    ]
    # metrics.run_id has no foreign key (a lookup per point would cost a third of the insert):
    # the runs are checked once per batch here, locked against a concurrent purge on PostgreSQL.
    if run_ids is None:
        run_ids = sorted({r[0] for r in latest} | {r[0] for r in rows})
    check = sa.select(runs.c.id).where(runs.c.id.in_(run_ids))
    if dialect != "sqlite":
        check = check.with_for_update(key_share=True)

    def fn(conn: Connection) -> None:
        if run_ids:
            missing = set(run_ids) - {r[0] for r in conn.execute(check)}
            if missing:
                raise NotFoundError(
                    f"Cannot store metrics: the run was removed from the store (run {sorted(missing)[0]})."
                )
        if rows:
            _insert_points(conn, dialect, rows)
        if latest_dicts:
            conn.execute(up, latest_dicts)

    try:
        store.write(fn)
    except sa.exc.IntegrityError as exc:
        raise NotFoundError(
            f"Cannot store metrics: the run was removed from the store ({exc.orig})."
        ) from None
