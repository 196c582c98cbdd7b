"""Prometheus metrics of a model server (prometheus-client, multiprocess-safe).

Each server gets its own :class:`CollectorRegistry` (no global default registry, so several
apps can live in one process). When ``PROMETHEUS_MULTIPROC_DIR`` is set (``yard serve
--workers N`` sets it for N > 1) every worker writes its values to files there and
``/metrics`` merges them with :class:`MultiProcessCollector`; gauges then use ``livesum``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import Any

from modelyard._prometheus import multiprocess_dir, render

__all__ = ["CountAndTime", "ServingMetrics", "counter", "gauge", "histogram", "observe", "observe_many"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
_VALUE_BUCKETS = (-10.0, -1.0, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 10.0, 100.0, 1000.0)


def observe_many(child: Any, values: Any) -> None:
    """``child.observe(v)`` for every value of a 1-d numeric array, in one pass: bucket counts
    come from one ``searchsorted`` and each bucket is incremented once (a batch of 1,000
    predictions costs a few increments, not 1,000 locked observes). Same result as the loop:
    a value lands in the first bucket whose bound is >= it; NaN only reaches the sum."""
    import numpy as np

    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    arr = np.asarray(values, dtype=float).reshape(-1)
    if bounds is None or buckets is None or total is None or len(buckets) != len(bounds):  # pragma: no cover
        for v in arr.tolist():
            child.observe(v)
        return
    if not arr.size:
        return
    idx = np.searchsorted(np.asarray(bounds, dtype=float), arr, side="left")
    counts = np.bincount(idx, minlength=len(bounds) + 1)
    for i, c in enumerate(counts[: len(bounds)].tolist()):
        if c:
            buckets[i].inc(c)
    with np.errstate(invalid="ignore"):
        total.inc(float(arr.sum()))


def observe(child: Any, value: float) -> None:
    """``child.observe(value)`` of a Histogram child: a bisection and two increments instead of a
    scan of the buckets (the same bucket: the first whose bound is >= ``value``)."""
    bounds = getattr(child, "_upper_bounds", None)
    if bounds is None:  # pragma: no cover - prometheus-client changed its internals
        child.observe(value)
        return
    child._sum.inc(value)
    i = bisect_left(bounds, value)
    if i < len(bounds):  # NaN lands past the end: only the sum, as prometheus-client does
        child._buckets[i].inc(1)


class CountAndTime:
    """A counter and a latency histogram observed together once per request, their label children
    bound once per ``key`` (``labels()`` costs a lock and a validation per call, this a dict lookup).
    ``labels(key)`` gives the counter's label values and ``latency_labels(key)`` the histogram's."""

    __slots__ = ("_children", "_counter", "_histogram", "_labels", "_latency_labels")

    def __init__(
        self,
        counter: Any,
        histogram: Any,
        labels: Callable[[Any], tuple[str, ...]],
        latency_labels: Callable[[Any], tuple[str, ...]],
    ) -> None:
        self._counter = counter
        self._histogram = histogram
        self._labels = labels
        self._latency_labels = latency_labels
        self._children: dict[Any, tuple[Any, Any]] = {}

    def __call__(self, key: Any, seconds: float | None) -> None:
        """Count one request of ``key``; time it unless ``seconds`` is None."""
        children = self._children.get(key)
        if children is None:
            count = self._counter.labels(*self._labels(key))
            value = getattr(count, "_value", None)  # its value's own inc: no checks of a constant 1
            children = self._children[key] = (
                value.inc if value is not None else count.inc,
                self._histogram.labels(*self._latency_labels(key)),
            )
        children[0](1)
        if seconds is not None:
            observe(children[1], seconds)


def counter(registry: Any, name: str, doc: str, *labels: str) -> Any:
    """A Counter of ``registry``."""
    from prometheus_client import Counter

    return Counter(name, doc, labels, registry=registry)


def histogram(registry: Any, name: str, doc: str, buckets: Any, *labels: str) -> Any:
    """A Histogram of ``registry`` with ``buckets``."""
    from prometheus_client import Histogram

    return Histogram(name, doc, labels, buckets=buckets, registry=registry)


def gauge(registry: Any, name: str, doc: str, mode: str | None, *labels: str) -> Any:
    """A Gauge of ``registry``; ``mode``: how worker values merge under multiprocess metrics."""
    from prometheus_client import Gauge

    if mode:
        return Gauge(name, doc, labels, registry=registry, multiprocess_mode=mode)  # type: ignore[arg-type]
    return Gauge(name, doc, labels, registry=registry)


class InFlight:
    """The in-flight gauge: a plain count read at scrape time in one process (no lock per
    request); the gauge's own inc/dec under multiprocess metrics (each worker's file)."""

    __slots__ = ("count", "dec", "gauge", "inc")

    def __init__(self, gauge: Any, multiprocess: bool) -> None:
        self.gauge = gauge
        self.count = 0
        if multiprocess:
            self.inc, self.dec = gauge.inc, gauge.dec
        else:
            gauge.set_function(lambda: self.count)
            self.inc, self.dec = self._inc, self._dec

    def _inc(self) -> None:
        self.count += 1

    def _dec(self) -> None:
        self.count -= 1


class ServingMetrics:
    """The metric families of one server; names start with ``yard_serving_``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry

        self.multiprocess = multiprocess_dir() is not None
        self.registry = r = CollectorRegistry(auto_describe=True)
        live = "livesum" if self.multiprocess else None
        mv = ("model", "version")
        self.requests = counter(
            r,
            "yard_serving_requests",
            "Requests answered, by model, version, endpoint and HTTP status.",
            *mv,
            "endpoint",
            "status",
        )
        self.request_latency = histogram(
            r,
            "yard_serving_request_latency_seconds",
            "End-to-end request latency inside the server.",
            _LATENCY_BUCKETS,
            "model",
            "endpoint",
        )
        self.predict_latency = histogram(
            r,
            "yard_serving_predict_latency_seconds",
            "Time of one predict call (a whole batch).",
            _LATENCY_BUCKETS,
            *mv,
        )
        self.batch_size = histogram(
            r, "yard_serving_batch_rows", "Rows per predict call.", _BATCH_BUCKETS, *mv
        )
        self.queue_depth = gauge(r, "yard_serving_queue_rows", "Rows waiting for a predict call.", live, *mv)
        self.in_flight = InFlight(
            gauge(r, "yard_serving_in_flight_requests", "Requests being answered.", live), self.multiprocess
        )
        self.prediction_value = histogram(
            r, "yard_serving_prediction_value", "Numeric predictions.", _VALUE_BUCKETS, *mv
        )
        self.prediction_label = counter(
            r, "yard_serving_prediction_label", "Predicted labels (classifiers).", *mv, "label"
        )
        self.fallbacks = counter(
            r, "yard_serving_fallbacks", "Requests answered by the fallback, by reason.", "model", "reason"
        )
        self.breaker_transitions = counter(
            r,
            "yard_serving_breaker_transitions",
            "Circuit-breaker transitions.",
            *mv,
            "from_state",
            "to_state",
        )
        self.breaker_open = gauge(
            r,
            "yard_serving_breaker_open",
            "1 while a model's circuit breaker is open or half-open.",
            "livemax" if self.multiprocess else None,  # a dead worker's open breaker drops out
            *mv,
        )
        self.rejected = counter(
            r, "yard_serving_rejected", "Requests refused because the queue was full (429).", "model"
        )
        self.model_warnings = counter(
            r,
            "yard_serving_model_warnings",
            "Python warnings raised while a model predicted (each distinct one is logged once per model).",
            *mv,
            "category",
        )
        self.swaps = counter(
            r,
            "yard_serving_spec_swaps",
            "Spec swaps, by outcome and reason: 'initial' (a worker's first load, once per worker), "
            "'admin' (PUT /admin/spec, once however many workers), 'file' (the spec file changed), "
            "'api' (ModelServer.swap).",
            "outcome",
            "reason",
        )
        self.predlog_dropped = counter(
            r,
            "yard_serving_prediction_log_dropped_rows",
            "Prediction-log rows dropped because the buffer was full.",
        )
        #: per request: requests by (model, version, endpoint, status) and latency by (model, endpoint)
        self.answered = CountAndTime(
            self.requests,
            self.request_latency,
            lambda k: (k[0], str(k[1]), k[2], str(k[3])),
            lambda k: (k[0], k[2]),
        )
        from modelyard.serving._routing import RoutingMetrics  # per-version signals of rollouts

        self.routing = RoutingMetrics(r, self.multiprocess)

    def render(self) -> tuple[bytes, str]:
        """The exposition text (merged over workers in multiprocess mode) and its content type."""
        return render(self.registry)
