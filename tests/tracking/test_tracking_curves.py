"""Stored copies of metric series (tracking/_curves.py), on SQLite and on the real PostgreSQL: made
when a run ends, current only at the series' version, decoded as untrusted bytes, purged with the run;
a long series keeps its ends and extremes, and its chart drawn from the copy matches the full one."""

from __future__ import annotations

import math
import pickle
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import modelyard as yard
from modelyard.store._schema import metric_curves
from modelyard.tracking import _curves
from modelyard.tracking._history import metric_series, series_versions
from modelyard.tracking._service import TrackingService


def _rows(ws: Any) -> dict[tuple[str, str], Any]:
    with ws.store.read() as conn:
        return {(r.run_id, r.key): r for r in conn.execute(sa.select(metric_curves))}


def _finite(points: list[tuple[int, float, int]]) -> list[tuple[int, float, int]]:
    return [p for p in points if math.isfinite(p[1])]


def test_copies_are_made_when_a_run_ends_and_go_stale_with_a_new_point(workspace: Any) -> None:
    values = [1.0, float("nan"), float("inf"), -float("inf"), 0.25, 0.25]
    with yard.start_run(experiment="c", name="a") as a:
        for s, v in enumerate(values):
            a.log_metric("loss", v, step=s)
        a.log_metric("loss", 9.0, step=2)  # a step logged again
        a.log_metric("acc", 0.5, step=7)
        assert _rows(workspace) == {}  # not while it runs
    store = workspace.store
    versions = series_versions(store, [a.id], ["loss", "acc"])
    rows = _rows(workspace)
    assert set(rows) == {(a.id, "loss"), (a.id, "acc")}
    assert (rows[(a.id, "loss")].points, rows[(a.id, "loss")].last_step) == versions[(a.id, "loss")] == (7, 5)
    copies = _curves.load_copies(store, versions)
    full = metric_series(store, [a.id], ["loss", "acc"])
    for sk, (version, (steps, vals, ts), whole) in copies.items():
        assert whole and version == versions[sk]
        assert list(zip(steps.tolist(), vals.tolist(), ts.tolist(), strict=True)) == _finite(full[sk])
    assert steps.dtype == np.int64 and vals.dtype == np.float64

    with yard.start_run(run_id=a.id) as again:
        again.log_metric("loss", 3.0, step=1)  # an earlier step: only the count moves
        again.flush()
        now = series_versions(store, [a.id], ["loss", "acc"])
        assert now[(a.id, "loss")] == (8, 5)
        assert set(_curves.load_copies(store, now)) == {(a.id, "acc")}  # the stale copy is not drawn
    assert _rows(workspace)[(a.id, "loss")].points == 8  # ending it again made the copy anew


def test_a_long_series_keeps_its_ends_and_extremes(workspace: Any) -> None:
    n = 20_000
    rng = np.random.default_rng(3)
    y = np.sin(np.arange(n) / 900) + rng.normal(0, 0.05, n)
    y[12_345], y[777] = 9.0, -7.0
    y[100] = np.nan
    with yard.start_run(experiment="c", name="long") as run:
        for s in range(n):
            run.log_metric("m", float(y[s]), step=s)
    store = workspace.store
    versions = series_versions(store, [run.id], ["m"])
    (version, (steps, vals, _), whole) = _curves.load_copies(store, versions)[(run.id, "m")]
    assert version == (n, n - 1) and not whole
    assert len(steps) <= _curves.STORED_POINTS
    assert steps[0] == 0 and steps[-1] == n - 1 and np.all(np.diff(steps) > 0)
    assert vals.max() == 9.0 and vals.min() == -7.0 and np.isfinite(vals).all()
    # the page draws the same chart from the copy as from every point (it draws the copy's points)
    from modelyard.webui import _pages

    for drawn in (80, 600):
        _pages._CURVES.clear()
        from_copy = _pages._curves(store, [run.id], ["m"], False, 0.0, drawn)
        store.write(lambda conn: conn.execute(metric_curves.delete()))
        _pages._CURVES.clear()
        assert _pages._curves(store, [run.id], ["m"], False, 0.0, drawn) == from_copy
        assert _curves.load_copies(store, versions)  # the reader stored it again
        line = from_copy[(run.id, "m")][1]
        assert max(v for _, v in line) == 9.0 and min(v for _, v in line) == -7.0
    # and is as faithful to every point drawn as LTTB of every point: per pixel column of a
    # 480 × 240 chart, the line's lowest and highest pixel
    full = metric_series(store, [run.id], ["m"])[(run.id, "m")]
    arrays = tuple(np.array([p[i] for p in full]) for i in range(3))
    truth = _columns(list(zip(arrays[0].tolist(), arrays[1].tolist(), strict=True)), n, y)
    for drawn in (80, 600):
        by_all, by_copy = _pages._draw([arrays, (steps, vals, _)], False, 0.0, drawn)  # type: ignore[list-item]
        err_all = np.abs(_columns(by_all, n, y) - truth).max(axis=0).mean()
        err_copy = np.abs(_columns(by_copy, n, y) - truth).max(axis=0).mean()
        assert err_copy < 1.3 * err_all + 0.5, (drawn, err_copy, err_all)


def _columns(line: list[tuple[float, float]], n: int, y: Any) -> Any:
    """The lowest and highest pixel (of 240) of ``line`` in each of 480 columns over ``0..n-1``."""
    xs, ys = map(np.array, zip(*line, strict=True))
    grid = np.linspace(0, n - 1, 480 * 16)
    px = ((np.interp(grid, xs, ys) - np.nanmin(y)) / (np.nanmax(y) - np.nanmin(y)) * 240).reshape(480, 16)
    return np.stack([px.min(axis=1), px.max(axis=1)])


def test_stored_bytes_are_untrusted(workspace: Any) -> None:
    with yard.start_run(experiment="c", name="b") as run:
        for s in range(5):
            run.log_metric("m", float(s), step=s)
    store = workspace.store
    versions = series_versions(store, [run.id], ["m"])
    assert _curves.load_copies(store, versions)
    good = _rows(workspace)[(run.id, "m")].data
    evil = pickle.dumps(np.arange(5))
    for bad, fmt in ((good[:-1], 1), (good + b"\0" * 24, 1), (evil, 1), (good[:24], 99)):
        upd = metric_curves.update().values(data=bad, format=fmt)
        store.write(lambda conn, upd=upd: conn.execute(upd))
        assert _curves.load_copies(store, versions) == {}
    assert _curves.decode(good, 5, True) is not None
    assert _curves.decode(good, 4, True) is None  # more points than the series has
    assert _curves.decode(good, 100, False) is None  # a short series is kept whole, or not at all
    assert _curves.decode(good, 5000, True) is not None  # whole: its finite points (NaN are not kept)
    assert _curves.decode(bytearray(good), 5, True) is not None


def test_readers_store_missing_copies_and_purging_a_run_deletes_them(workspace: Any) -> None:
    from modelyard.webui import _pages

    with yard.start_run(experiment="c", name="p") as run:
        for s in range(40):
            run.log_metrics({"m": s / 40, "n": float(s % 7)}, step=s)
    store = workspace.store
    store.write(lambda conn: conn.execute(metric_curves.delete()))
    _pages._CURVES.clear()
    drawn = _pages._curves(store, [run.id], ["m", "n"], False, 0.0, 10, live=[run.id])
    assert _rows(workspace) == {}  # a running run's next flush would make them stale: not stored
    _pages._CURVES.clear()
    assert _pages._curves(store, [run.id], ["m", "n"], False, 0.0, 10) == drawn
    assert set(_rows(workspace)) == {(run.id, "m"), (run.id, "n")}
    _pages._CURVES.clear()
    assert _pages._curves(store, [run.id], ["m", "n"], False, 0.0, 10) == drawn  # from the copies
    svc = TrackingService(workspace)
    svc.delete_run(run.id)
    assert _rows(workspace)  # a deleted run can be restored: its copies stay until it is purged
    assert svc.purge_deleted_runs() == 1
    assert _rows(workspace) == {}
    # a reader that read a run's points before it was purged does not fail to store their copy
    _curves.save_copies(
        store, {(run.id, "m"): _curves.make_copy((np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.int64)))}
    )
    assert _rows(workspace) == {}


@pytest.mark.parametrize("n", [0, 1, 3, _curves.STORED_POINTS, _curves.STORED_POINTS + 1, 10_007])
def test_decimate_keeps_finite_points_whole_up_to_the_limit(n: int) -> None:
    rng = np.random.default_rng(n)
    steps = np.arange(n, dtype=np.int64) * 3
    vals = rng.normal(size=n)
    vals[::11] = np.nan
    ts = steps + 1_700_000_000_000
    kept, whole = _curves.decimate((steps, vals, ts))
    finite = np.isfinite(vals)
    assert whole == (finite.sum() <= _curves.STORED_POINTS)
    assert len(kept[0]) <= _curves.STORED_POINTS and np.isfinite(kept[1]).all()
    if whole:
        assert kept[0].tolist() == steps[finite].tolist()
    back = _curves.decode(_curves.encode(kept), max(n, 1), whole)
    assert back is not None and all(np.array_equal(x, y) for x, y in zip(back, kept, strict=True))


def test_steps_beyond_float_precision_stay_exact(workspace: Any) -> None:
    svc = TrackingService(workspace)
    run = svc.create_run(experiment="c", name="big-steps")
    big = 2**53 + 1  # not a float64
    rows = [(run.id, "m", s, 0.5, False, 1_780_000_000_000 + i) for i, s in enumerate((1, big, big + 2))]
    rows.append((run.id, "m", big + 3, None, True, 1_780_000_000_009))
    svc.write_metrics(rows, [rows[-1]])
    svc.end_run(run.id)
    versions = series_versions(workspace.store, [run.id], ["m"])
    assert versions == {(run.id, "m"): (4, big + 3)}
    (version, (steps, vals, _), whole) = _curves.load_copies(workspace.store, versions)[(run.id, "m")]
    assert version == (4, big + 3) and whole
    assert steps.tolist() == [1, big, big + 2] and vals.tolist() == [0.5, 0.5, 0.5]


def test_copies_are_stored_uncompressed_on_postgresql(workspace: Any) -> None:
    """Compressing float arrays gains nothing and cost 8x the time of storing them (migration 0003)."""
    if workspace.store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's TOAST storage")
    q = "SELECT attstorage FROM pg_attribute WHERE attrelid = 'metric_curves'::regclass AND attname = 'data'"
    with workspace.store.read() as conn:
        assert conn.exec_driver_sql(q).scalar() == "e"


def test_series_are_read_in_the_order_of_metric_history(workspace: Any) -> None:
    """Read unordered in SQL, put in order in numpy: by step, time, NaN last, value, as every reader."""
    svc = TrackingService(workspace)
    run = svc.create_run(experiment="c", name="order")
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(400):
        step = int(rng.integers(0, 60))
        ts = 1_780_000_000_000 + int(rng.integers(0, 4))
        v = [None, float("inf"), -float("inf"), 0.5, float(rng.normal())][int(rng.integers(0, 5))]
        rows.append((run.id, "m", step, v, v is None, ts))
    for i in range(0, 400, 50):  # in random order, over several writes
        svc.write_metrics(rows[i : i + 50], [rows[i]])
    with workspace.store.read() as conn:
        steps, vals, ts = _curves.read_series(conn, [(run.id, "m")])[(run.id, "m")]
    want = metric_series(workspace.store, [run.id], ["m"])[(run.id, "m")]
    got = list(zip(steps.tolist(), vals.tolist(), ts.tolist(), strict=True))
    assert [(s, "nan" if math.isnan(v) else v, t) for s, v, t in got] == [
        (s, "nan" if math.isnan(v) else v, t) for s, v, t in want
    ]
