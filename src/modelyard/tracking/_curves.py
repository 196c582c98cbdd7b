"""Stored downsampled copies of metric series, so that drawing a curve does not read every point.

A compare page of 10 runs × 20 metrics × 1,000 steps reads 200,000 points (about half a second on
SQLite) to draw 16,000 of them. Table ``metric_curves`` keeps, per ``(run_id, key)``, a copy of the
series' finite points, at most :data:`STORED_POINTS` of them, with the series' point count and last
step when it was made (the version :func:`~modelyard.tracking._history.series_versions` reads from
the index alone). A copy whose version differs from the series' is stale and never drawn: points are
only ever added to a series, so any point logged after the copy was made moves the version.

Copies are made when a run ends (``TrackingService.end_run``, in its transaction) and otherwise by the
first reader that finds none, or a stale one (:func:`save_copies`, best effort), so every later reader
in any process, or after a restart, draws from them.

How much is kept: charts skip non-finite values and LTTB never draws more than 600 points of a curve
(``webui._pages.DRAWN_POINTS``). A series of at most :data:`STORED_POINTS` finite points is kept
*whole*: drawing its copy, smoothed or not, on steps or on time, gives exactly the chart of the full
series. A longer one keeps, in each of ``STORED_POINTS / 4`` equal buckets (by index, in step
order), its first, last, lowest and highest point (M4: the points that fix a line's pixels when the
chart is at most that many pixels wide; ours are 460-480), so its ends and every peak survive. Such a
series is drawn unsmoothed as LTTB of its copy's points on every path (read whole or from the copy:
:func:`drawn_from`), so its chart does not change after a restart. Against LTTB of every point, per
pixel column of a 480 × 240 chart of 20,000 points (noise, sine + noise, a decaying loss), the
line's mean distance to the chart of every point is the same at 80 drawn points (a compare page) and
0.2-3.3 px more at 600 (a run page); tests/tracking/test_tracking_curves.py checks it. EMA smoothing on
such a copy would not be faithful (its points are not equally spaced), so a smoothed chart of a
series longer than the copy is drawn from every point (once; the page keeps it in memory).

``data`` holds the kept steps (int64), values (float64) and timestamps (int64), little-endian,
one array after the other. It is read as untrusted bytes: a fixed dtype, the length checked
against the row, never unpickled; a row that does not decode is treated as missing.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard.store import MetadataStore
from modelyard.store._schema import metric_curves, metrics
from modelyard.tracking._history import SERIES_ORDER

__all__ = [
    "FORMAT",
    "STORED_POINTS",
    "Copy",
    "Series",
    "decimate",
    "decode",
    "drawn_from",
    "encode",
    "load_copies",
    "make_copy",
    "read_series",
    "save_copies",
    "store_run_copies",
    "version_of",
]

log = logging.getLogger(__name__)

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
#: ``(steps, values, timestamps)`` of one series in its order (:data:`SERIES_ORDER`); NaN as ``nan``.
Series = tuple[Ints, Floats, Ints]
#: ``(points in the series, last step)``.
Version = tuple[int, int]
#: A series' copy: ``(the series' version, its kept points, whether it holds every finite point)``.
Copy = tuple[Version, Series, bool]

#: Bumped whenever what a copy holds changes: copies of another format are made again.
FORMAT = 1
#: Points kept per series: 2,048 (48 KB); a longer series keeps 512 buckets × 4 (M4).
STORED_POINTS = 2048
#: ``end_run`` makes the copies of a run of at most this many points (~45 ms per 20,000 on SQLite); a
#: larger run's copies are made by their first reader instead of holding the write lock longer.
END_RUN_POINTS = 200_000

_STEP, _VALUE, _TS = np.dtype("<i8"), np.dtype("<f8"), np.dtype("<i8")


def version_of(series: Series) -> Version:
    """The version of a series read whole (its points and last step)."""
    steps = series[0]
    return (len(steps), int(steps.max())) if len(steps) else (0, 0)


def decimate(series: Series) -> tuple[Series, bool]:
    """The points of ``series`` to store, and whether they are all of its finite points."""
    steps, values, ts = series
    finite = np.isfinite(values)
    if not finite.all():
        steps, values, ts = steps[finite], values[finite], ts[finite]
    n = len(steps)
    if n <= STORED_POINTS:
        return (steps, values, ts), True
    buckets = STORED_POINTS // 4
    edges = np.arange(buckets + 1, dtype=np.int64) * n // buckets
    width = int(np.diff(edges).max())
    idx = edges[:-1, None] + np.arange(width)
    inside = idx < edges[1:, None]
    idx = np.minimum(idx, n - 1)
    cells = values[idx]
    low = np.argmin(np.where(inside, cells, np.inf), axis=1)
    high = np.argmax(np.where(inside, cells, -np.inf), axis=1)
    rows = np.arange(buckets)
    keep = np.unique(np.concatenate([edges[:-1], edges[1:] - 1, idx[rows, low], idx[rows, high]]))
    return (steps[keep], values[keep], ts[keep]), False


def encode(series: Series) -> bytes:
    steps, values, ts = series
    return (
        np.ascontiguousarray(steps, dtype=_STEP).tobytes()
        + np.ascontiguousarray(values, dtype=_VALUE).tobytes()
        + np.ascontiguousarray(ts, dtype=_TS).tobytes()
    )


def decode(data: bytes, points: int, whole: bool) -> Series | None:
    """The kept points of a stored copy, or None when ``data`` is not a copy of a ``points``-point
    series (untrusted bytes: fixed dtypes, the length checked, nothing executed)."""
    size = _STEP.itemsize + _VALUE.itemsize + _TS.itemsize
    if not isinstance(data, bytes | bytearray | memoryview):
        return None
    data = bytes(data)
    n, rest = divmod(len(data), size)
    if rest or n > STORED_POINTS or n > points or (not whole and points <= STORED_POINTS):
        return None
    steps = np.frombuffer(data, dtype=_STEP, count=n, offset=0).astype(np.int64)
    values = np.frombuffer(data, dtype=_VALUE, count=n, offset=8 * n).astype(np.float64)
    ts = np.frombuffer(data, dtype=_TS, count=n, offset=16 * n).astype(np.int64)
    return steps, values, ts


def read_series(conn: Connection, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], Series]:
    """Every point of each ``(run_id, key)`` series as arrays in :data:`SERIES_ORDER`, one indexed
    query per series (no run and key strings per point: half the time of reading them with one query),
    unordered in SQL (the index yields them by step; sorting ties there cost a quarter of the read) and
    put in order here when a step repeats."""
    q = sa.select(metrics.c.step, metrics.c.value, metrics.c.is_nan, metrics.c.timestamp).where(
        metrics.c.run_id == sa.bindparam("r"), metrics.c.key == sa.bindparam("k")
    )
    out: dict[tuple[str, str], Series] = {}
    for run_id, key in pairs:
        result = conn.execute(q, {"r": run_id, "k": key})
        try:  # the driver's tuples: SQLAlchemy's Row objects cost as much again as the fetch itself
            rows = result.cursor.fetchall() if result.cursor is not None else []
        finally:
            result.close()
        if rows:
            out[(run_id, key)] = _ordered(_arrays(rows))
    return out


def _ordered(series: Series) -> Series:
    """``series`` in :data:`SERIES_ORDER`: by step, time, NaN last, value (rows equal in all four are
    the same point)."""
    steps, values, ts = series
    if len(steps) < 2 or bool((steps[1:] > steps[:-1]).all()):
        return series
    nan = np.isnan(values)
    order = np.lexsort((np.where(nan, 0.0, values), nan, ts, steps))
    return steps[order], values[order], ts[order]


def _arrays(rows: Sequence[Sequence[Any]]) -> Series:
    """``(step, value, is_nan, timestamp)`` rows as a series: one C conversion of the rows to
    float64 (None, NaN's NULL, becomes nan), steps and times kept exact below 2**53."""
    table = np.array(rows, dtype=np.float64).reshape(-1, 4)
    v = table[:, 1].copy()
    v[table[:, 2] != 0] = np.nan
    ints = table[:, (0, 3)]
    if len(ints) and float(np.abs(ints).max()) >= 2.0**53:  # rounded as floats: convert them one by one
        steps = np.array([r[0] for r in rows], dtype=np.int64)
        ts = np.array([r[3] for r in rows], dtype=np.int64)
        return steps, v, ts
    return ints[:, 0].astype(np.int64), v, ints[:, 1].astype(np.int64)


def load_copies(
    store: MetadataStore, versions: Mapping[tuple[str, str], Version]
) -> dict[tuple[str, str], Copy]:
    """The stored copies of the series in ``versions`` that are current (made at that version, in
    this :data:`FORMAT`); stale and undecodable ones are left out."""
    out: dict[tuple[str, str], Copy] = {}
    if not versions:
        return out
    run_ids = sorted({r for r, _ in versions})
    keys = sorted({k for _, k in versions})
    c = metric_curves.c
    q = sa.select(c.run_id, c.key, c.points, c.last_step, c.whole, c.data).where(
        c.run_id.in_(run_ids), c.key.in_(keys), c.format == FORMAT
    )
    with store.read() as conn:
        result = conn.execute(q)
        try:
            rows = result.cursor.fetchall() if result.cursor is not None else []
        finally:
            result.close()
    for run_id, key, points, last_step, whole, data in rows:
        version = versions.get((run_id, key))
        if version is None or version != (int(points), int(last_step)):
            continue
        series = decode(data, int(points), bool(whole))
        if series is not None:
            out[(run_id, key)] = (version, series, bool(whole))
    return out


def write_copies(conn: Connection, fresh: Mapping[tuple[str, str], Copy]) -> None:
    """Store (replace) each series' copy made by :func:`make_copy`, in ``conn``'s transaction."""
    rows = [
        {
            "run_id": run_id,
            "key": key,
            "points": version[0],
            "last_step": version[1],
            "format": FORMAT,
            "whole": whole,
            "data": encode(kept),
        }
        for (run_id, key), (version, kept, whole) in fresh.items()
    ]
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:
        from sqlalchemy.dialects.postgresql import insert as dialect_insert  # type: ignore[assignment]
    up = dialect_insert(metric_curves)
    cols = ("points", "last_step", "format", "whole", "data")
    # a copy of a newer version (more points) is never replaced by one of an older
    conn.execute(
        up.on_conflict_do_update(
            index_elements=[metric_curves.c.run_id, metric_curves.c.key],
            set_={k: up.excluded[k] for k in cols},
            where=sa.or_(up.excluded.points >= metric_curves.c.points, metric_curves.c.format != FORMAT),
        ),
        rows,
    )


def make_copy(series: Series) -> Copy:
    """The copy of a series read whole: its version, the points to keep, whether they are all."""
    kept, whole = decimate(series)
    return version_of(series), kept, whole


def save_copies(store: MetadataStore, fresh: Mapping[tuple[str, str], Copy]) -> None:
    """:func:`write_copies` in a transaction of its own, by a reader: best effort (a copy is a cache;
    a run purged meanwhile, a read-only or busy store leave the page as it is)."""
    if not fresh:
        return
    try:
        store.write(lambda conn: write_copies(conn, fresh), attempts=2)
    except Exception as exc:  # the page is drawn either way
        log.info("metric curve copies not stored: %s", exc)


def store_run_copies(conn: Connection, run_id: str, *, limit: int = END_RUN_POINTS) -> None:
    """Make the copies of every series of ``run_id`` (when it ends) from one read of its points,
    unless it has more than ``limit`` of them (their first reader makes those)."""
    total = conn.execute(sa.select(sa.func.count()).where(metrics.c.run_id == run_id)).scalar() or 0
    if not total or total > limit:
        return
    q = (
        sa.select(metrics.c.key, metrics.c.step, metrics.c.value, metrics.c.is_nan, metrics.c.timestamp)
        .where(metrics.c.run_id == run_id)
        .order_by(metrics.c.key, *SERIES_ORDER)
    )
    result = conn.execute(q)
    try:
        rows = result.cursor.fetchall() if result.cursor is not None else []
    finally:
        result.close()
    made: dict[tuple[str, str], Copy] = {}
    for key, group in itertools.groupby(rows, key=lambda r: r[0]):
        made[(run_id, key)] = make_copy(_arrays([r[1:] for r in group]))
    write_copies(conn, made)


def drawn_from(
    store: MetadataStore,
    versions: Mapping[tuple[str, str], Version],
    smooth: float,
    live: Collection[str] = (),
) -> dict[tuple[str, str], tuple[Version, Series]]:
    """``{series: (version, the points to draw)}`` of each series in ``versions``: its stored copy when
    current, else every point read, whose copy is then stored. Unsmoothed, a series is always drawn
    from its copy's points (made here if need be), so its chart is the same whichever way it came;
    smoothed, from every point unless the copy is whole. The copies of ``live`` runs (still running:
    their next flush makes them stale) are not stored; their end does."""
    copies = load_copies(store, versions)
    out: dict[tuple[str, str], tuple[Version, Series]] = {}
    read: list[tuple[str, str]] = []
    for sk in versions:
        hit = copies.get(sk)
        if hit is not None and (hit[2] or smooth <= 0):
            out[sk] = (hit[0], hit[1])
        else:
            read.append(sk)
    if not read:
        return out
    # read after the versions: a point added meanwhile is drawn now (the version is the data's)
    with store.read() as conn:
        whole = read_series(conn, read)
    made = {sk: make_copy(series) for sk, series in whole.items()}
    save_copies(store, {sk: copy for sk, copy in made.items() if sk[0] not in live})
    for sk, (version, kept, _) in made.items():
        out[sk] = (version, kept if smooth <= 0 else whole[sk])
    return out
