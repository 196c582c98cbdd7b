"""Prometheus metrics of a model server (prometheus-client, multiprocess-safe).

Each server gets its own :class:`CollectorRegistry` (no global default registry, so several
apps can live in one process). When ``PROMETHEUS_MULTIPROC_DIR`` is set (``yard serve
--workers N`` sets it for N > 1) every worker writes its values to files there and
``/metrics`` merges them with :class:`MultiProcessCollector`; gauges then use ``livesum``.
"""

from __future__ import annotations

from typing import Any

from modelyard._prometheus import multiprocess_dir, render

__all__ = ["ServingMetrics", "observe_many"]

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


class ServingMetrics:
    """The metric families of one server; names start with ``yard_serving_``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = multiprocess_dir() is not None
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.requests = Counter(
            "yard_serving_requests",
            "Requests answered, by model, version, endpoint and HTTP status.",
            ["model", "version", "endpoint", "status"],
            registry=r,
        )
        self.request_latency = Histogram(
            "yard_serving_request_latency_seconds",
            "End-to-end request latency inside the server.",
            ["model", "endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.predict_latency = Histogram(
            "yard_serving_predict_latency_seconds",
            "Time of one predict call (a whole batch).",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "yard_serving_batch_rows",
            "Rows per predict call.",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "yard_serving_queue_rows",
            "Rows waiting for a predict call.",
            ["model", "version"],
            registry=r,
            **gauge_mode,
        )
        self.in_flight = Gauge(
            "yard_serving_in_flight_requests", "Requests being answered.", registry=r, **gauge_mode
        )
        self.prediction_value = Histogram(
            "yard_serving_prediction_value",
            "Numeric predictions.",
            ["model", "version"],
            buckets=_VALUE_BUCKETS,
            registry=r,
        )
        self.prediction_label = Counter(
            "yard_serving_prediction_label",
            "Predicted labels (classifiers).",
            ["model", "version", "label"],
            registry=r,
        )
        self.fallbacks = Counter(
            "yard_serving_fallbacks",
            "Requests answered by the fallback, by reason.",
            ["model", "reason"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "yard_serving_breaker_transitions",
            "Circuit-breaker transitions.",
            ["model", "version", "from_state", "to_state"],
            registry=r,
        )
        self.breaker_open = Gauge(
            "yard_serving_breaker_open",
            "1 while a model's circuit breaker is open or half-open.",
            ["model", "version"],
            registry=r,
            multiprocess_mode="max" if self.multiprocess else "all",
        )
        self.rejected = Counter(
            "yard_serving_rejected",
            "Requests refused because the queue was full (429).",
            ["model"],
            registry=r,
        )
        self.model_warnings = Counter(
            "yard_serving_model_warnings",
            "Python warnings raised while a model predicted (each distinct one is logged once per model).",
            ["model", "version", "category"],
            registry=r,
        )
        self.swaps = Counter(
            "yard_serving_spec_swaps",
            "Spec swaps, by outcome and reason: 'initial' (a worker's first load, once per worker), "
            "'admin' (PUT /admin/spec, once however many workers), 'file' (the spec file changed), "
            "'api' (ModelServer.swap).",
            ["outcome", "reason"],
            registry=r,
        )
        self.predlog_dropped = Counter(
            "yard_serving_prediction_log_dropped_rows",
            "Prediction-log rows dropped because the buffer was full.",
            registry=r,
        )
        from modelyard.serving._routing import RoutingMetrics  # per-version signals of rollouts

        self.routing = RoutingMetrics(r, self.multiprocess)

    def render(self) -> tuple[bytes, str]:
        """The exposition text (merged over workers in multiprocess mode) and its content type."""
        return render(self.registry)
