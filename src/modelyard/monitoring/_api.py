"""The monitoring API: ``yard.monitoring.report(...)``, ``feedback(...)``, ``run(...)``."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard._redact import is_reference, resolve_secret
from modelyard._shared import parse_duration_ms
from modelyard._workspace import Workspace, get_workspace
from modelyard.monitoring._alerts import (
    deliver,
    evaluate_rules,
    load_rules,
    recent_firings,
    store_rules,
    stored_rules,
)
from modelyard.monitoring._drift import drift
from modelyard.monitoring._grafana import grafana_dashboard
from modelyard.monitoring._report import DriftReport
from modelyard.monitoring._service import Monitor, WindowResult, ingest_feedback, performance

__all__ = [
    "DriftReport",
    "Monitor",
    "WindowResult",
    "alerts",
    "drift",
    "feedback",
    "grafana_dashboard",
    "module",
    "performance",
    "report",
    "run",
]

log = logging.getLogger("modelyard.monitoring")

Uri = str | os.PathLike[str] | Workspace | None


def report(
    model: str, window: str = "1h", *, reference: str | None = None, uri: Uri = None, **drift_options: Any
) -> WindowResult:
    """Drift, serving stats and performance of the last ``window`` of ``model``'s prediction log."""
    return Monitor(model, uri=uri, **drift_options).report(window, reference=reference)


def feedback(
    source: Any, *, id_column: str = "request_id", label_column: str = "label", uri: Uri = None
) -> int:
    """Store delayed labels keyed by request id (a Parquet/CSV path or a DataFrame)."""
    return ingest_feedback(source, id_column=id_column, label_column=label_column, uri=uri)


def alerts(model: str, *, limit: int = 20, uri: Uri = None) -> dict[str, Any]:
    """The model's stored alert rules (with their state) and its recent firings."""
    ws = get_workspace(uri)
    rules = stored_rules(ws, model)
    firing = _firing(ws, model)
    return {
        "model": model,
        "rules": [{**r.__dict__, "condition": r.describe(), "firing": r.name in firing} for r in rules],
        "firings": recent_firings(ws, model, limit),
    }


def _firing(ws: Workspace, model: str) -> set[str]:
    from modelyard.monitoring._store import MonitoringService

    return set(MonitoringService(ws).firing_rules(model))


def run(
    model: str,
    *,
    every: str = "5m",
    window: str = "1h",
    rules: str | Path | None = None,
    webhook: str | None = None,
    reference: str | None = None,
    once: bool = False,
    metrics_port: int | None = None,
    metrics_addr: str = "127.0.0.1",
    uri: Uri = None,
    stop: threading.Event | None = None,
    max_iterations: int | None = None,
    on_tick: Callable[[WindowResult, list[Any]], None] | None = None,
) -> int:
    """Evaluate ``model`` every ``every``: drift and performance of the last ``window``, alert rules
    (delivered to the webhook and the log, recorded in the store), Prometheus gauges on
    ``metrics_port``. Returns the number of evaluations; stops on ``stop``, Ctrl-C or ``once``.
    """
    ws = get_workspace(uri)
    period_ms = parse_duration_ms(every, what="The 'every' interval")
    window_ms = parse_duration_ms(window, what="The window")
    hook = webhook or os.environ.get("YARD_ALERT_WEBHOOK") or None
    from modelyard._shared import now_ms

    if rules is not None:
        rule_list, file_hook = load_rules(rules)
        hook = hook or file_hook
        store_rules(ws, model, rule_list, now_ms())
    else:
        rule_list = stored_rules(ws, model)
    if hook and is_reference(
        hook
    ):  # env:NAME / file:PATH: fail now if it does not resolve (each delivery re-reads it)
        resolve_secret(hook, what="alert webhook")
    from modelyard.monitoring._prom import MonitorMetrics

    metrics = MonitorMetrics()
    server = metrics.serve(metrics_port, metrics_addr) if metrics_port is not None else None
    mon = Monitor(model, uri=ws)
    stop = stop or threading.Event()
    n = 0
    try:
        while not stop.is_set():
            now = now_ms()
            results: dict[int, WindowResult] = {}

            def at(width_ms: int, now: int = now, results: dict[int, WindowResult] = results) -> WindowResult:
                if width_ms not in results:
                    results[width_ms] = mon.report(
                        f"{width_ms}ms", reference=reference, end_ms=now, store=width_ms == window_ms
                    )
                return results[width_ms]

            main = at(window_ms)
            values = {r.name: at(r.window_ms).metric(r.metric, r.column) for r in rule_list}
            events = evaluate_rules(ws, model, rule_list, values, now)
            deliver(ws, events, hook)
            firing = _firing(ws, model)
            metrics.update(main, [(r, r.name in firing) for r in rule_list])
            n += 1
            rep = main.report
            log.info(
                "%s: %d rows, share drifted %.2f, %d alert(s) firing",
                model,
                main.rows,
                rep.share_drifted if rep else 0.0,
                len(firing),
            )
            if on_tick is not None:
                on_tick(main, events)
            if once or (max_iterations is not None and n >= max_iterations):
                break
            stop.wait(period_ms / 1000)
    except KeyboardInterrupt:
        print("monitor stopped (Ctrl-C)", file=sys.stderr)
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return n


module: Any = sys.modules[__name__.rpartition(".")[0]]
