"""``yard deploy grafana MODEL``: a Grafana dashboard over the server's and the monitor's metrics."""

from __future__ import annotations

from typing import Any

__all__ = ["grafana_dashboard"]


def _panel(
    pid: int,
    title: str,
    exprs: list[tuple[str, str]],
    x: int,
    y: int,
    *,
    unit: str = "short",
    w: int = 12,
    h: int = 8,
    kind: str = "timeseries",
    thresholds: list[tuple[float, str]] | None = None,
) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": v} for v, color in (thresholds or [])]
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
            }
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def grafana_dashboard(model: str, *, drift_share: float = 0.5) -> dict[str, Any]:
    """A Grafana (≥ 9) dashboard JSON for ``model``: traffic, latency, errors, fallbacks, drift,
    performance."""
    sel = f'model="{model}"'
    panels = [
        _panel(
            1,
            "Requests per second",
            [(f"sum by (status) (rate(yard_serving_requests_total{{{sel}}}[5m]))", "{{status}}")],
            0,
            0,
            unit="reqps",
        ),
        _panel(
            2,
            "Latency p50 / p95 / p99",
            [
                (
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(yard_serving_request_latency_seconds_bucket{{{sel}}}[5m])))",
                    f"p{int(q * 100)}",
                )
                for q in (0.5, 0.95, 0.99)
            ],
            12,
            0,
            unit="s",
        ),
        _panel(
            3,
            "Error rate (5xx)",
            [
                (
                    f'sum(rate(yard_serving_requests_total{{{sel},status=~"5.."}}[5m])) / '
                    f"clamp_min(sum(rate(yard_serving_requests_total{{{sel}}}[5m])), 1e-9)",
                    "5xx share",
                )
            ],
            0,
            8,
            unit="percentunit",
            thresholds=[(0.01, "red")],
        ),
        _panel(
            4,
            "Fallbacks and rejections",
            [
                (f"sum by (reason) (rate(yard_serving_fallbacks_total{{{sel}}}[5m]))", "fallback {{reason}}"),
                (f"sum(rate(yard_serving_rejected_total{{{sel}}}[5m]))", "rejected (429)"),
            ],
            12,
            8,
        ),
        _panel(
            5,
            "Share of drifted columns",
            [(f"yard_monitor_share_drifted{{{sel}}}", "share drifted")],
            0,
            16,
            unit="percentunit",
            thresholds=[(drift_share, "red")],
        ),
        _panel(
            6,
            "Drift score per column",
            [(f"yard_monitor_drift_score{{{sel}}}", "{{column}}")],
            12,
            16,
            thresholds=[(0.1, "orange"), (0.2, "red")],
        ),
        _panel(
            7,
            "Window performance (labelled requests)",
            [(f"yard_monitor_window_performance{{{sel}}}", "{{metric}}")],
            0,
            24,
        ),
        _panel(
            8,
            "Alerts firing",
            [(f"sum by (rule) (yard_monitor_alert_firing{{{sel}}})", "{{rule}}")],
            12,
            24,
            kind="stat",
            thresholds=[(1, "red")],
        ),
        _panel(9, "Logged predictions per window", [(f"yard_monitor_window_rows{{{sel}}}", "rows")], 0, 32),
        _panel(
            10,
            "Predicted labels",
            [(f"sum by (label) (rate(yard_serving_prediction_label_total{{{sel}}}[5m]))", "{{label}}")],
            12,
            32,
        ),
    ]
    return {
        "title": f"modelyard: {model}",
        "uid": f"yard-{''.join(ch if ch.isalnum() else '-' for ch in model)[:30]}",
        "tags": ["modelyard", "mlops"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                    "current": {},
                }
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }
