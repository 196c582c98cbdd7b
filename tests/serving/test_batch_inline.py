"""Cheap batches run on the event loop; costly ones (and the first batches) in the predict thread."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelyard.serving import _batching
from modelyard.serving._batching import Batcher
from modelyard.serving._codec import Payload


def run(threshold_s: float, batches: int) -> list[str]:
    """Thread names the batches ran in, submitting one request at a time."""
    where: list[str] = []

    def run_batch(payloads: list[Payload]) -> list[tuple[bool, object]]:
        where.append(threading.current_thread().name)
        return [(True, p.n) for p in payloads]

    async def go() -> None:
        with ThreadPoolExecutor(1, thread_name_prefix="predict") as ex:
            b = Batcher(run_batch, ex, max_batch_size=8, max_latency_ms=0, max_queue_rows=100)
            for _ in range(batches):
                assert await b.submit(Payload({"x": [1.0]}, 1)) == 1
            b.close()

    old = _batching.INLINE_BELOW_S
    _batching.INLINE_BELOW_S = threshold_s
    try:
        asyncio.run(go())
    finally:
        _batching.INLINE_BELOW_S = old
    return where


@pytest.mark.parametrize("threshold_s", [3600.0, 0.0])
def test_batches_move_to_the_loop_only_when_cheap_and_known(threshold_s: float) -> None:
    n = _batching.INLINE_AFTER + 5
    where = run(threshold_s, n)
    assert len(where) == n
    first, rest = where[: _batching.INLINE_AFTER], where[_batching.INLINE_AFTER :]
    assert all(w.startswith("predict") for w in first)  # the cost model learns in the thread first
    if threshold_s > 0:  # every batch predicted cheaper than an hour: on the loop (main thread)
        assert rest == ["MainThread"] * 5
    else:  # nothing is cheaper than 0 s: always the predict thread
        assert all(w.startswith("predict") for w in rest)
