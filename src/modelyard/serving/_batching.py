"""Adaptive batching: concurrent requests for one model version become one predict call.

Requests queue per model version (bounded in rows: a full queue answers 429 with
Retry-After). One loop per model takes everything queued (up to ``max_batch_size`` rows) as
soon as the model is free, so while a predict runs the next batch builds up by itself. When
the model is idle it waits only if waiting pays: the predict cost is tracked as
``t(n) = a + b·n`` (exponentially forgotten least squares over observed batches) and the
arrival rate as an EWMA; the loop holds a batch open for at most ``min(a, max_latency_ms)``
and only when at least one more request is expected in that time. Light traffic never waits,
and neither does a batch that runs on the event loop (below).
A batch expected to take under :data:`INLINE_BELOW_S` runs on the event loop instead of the
predict thread (the hand-over would cost more than the prediction). The expectation is learned
from what the loop would pay, not from the hand-over: batches in the predict thread are timed by
that thread's CPU time (the wait for the GIL and the thread hops of a busy server are not the
model's cost), which decides to *try* a batch on the loop. On the loop a batch is timed by both
clocks: its CPU time, plus the median over the last few batches of the wall time it spent off the
CPU (a model that sleeps or waits on I/O shows there every time; another thread holding the GIL
now and then does not move a median). Batches stay on the loop while that sum is below the
threshold; a failed try is retried after twice as many batches.

``timeout_s`` bounds each request's wait from ``submit`` to its answer (TimeoutError), as
``asyncio.timeout`` around ``submit`` would, for a fraction of its cost: requests of one batcher
share one timeout, so their deadlines come in submission order and one timer, armed for the
oldest waiting request, serves them all.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from modelyard.serving._codec import HTTPProblem, Payload

__all__ = ["INLINE_AFTER", "INLINE_BELOW_S", "Batcher", "CostModel"]

#: Batches between two tries of the loop after a try that was too slow (doubles up to the cap).
_PROBE_CAP = 4096
#: Batches on the loop whose off-CPU time makes the median.
_WAITS = 9

#: A batch whose predicted cost is below this runs on the event loop itself: handing it to the
#: predict thread and back (two wake-ups, the GIL passed twice) costs more than a linear model's
#: predict of a few dozen rows, and the loop is held no longer than that threshold.
INLINE_BELOW_S = 0.0005
#: ...once the cost model has seen this many batches (timed in the predict thread).
INLINE_AFTER = 16


class CostModel:
    """Online fit of predict time ``a + b·n`` with exponential forgetting."""

    def __init__(self, decay: float = 0.9) -> None:
        self.decay = decay
        self._w = self._sn = self._st = self._snn = self._snt = 0.0
        self.a = 0.0005
        self.b = 0.00002

    def observe(self, n: int, seconds: float) -> None:
        d = self.decay
        self._w = d * self._w + 1
        self._sn = d * self._sn + n
        self._st = d * self._st + seconds
        self._snn = d * self._snn + n * n
        self._snt = d * self._snt + n * seconds
        var = self._w * self._snn - self._sn * self._sn
        if var > 1e-9 * max(1.0, self._w * self._snn):
            b = (self._w * self._snt - self._sn * self._st) / var
            a = (self._st - b * self._sn) / self._w
            if b >= 0 and a >= 0:
                self.a, self.b = a, b
                return
        mean_n = self._sn / self._w
        mean_t = self._st / self._w
        self.a = max(0.0, mean_t - self.b * mean_n)

    def predict(self, n: int) -> float:
        return self.a + self.b * n


class _Item:
    __slots__ = ("deadline", "future", "payload")

    def __init__(self, payload: Payload, future: asyncio.Future[Any], deadline: float) -> None:
        self.payload = payload
        self.future = future
        self.deadline = deadline  # on the event loop's clock; 0: none


class Batcher:
    """The queue and batch loop of one model version.

    ``run_batch(payloads) -> list[(ok, value)]`` runs in ``executor`` (off the event loop).
    """

    def __init__(
        self,
        run_batch: Callable[[list[Payload]], list[tuple[bool, Any]]],
        executor: Any,
        *,
        max_batch_size: int,
        max_latency_ms: float,
        max_queue_rows: int,
        on_queue: Callable[[int], None] | None = None,
        timeout_s: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self._run_batch = run_batch
        self._executor = executor
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000.0
        self.max_queue_rows = max_queue_rows
        self._on_queue = on_queue
        self.cost = CostModel()  # wall time of a batch, by the path it took (holds, Retry-After)
        self._cpu_cost = CostModel()  # CPU time of a batch, on either thread
        self._waits: deque[float] = deque(maxlen=_WAITS)  # off-CPU seconds of the last batches on the loop
        self._next_try = INLINE_AFTER  # batch number of the next try on the loop
        self._try_gap = INLINE_AFTER
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._queue: deque[_Item] = deque()
        self._rows = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._batches = 0  # predict calls timed so far
        self._rate = 0.0  # requests per second (EWMA)
        self._last_arrival = 0.0
        self.timeout_s = timeout_s or 0.0
        self._waiting: deque[_Item] = deque()  # requests with a deadline, oldest first
        self._timer: asyncio.TimerHandle | None = None

    @property
    def queued_rows(self) -> int:
        return self._rows

    def _ensure_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            if self._loop is not loop:
                self._queue.clear()
                self._rows = 0
            self._loop = loop
            self._waiting.clear()
            self._timer = None
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._loop_forever())

    async def submit(self, payload: Payload) -> Any:
        """Queue ``payload``, wait for its slice of a batch's output; raise what its rows raised
        (TimeoutError when no answer came within ``timeout_s``)."""
        if self._closed:
            raise RuntimeError("batcher closed")
        if self._rows and self._rows + payload.n > self.max_queue_rows:
            per_row = self.cost.predict(self.max_batch_size) / self.max_batch_size
            retry = max(1, round(self._rows * per_row + 0.5))
            raise HTTPProblem(
                429,
                "overloaded",
                f"The model's queue is full ({self._rows} rows waiting, limit {self.max_queue_rows}). "
                f"Retry after {retry} s.",
                headers={"retry-after": str(retry)},
            )
        self._ensure_loop()
        now = time.perf_counter()
        if self._last_arrival:
            gap = max(now - self._last_arrival, 1e-6)
            self._rate = 0.8 * self._rate + 0.2 / gap
        self._last_arrival = now
        loop = self._loop
        assert loop is not None and self._wake is not None
        fut: asyncio.Future[Any] = loop.create_future()
        item = _Item(payload, fut, loop.time() + self.timeout_s if self.timeout_s else 0.0)
        self._queue.append(item)
        if item.deadline:
            waiting = self._waiting
            while waiting and waiting[0].future.done():  # answered: no deadline to keep
                waiting.popleft()
            waiting.append(item)
            if self._timer is None:
                self._timer = loop.call_at(item.deadline, self._expire)
        self._rows += payload.n
        if self._on_queue:
            self._on_queue(payload.n)
        self._wake.set()
        ok, value = await fut
        if ok:
            return value
        raise value

    def _expire(self) -> None:
        """Answer TimeoutError to every request past its deadline; re-arm for the next one."""
        self._timer = None
        loop = self._loop
        assert loop is not None
        now = loop.time() + 0.001  # uvloop's clock and timers tick in milliseconds
        waiting = self._waiting
        while waiting:
            item = waiting[0]
            if not item.future.done():
                if item.deadline > now:
                    self._timer = loop.call_at(item.deadline, self._expire)
                    return
                item.future.set_result((False, TimeoutError()))
            waiting.popleft()

    def _take(self, budget: int, *, at_least_one: bool = True) -> list[_Item]:
        out: list[_Item] = []
        rows = gone = 0
        q = self._queue
        while q:
            item = q[0]
            if item.future.done():  # timed out or cancelled while queued
                q.popleft()
                gone += item.payload.n
                continue
            if (out or not at_least_one) and rows + item.payload.n > budget:
                break
            q.popleft()
            out.append(item)
            rows += item.payload.n
        if rows + gone:  # one update of the queue gauge per batch taken, not one per request
            self._rows -= rows + gone
            if self._on_queue:
                self._on_queue(-(rows + gone))
        return out

    def _hold(self, rows: int) -> float:
        """Seconds to keep an idle model's batch open for more requests (0: go now)."""
        if rows >= self.max_batch_size or self.max_latency <= 0:
            return 0.0
        if self._waits and self._loop_pays(rows):
            # a batch on the loop: the requests the loop has read are in it already (they queue
            # before this loop runs again), and the next ones queue while it predicts; holding it
            # would leave the server idle while every client waits on this batch
            return 0.0
        a = self.cost.a
        if self._rate * a < 1.0:
            return 0.0
        return min(a, self.max_latency)

    async def _loop_forever(self) -> None:
        loop = asyncio.get_running_loop()
        wake = self._wake
        assert wake is not None
        while True:
            if not self._queue:
                if self._closed:
                    return
                wake.clear()
                await wake.wait()
                continue
            items = self._take(self.max_batch_size)
            if not items:
                continue
            rows = sum(i.payload.n for i in items)
            hold = self._hold(rows)
            if hold > 0:
                await asyncio.sleep(hold)
                more = self._take(self.max_batch_size - rows, at_least_one=False)
                items += more
                rows += sum(i.payload.n for i in more)
            clock = self._clock
            t0 = clock()
            try:
                if self._on_loop(rows):  # cheaper than a thread hop
                    results, cpu = self._timed_batch([i.payload for i in items])
                    spent = clock() - t0
                    self._cpu_cost.observe(rows, cpu)
                    self._waits.append(max(0.0, spent - cpu))
                    if not self._loop_pays(rows):  # back to the thread; try again later
                        self._try_gap = min(2 * self._try_gap, _PROBE_CAP)
                        self._next_try = self._batches + self._try_gap
                        self._waits.clear()
                else:
                    results, cpu = await loop.run_in_executor(
                        self._executor, self._timed_batch, [i.payload for i in items]
                    )
                    spent = clock() - t0
                    self._cpu_cost.observe(rows, cpu)
            except BaseException as exc:  # the executor is gone (shutdown) or the task is cancelled
                for i in items:
                    if not i.future.done():
                        i.future.set_result((False, exc))
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            self.cost.observe(rows, spent)
            self._batches += 1
            for item, res in zip(items, results, strict=True):
                if not item.future.done():
                    item.future.set_result(res)

    def _timed_batch(self, payloads: list[Payload]) -> tuple[list[tuple[bool, Any]], float]:
        """``run_batch`` with the CPU time the calling thread spent in it."""
        c0 = self._cpu_clock()
        results = self._run_batch(payloads)
        return results, self._cpu_clock() - c0

    def _loop_pays(self, rows: int) -> bool:
        """Whether a batch of ``rows`` is expected to hold the loop less than the threshold."""
        waits = sorted(self._waits)
        return self._cpu_cost.predict(rows) + waits[(len(waits) - 1) // 2] < INLINE_BELOW_S

    def _on_loop(self, rows: int) -> bool:
        """Whether a batch of ``rows`` runs on the event loop: while its timings there say it is
        cheap, or as a try once its CPU time in the predict thread says it may be."""
        if self._batches < INLINE_AFTER:
            return False
        if self._waits:
            return self._loop_pays(rows)
        if self._batches >= self._next_try and self._cpu_cost.predict(rows) < INLINE_BELOW_S:
            self._next_try = self._batches + self._try_gap
            return True
        return False

    @property
    def on_loop(self) -> bool:
        """Whether batches currently run on the event loop."""
        return bool(self._waits)

    def close(self) -> None:
        """Stop after the queued requests are answered."""
        self._closed = True
        if self._loop is not None and self._wake is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # pragma: no cover - loop closed meanwhile
                pass
