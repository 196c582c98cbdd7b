"""Metric batches as columns (the wire form of a flush) and the one-statement insert (COPY on
PostgreSQL): every point stored once with its NaN/inf, the latest value advanced, a retried batch
never stored twice, columns that disagree refused naming the lengths; on SQLite, PostgreSQL and a
server."""

from __future__ import annotations

import math

import pytest

import modelyard as yard
from modelyard._rpc import idempotency_key
from modelyard.errors import InvalidArgumentError, NotFoundError
from modelyard.tracking._ingest import MetricColumns
from modelyard.tracking._service import TrackingService


def _run(svc: TrackingService) -> str:
    return svc.create_run(experiment="ingest", name="cols").id


def test_columns_round_trip_every_point(contract_uri: str) -> None:
    svc = TrackingService(contract_uri)
    rid = _run(svc)
    rows = [(rid, ("loss", "acc")[i % 2], i // 2, i * 0.25, False, 1_000 + i) for i in range(2_000)]
    rows[7] = (rid, "acc", 3, None, True, 1_007)  # NaN travels as None
    rows[9] = (rid, "acc", 4, math.inf, False, 1_009)
    latest = [rows[-2], rows[-1]]
    svc.write_metric_columns(rid, MetricColumns.from_rows(rows), MetricColumns.from_rows(latest))
    loss = svc.metric_history(rid, "loss")
    acc = svc.metric_history(rid, "acc")
    assert [p.step for p in loss] == list(range(1_000)) and [p.step for p in acc] == list(range(1_000))
    assert loss[10].value == 5.0 and loss[10].timestamp == 1_020
    assert math.isnan(acc[3].value) and acc[4].value == math.inf
    assert svc.get_run(rid).metrics == {"loss": 1998 * 0.25, "acc": 1999 * 0.25}


def test_a_retried_column_batch_is_stored_once(contract_uri: str) -> None:
    svc = TrackingService(contract_uri)
    rid = _run(svc)
    rows = [(rid, "loss", i, float(i), False, 5_000 + i) for i in range(300)]
    cols, last = MetricColumns.from_rows(rows), MetricColumns.from_rows(rows[-1:])
    with idempotency_key("cols-1"):
        svc.write_metric_columns(rid, cols, last)
        if contract_uri.startswith("http"):  # the answer was lost: the client sends the same batch again
            svc.write_metric_columns(rid, cols, last)
    with idempotency_key("cols-2"):  # a new key is a new batch
        svc.write_metric_columns(rid, MetricColumns.from_rows(rows[:1]), MetricColumns.from_rows([]))
    assert [p.step for p in svc.metric_history(rid, "loss")] == [0, *range(300)]


def test_columns_that_disagree_are_refused(contract_uri: str) -> None:
    svc = TrackingService(contract_uri)
    rid = _run(svc)
    short = MetricColumns(keys=["x"], key_index=[0, 0], steps=[0], values=[1.0, 2.0], timestamps=[1, 2])
    with pytest.raises(InvalidArgumentError, match="different lengths: key_index 2, steps 1"):
        svc.write_metric_columns(rid, short, MetricColumns.from_rows([]))
    bad_key = MetricColumns(keys=["x"], key_index=[1], steps=[0], values=[1.0], timestamps=[1])
    with pytest.raises(InvalidArgumentError, match="there are 1 keys"):
        svc.write_metric_columns(rid, bad_key, MetricColumns.from_rows([]))
    assert svc.metric_keys(rid) == []
    with pytest.raises(NotFoundError):
        svc.write_metric_columns("f" * 32, MetricColumns.from_rows([]), MetricColumns.from_rows([]))


def test_a_run_over_any_backend_stores_its_points_once(contract_uri: str) -> None:
    with yard.start_run(experiment="ingest", capture_env=False, uri=contract_uri) as run:
        for i in range(5_000):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
        run.log_metric("loss", float("nan"), step=5_000)
    hist = TrackingService(contract_uri).metric_history(run.id, "loss")
    assert [p.step for p in hist] == list(range(5_001))
    assert math.isnan(hist[-1].value) and hist[0].value == 1.0


def test_a_batch_with_its_key_is_one_write_transaction_on_the_server(
    server_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelyard.store._store import MetadataStore

    svc = TrackingService(server_uri)
    rid = _run(svc)
    real = MetadataStore.write
    writes: list[str] = []

    def counting(self: MetadataStore, fn, **kw):  # type: ignore[no-untyped-def]
        writes.append(getattr(fn, "__qualname__", "?"))
        return real(self, fn, **kw)

    monkeypatch.setattr(MetadataStore, "write", counting)
    rows = [(rid, "loss", i, float(i), False, 1 + i) for i in range(100)]
    cols, last = MetricColumns.from_rows(rows), MetricColumns.from_rows(rows[-1:])
    with idempotency_key("one-tx"):
        svc.write_metric_columns(rid, cols, last)
        assert len(writes) == 1, writes  # the points, the latest value and the key with its answer
        svc.write_metric_columns(rid, cols, last)  # replayed from the key: nothing written
    assert len(writes) == 1, writes
    assert len(svc.metric_history(rid, "loss")) == 100
    svc.end_run(rid)  # marked too: one write, its key recorded in it
    assert len(writes) == 2, writes
