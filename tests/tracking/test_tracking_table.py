"""``TrackingService.run_table`` (the web UI's runs table) reads the page ``search_runs`` reads, with
only the chosen columns' values: checked against ``search_runs`` on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from typing import Any

import pytest

import modelyard as yard
from modelyard.errors import FilterSyntaxError, InvalidArgumentError
from modelyard.tracking import TrackingService
from modelyard.tracking._search import next_page_token
from modelyard.tracking._table import KINDS


@pytest.fixture
def table_store(workspace):  # type: ignore[no-untyped-def]
    """Twelve runs in ``exp`` (varied metrics incl. NaN and missing ones, params, tags incl. a
    ``yard.`` one), one deleted, one in another experiment."""
    for i in range(12):
        metrics: dict[str, float] = {"acc": i / 10, "loss": 1.0 / (i + 1)}
        if i % 3 == 0:
            metrics["rare"] = float("nan") if i == 3 else -0.0
        params = {"lr": f"0.0{i % 4}", "depth": str(i)} | ({"only.odd": "<b>&"} if i % 2 else {})
        run = yard.start_run(experiment="exp", name=f"run-{i:02}", params=params, capture_env=False)
        run.log_metrics(metrics)
        if i % 4 == 1:
            run.set_tags({"team": "risk", "yard.note": "x"})
        run.end("finished" if i != 5 else "failed")
    gone = yard.start_run(experiment="exp", name="deleted", params={"lr": "9"}, capture_env=False)
    gone.end()
    TrackingService(workspace).delete_run(gone.id)
    with yard.start_run(experiment="other", name="elsewhere", capture_env=False) as r:
        r.log_metric("acc", 0.5)
    return TrackingService(workspace)


def same(run: Any, rec: Any, columns: list[str] | None) -> None:
    """``run`` (a TableRun) shows what ``rec`` (a RunRecord) holds for ``columns`` (None: all)."""
    for attr in ("id", "name", "status", "start_time", "end_time", "user"):
        assert getattr(run, attr) == getattr(rec, attr), attr
    for kind in KINDS:
        want = getattr(rec, kind)
        if columns is not None:
            chosen = {c.partition(".")[2] for c in columns if c.partition(".")[0] == kind}
            want = {k: v for k, v in want.items() if k in chosen}
        got = getattr(run, kind)
        assert got.keys() == want.keys(), kind
        for k, v in want.items():
            assert got[k] == v or (math.isnan(got[k]) and math.isnan(v)), (kind, k)
            assert math.copysign(1, got[k]) == math.copysign(1, v) if isinstance(v, float) else True


@pytest.mark.parametrize(
    ("columns", "order", "flt"),
    [
        (None, None, None),
        (["metrics.acc", "params.lr", "tags.team"], None, None),
        (["metrics.rare", "params.only.odd"], "metrics.loss asc", None),
        ([], "metrics.rare desc", "params.lr != '0.01'"),
        (["params.depth", "metrics.nope", "bogus.x", "metrics."], "params.depth desc", "metrics.acc >= 0.2"),
    ],
)
def test_pages_match_search_runs(table_store: Any, columns: Any, order: Any, flt: Any) -> None:
    svc, pages = table_store, 0
    token: str | None = None
    while True:
        table = svc.run_table("exp", columns=columns, filter=flt, order_by=order, limit=5, page_token=token)
        records = svc.search_runs("exp", filter=flt, order_by=order, limit=6, page_token=token)
        assert [r.id for r in table.runs] == [r.id for r in records[:5]]
        assert table.more == (len(records) > 5)
        for kind in KINDS:  # every key of the page's runs, sorted (the column chooser)
            assert table.keys[kind] == sorted({k for r in records[:5] for k in getattr(r, kind)})
        wanted = None if columns is None else [*columns, *([order.split()[0]] if order else [])]
        for run, rec in zip(table.runs, records[:5], strict=True):
            same(run, rec, wanted)
        pages += 1
        if not table.more:
            break
        token = next_page_token(order, table.runs[-1])  # the sort field is read for the token
        assert token == next_page_token(order, records[4])
    expected = len(svc.search_runs("exp", filter=flt, limit=100))
    assert pages == max(1, math.ceil(expected / 5))


def test_empty_page_errors_and_deleted_runs(table_store: Any) -> None:
    svc = table_store
    empty = svc.run_table("exp", filter="name = 'nobody'", columns=["metrics.acc"])
    assert empty.runs == [] and not empty.more and empty.keys == {k: [] for k in KINDS}
    every = svc.run_table("exp", limit=100)
    assert "deleted" not in {r.name for r in every.runs} and len(every.runs) == 12
    assert {r.status.value for r in every.runs} == {"finished", "failed"}
    with pytest.raises(FilterSyntaxError):
        svc.run_table("exp", filter="metrics.acc >")
    with pytest.raises(InvalidArgumentError):
        svc.run_table("exp", limit=0)
