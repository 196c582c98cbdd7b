"""Prometheus gauges of the monitoring signals (``yard monitor run`` serves them over HTTP).

Names start with ``yard_monitor_``; labels: ``model`` (and ``column``, ``metric``, ``rule``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.monitoring._alerts import AlertRule
    from modelyard.monitoring._service import WindowResult

__all__ = ["MonitorMetrics"]


class MonitorMetrics:
    """The metric families of ``yard monitor run``, in their own registry (no global state)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Gauge

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.drift_score = Gauge(
            "yard_monitor_drift_score",
            "Drift effect size per column (normalized Wasserstein, JS distance or PSI).",
            ["model", "column"],
            registry=r,
        )
        self.column_drifted = Gauge(
            "yard_monitor_column_drifted",
            "1 when the column drifted in the last window.",
            ["model", "column"],
            registry=r,
        )
        self.share_drifted = Gauge(
            "yard_monitor_share_drifted",
            "Share of drifted feature columns in the last window.",
            ["model"],
            registry=r,
        )
        self.dataset_drift = Gauge(
            "yard_monitor_dataset_drift", "1 when the last window's dataset drifted.", ["model"], registry=r
        )
        self.window_rows = Gauge(
            "yard_monitor_window_rows", "Logged predictions in the last window.", ["model"], registry=r
        )
        self.performance = Gauge(
            "yard_monitor_window_performance",
            "Performance on labelled requests of the last window.",
            ["model", "metric"],
            registry=r,
        )
        self.alert_firing = Gauge(
            "yard_monitor_alert_firing",
            "1 while a monitoring alert rule fires.",
            ["model", "rule", "severity"],
            registry=r,
        )
        self.last_run = Gauge(
            "yard_monitor_last_run_timestamp_seconds",
            "When the last window was evaluated.",
            ["model"],
            registry=r,
        )

    def update(self, result: WindowResult, firing: Iterable[tuple[AlertRule, bool]] = ()) -> None:
        m = result.model_name
        rep = result.report
        if rep is not None:
            for c in rep.columns.values():
                if c.effect_size is not None:
                    self.drift_score.labels(m, c.name).set(c.score)
                if c.drifted is not None:
                    self.column_drifted.labels(m, c.name).set(1.0 if c.drifted else 0.0)
            self.share_drifted.labels(m).set(rep.share_drifted)
            self.dataset_drift.labels(m).set(1.0 if rep.dataset_drift else 0.0)
        self.window_rows.labels(m).set(result.rows)
        for k in ("accuracy", "f1", "auc", "mae", "rmse"):
            v = result.stats.get(k)
            if v is not None:
                self.performance.labels(m, k).set(v)
        for rule, on in firing:
            self.alert_firing.labels(m, rule.name, rule.severity).set(1.0 if on else 0.0)
        self.last_run.labels(m).set(result.end_ms / 1000)

    def serve(self, port: int, addr: str = "127.0.0.1") -> Any:
        """Start the exposition HTTP server (``/metrics``) in a daemon thread; returns the server."""
        from prometheus_client import start_http_server

        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        return server

    def exposition(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
