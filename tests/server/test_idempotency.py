"""A batch retried after its answer was lost is stored once; a lost server is waited for, bounded."""

from __future__ import annotations

import pytest

import modelyard as yard
from modelyard._rpc import idempotency_key
from modelyard.errors import ServerError
from modelyard.tracking._service import TrackingService


def test_a_retried_batch_is_stored_once(server_uri: str) -> None:
    yard.set_uri(server_uri)
    with yard.start_run(experiment="e", capture_env=False) as run:
        pass
    svc = TrackingService(server_uri)
    svc.reopen_run(run.id)
    rows = [(run.id, "loss", i, float(i), False, 1_000 + i) for i in range(500)]
    with idempotency_key("batch-1"):
        svc.write_metrics(rows, rows[-1:])
        svc.write_metrics(rows, rows[-1:])  # the same batch again, as a client does when the answer is lost
    with idempotency_key("batch-2"):
        svc.write_metrics(rows[:1], [])  # a new key is a new batch
    steps = [p.step for p in svc.metric_history(run.id, "loss")]
    assert steps == [0, *range(500)]


def test_a_lost_server_keeps_points_buffered_then_says_so(
    server_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("YARD_METRIC_BUFFER", "50000")
    yard.set_uri(server_uri)
    run = yard.start_run(experiment="e", capture_env=False)
    from modelyard.tracking._run import _flusher

    with _flusher.lock:  # explicit flushes only
        _flusher.runs.discard(run)
    ws = yard.get_workspace(server_uri)
    real_url = ws.remote.url
    ws.remote.close()
    ws.remote.url = "http://127.0.0.1:9"  # nothing listens there: the server is "lost"
    monkeypatch.setenv("YARD_HTTP_RETRIES", "0")
    ws.remote.retries = 0
    for i in range(49_999):
        run.log_metric("x", float(i))
    with pytest.raises(ServerError, match="Cannot reach the modelyard server"):
        run.flush()
    run.log_metric("x", 49_999.0)
    with pytest.raises(ServerError, match=r"50000 metric points are waiting.*nothing buffered is lost"):
        run.log_metric("x", 50_000.0)
    ws.remote.close()
    ws.remote.url = real_url  # the server is back
    run.flush()
    run.end()
    history = TrackingService(server_uri).metric_history(run.id, "x")
    assert [p.step for p in history] == list(range(50_000))
