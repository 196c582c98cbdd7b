"""search_runs ordered by a metric walks that metric's (key, value) index in order and stops at the
limit: SQLite's plan says so (PostgreSQL's choice depends on its statistics: checked on 100,000 runs by
bench/server.py, not on a test's few rows), and the runs come back
exactly in the order a sort of everything gives (runs without the metric, or NaN, last)."""

from __future__ import annotations

import math
import time

import pytest

import modelyard as yard
from modelyard.tracking._search import build_search
from modelyard.tracking._service import TrackingService


def _seed(uri: str) -> TrackingService:
    svc = TrackingService(uri)
    for i in range(30):
        with yard.start_run(experiment="walk", name=f"r{i}", uri=uri) as r:
            if i % 5 == 0:
                pass  # no acc at all
            elif i % 7 == 0:
                r.log_metric("acc", float("nan"))
            else:
                r.log_metric("acc", (i * 37 % 11) / 10)  # ties on purpose
            r.log_params({"lr": "0.01" if i % 3 else "0.1"})
    return svc


def _expected(svc: TrackingService, desc: bool, keep: object = None) -> list[str]:
    runs = list(svc.search_runs("walk", limit=1000))
    if keep is not None:
        runs = [r for r in runs if keep(r)]  # type: ignore[operator]

    def value(r: yard.RunRecord) -> float | None:
        v = r.metrics.get("acc")
        return None if v is None or math.isnan(v) else v

    with_value = [r for r in runs if value(r) is not None]
    without = [r for r in runs if value(r) is None]
    with_value.sort(key=lambda r: r.id, reverse=True)  # ties: the run id, descending
    with_value.sort(key=lambda r: value(r), reverse=desc)  # type: ignore[arg-type, return-value]
    without.sort(key=lambda r: r.id, reverse=True)
    return [r.id for r in with_value + without]


def test_metric_order_matches_a_full_sort(store_uri: str) -> None:
    svc = _seed(store_uri)
    for desc in (True, False):
        order = f"metrics.acc {'desc' if desc else 'asc'}"
        got = [r.id for r in svc.search_runs("walk", order_by=order, limit=1000)]
        assert got == _expected(svc, desc)
        lr = [r.id for r in svc.search_runs("walk", filter="params.lr = '0.01'", order_by=order, limit=1000)]
        assert lr == _expected(svc, desc, lambda r: r.params["lr"] == "0.01")
        ranged = svc.search_runs("walk", filter="metrics.acc >= 0.3", order_by=order, limit=4)
        full = _expected(svc, desc, lambda r: r.metrics.get("acc", -1) >= 0.3)
        assert [r.id for r in ranged] == full[:4]
        # a limit reaching into the runs without a value: both queries of the page
        few = [r.id for r in svc.search_runs("walk", order_by=order, limit=26)]
        assert few == _expected(svc, desc)[:26]


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_a_comparison_of_the_order_metric_needs_no_second_query(dialect: str) -> None:
    both, walks = build_search(None, experiment_ids=[1], dialect=dialect, order_by="metrics.acc desc")
    assert walks and len(both) == 2  # the walk, then the runs without acc
    one, walks = build_search(
        "metrics.acc > 0.5", experiment_ids=[1], dialect=dialect, order_by="metrics.acc desc"
    )
    assert walks and len(one) == 1  # a run without acc never matches acc > 0.5
    other, walks = build_search(
        "metrics.loss < 0.1", experiment_ids=[1], dialect=dialect, order_by="metrics.acc"
    )
    assert not walks and len(other) == 1  # starts from the loss index and sorts: one query over everything


def test_sqlite_plan_walks_the_index_in_order(tmp_path: object) -> None:
    uri = str(tmp_path)
    svc = _seed(uri)
    exp = svc.get_experiment_id("walk")
    q = build_search(
        "metrics.acc > 0.5 and params.lr = '0.01'",
        experiment_ids=[exp],
        dialect="sqlite",
        order_by="metrics.acc desc",
    )[0][0].limit(3)
    sql = str(q.compile(svc.store.engine, compile_kwargs={"literal_binds": True}))
    with svc.store.read() as conn:
        plan = [r[3] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    assert plan[0].startswith("SEARCH ord0 USING INDEX ix_latest_metrics_key_value (key=? AND value>?)"), plan
    # the order comes from the index; only ties on the value are sorted (by run id), never every match
    assert not any(p == "USE TEMP B-TREE FOR ORDER BY" for p in plan), plan


def test_statistics_refreshed_after_a_bulk_load_once(pg_uri: str) -> None:
    from modelyard._workspace import Workspace
    from modelyard.store._schema import runs

    ws = Workspace(pg_uri).open()
    exp = TrackingService(ws).get_or_create_experiment("bulk")
    rows = [
        dict(id=f"{i:032x}", experiment_id=exp, name=f"r{i}", status="finished", start_time=i, deleted=False)
        for i in range(3_000)
    ]
    ws.store.write(lambda conn: conn.execute(runs.insert(), rows))
    # 3,000 new rows: more than 1,000 + 10 %, once the writer's counts reach pg_stat (PostgreSQL
    # publishes a session's counts when it is idle, within about 10 s)
    deadline = time.monotonic() + 120
    while "runs" not in ws.store.refresh_statistics():
        assert time.monotonic() < deadline, "pg_stat_user_tables never counted the 3,000 new runs"
        time.sleep(0.5)
    assert ws.store.refresh_statistics() == []  # nothing changed since
    assert Workspace(str(pg_uri)).store.refresh_statistics(force=True)  # force: every table


def test_a_page_is_three_statements_whatever_its_size(store_uri: str) -> None:
    """The experiment's id, the page's runs, then their params, metrics, tags and artifacts in one
    statement (not one per table), for 3 runs as for 40; every record complete."""
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    svc = TrackingService(store_uri)
    for i in range(40):
        with yard.start_run(experiment="page", name=f"r{i}", uri=store_uri, capture_env=False) as r:
            r.log_params({"lr": str(i), "depth": "3"})
            r.log_metrics({"acc": i / 100, "loss": float("nan") if i % 2 else 1.0})
            r.set_tags({"team": f"t{i % 3}"})
            for path in ("z.txt", "a/b.txt"):
                svc.log_bytes(r.id, f"{i}{path}".encode(), path)
    selects: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            selects.append(statement)

    sa.event.listen(Engine, "before_cursor_execute", count)
    try:
        for limit in (3, 40):
            selects.clear()
            page = svc.search_runs(
                "page", filter="params.depth = '3'", order_by="metrics.acc desc", limit=limit
            )
            assert len(page) == limit and len(selects) == 3, selects
    finally:
        sa.event.remove(Engine, "before_cursor_execute", count)
    top = page[0]
    assert (top.name, top.params, top.tags) == ("r39", {"depth": "3", "lr": "39"}, {"team": "t0"})
    assert top.metrics["acc"] == 0.39 and math.isnan(top.metrics["loss"])
    assert [(a.path, a.kind, a.size) for a in top.artifacts] == [("a/b.txt", "file", 9), ("z.txt", "file", 7)]
    assert page[1].metrics == {"acc": 0.38, "loss": 1.0}
