"""The web UI's bulk readers of metric histories, on SQLite and on the real PostgreSQL server:
``metric_series`` returns what ``metric_history`` returns (NaN and inf included), and
``series_versions`` moves whenever a series gains a point."""

from __future__ import annotations

import math
from typing import Any

import modelyard as yard
from modelyard.tracking._history import metric_series, series_versions
from modelyard.tracking._service import TrackingService


def _same(a: list[Any], b: list[Any]) -> bool:
    def norm(rows: list[Any]) -> list[Any]:
        return [(s, "nan" if math.isnan(v) else v, t) for s, v, t in rows]

    return norm(a) == norm(b)


def test_metric_series_and_versions_on_both_stores(workspace: Any) -> None:
    with yard.start_run(experiment="h", name="a") as a:
        for s, v in enumerate([1.0, float("nan"), float("inf"), -float("inf"), 0.25]):
            a.log_metric("loss", v, step=s)
        a.log_metric("acc", 0.5, step=7)
        a.log_metric("loss", 9.0, step=2)  # a step logged again: one more point
    with yard.start_run(experiment="h", name="b") as b:
        b.log_metrics({"loss": 3.0}, step=0)
    svc = TrackingService(workspace)
    store = workspace.store
    got = metric_series(store, [a.id, b.id, "nope"], ["loss", "acc", "missing"])
    assert set(got) == {(a.id, "loss"), (a.id, "acc"), (b.id, "loss")}
    for (run_id, key), points in got.items():
        want = [(p.step, p.value, p.timestamp) for p in svc.metric_history(run_id, key)]
        assert _same(points, want), (run_id, key)
    assert [s for s, _, _ in got[(a.id, "loss")]] == [0, 1, 2, 2, 3, 4]
    assert series_versions(store, [a.id, b.id], ["loss", "acc"]) == {
        (a.id, "loss"): (6, 4),
        (a.id, "acc"): (1, 7),
        (b.id, "loss"): (1, 0),
    }
    assert series_versions(store, [], ["loss"]) == {} == metric_series(store, [a.id], [])
    with yard.start_run(run_id=b.id) as again:
        again.log_metric("loss", 2.0, step=0)  # an earlier step: the last step stays, the count moves
    assert series_versions(store, [b.id], ["loss"]) == {(b.id, "loss"): (2, 0)}
