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


def run_clocked(batches: int, cpu_s: float, wall_s: object, hop_s: float) -> list[str]:
    """Thread names the batches ran in, on injected clocks: each batch takes ``cpu_s`` of CPU and
    ``wall_s(i)`` of wall time in its thread; the predict thread's hand-over adds ``hop_s``."""
    where: list[str] = []
    now = [0.0]
    cpu = [0.0]

    def run_batch(payloads: list[Payload]) -> list[tuple[bool, object]]:
        name = threading.current_thread().name
        where.append(name)
        cpu[0] += cpu_s
        now[0] += wall_s(len(where)) + (hop_s if name != "MainThread" else 0.0)  # type: ignore[operator]
        return [(True, p.n) for p in payloads]

    async def go() -> None:
        with ThreadPoolExecutor(1, thread_name_prefix="predict") as ex:
            b = Batcher(
                run_batch,
                ex,
                max_batch_size=8,
                max_latency_ms=0,
                max_queue_rows=100,
                clock=lambda: now[0],
                cpu_clock=lambda: cpu[0],
            )
            for _ in range(batches):
                assert await b.submit(Payload({"x": [1.0]}, 1)) == 1
            b.close()

    asyncio.run(go())
    return where


def test_a_cheap_model_moves_to_the_loop_however_slow_the_hand_over() -> None:
    # 20 µs of CPU per batch, but 5 ms of waiting for the predict thread (a busy loop holding the
    # GIL): the hand-over is not the model's cost, so batches run on the loop
    n = _batching.INLINE_AFTER + 20
    where = run_clocked(n, 20e-6, lambda i: 20e-6, hop_s=0.005)
    assert where[_batching.INLINE_AFTER :] == ["MainThread"] * 20


def test_a_model_that_waits_goes_back_to_the_thread_and_is_tried_less_and_less() -> None:
    # little CPU but 50 ms of sleep or I/O per call: tried on the loop once, then back to the
    # thread, the next tries 32, then 64 batches later
    after = _batching.INLINE_AFTER
    where = run_clocked(after + 120, 20e-6, lambda i: 0.05, hop_s=0.0)
    tries = [i for i, w in enumerate(where) if w == "MainThread"]
    assert tries == [after, after + 2 * after, after + 6 * after]


def test_a_rare_wait_on_the_loop_does_not_move_the_model_back() -> None:
    # every ninth batch waits 5 ms (another thread held the GIL): the median of the waits stays low
    after = _batching.INLINE_AFTER
    where = run_clocked(after + 60, 20e-6, lambda i: 0.005 if i % 9 == 0 else 20e-6, hop_s=0.001)
    assert where[after:] == ["MainThread"] * 60


def test_a_serving_process_collects_young_garbage_less_often() -> None:
    import gc

    from modelyard.serving._server import GC_YOUNG_THRESHOLD, _freeze_heap

    before = gc.get_threshold()
    try:
        _freeze_heap()
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
