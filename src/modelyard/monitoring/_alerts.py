"""Alert rules (YAML), their evaluation with a for-duration, and delivery (webhook + log).

    webhook: env:SLACK_WEBHOOK_URL   # optional (or file:PATH, or a URL); or `--webhook` / YARD_ALERT_WEBHOOK
    rules:
      - name: dataset-drift
        metric: share_drifted        # see METRICS
        op: ">="                     # > >= < <= (default >)
        threshold: 0.3
        window: 1h                   # the traffic window the metric is computed on
        for: 15m                     # the condition must hold this long before firing (default 0)
        severity: warning            # info | warning | critical
      - name: tenure-drift
        metric: drift_score
        column: tenure
        threshold: 0.2

A rule is *pending* while its condition holds for less than ``for``; then it *fires* once (a row
in ``monitor_alert_firings``, a webhook call, a log line) and stays firing until the condition
clears, when the firing is marked resolved (and a resolve message is sent).
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard._shared import parse_duration_ms
from modelyard._workspace import Workspace
from modelyard.errors import InvalidArgumentError, did_you_mean

__all__ = ["METRICS", "AlertEvent", "AlertRule", "deliver", "evaluate_rules", "load_rules", "store_rules"]

log = logging.getLogger("modelyard.monitoring.alerts")

#: Metrics a rule can watch (``column`` is required for the per-column ones).
METRICS: dict[str, str] = {
    "share_drifted": "share of drifted feature columns in the window",
    "dataset_drift": "1 when the window's dataset drifted, else 0",
    "drift_score": "effect size of one column's drift (needs column)",
    "null_share": "null share of one column in the window (needs column)",
    "prediction_drift_score": "effect size of the output's drift",
    "rows": "logged predictions in the window",
    "latency_p95_ms": "95th percentile of logged latency",
    "fallback_rate": "share of logged requests answered by the fallback",
    "accuracy": "accuracy on labelled requests (feedback)",
    "f1": "F1 on labelled requests",
    "auc": "ROC AUC on labelled requests",
    "mae": "mean absolute error on labelled requests",
    "rmse": "root mean squared error on labelled requests",
    "accuracy_drop": "model version's accuracy minus the window's",
    "f1_drop": "model version's F1 minus the window's",
    "auc_drop": "model version's AUC minus the window's",
    "mae_increase": "window's MAE minus the model version's",
    "rmse_increase": "window's RMSE minus the model version's",
    "labelled_rows": "requests in the window with a feedback label",
}
_COLUMN_METRICS = frozenset({"drift_score", "null_share"})
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class AlertRule:
    """One alert rule."""

    name: str
    metric: str
    threshold: float
    op: str = ">"
    window_ms: int = 3_600_000
    for_ms: int = 0
    severity: str = "warning"
    column: str | None = None

    def key(self) -> str:
        return f"{self.metric}[{self.column}]" if self.column else self.metric

    def holds(self, value: float | None) -> bool:
        return value is not None and not math.isnan(value) and _OPS[self.op](value, self.threshold)

    def describe(self) -> str:
        return f"{self.key()} {self.op} {self.threshold:g} over {_fmt_ms(self.window_ms)}" + (
            f" for {_fmt_ms(self.for_ms)}" if self.for_ms else ""
        )


def _fmt_ms(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _rule_from_dict(i: int, raw: Any, source: str) -> AlertRule:
    where = f"{source}: rule #{i + 1}"
    if not isinstance(raw, Mapping):
        raise InvalidArgumentError(f"{where} must be a mapping with name, metric and threshold. Got {raw!r}.")
    unknown = set(raw) - {"name", "metric", "threshold", "op", "window", "for", "severity", "column"}
    if unknown:
        raise InvalidArgumentError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: name, metric, column, op, threshold, "
            "window, for, severity."
        )
    for req in ("name", "metric", "threshold"):
        if req not in raw:
            raise InvalidArgumentError(f"{where} needs {req!r}.")
    metric = str(raw["metric"])
    if metric not in METRICS:
        raise InvalidArgumentError(
            f"{where} ({raw['name']!r}): unknown metric {metric!r}.{did_you_mean(metric, METRICS)} "
            f"Metrics: {', '.join(METRICS)}."
        )
    column = raw.get("column")
    if metric in _COLUMN_METRICS and not column:
        raise InvalidArgumentError(f"{where} ({raw['name']!r}): metric {metric!r} needs a 'column'.")
    op = str(raw.get("op", ">"))
    if op not in _OPS:
        raise InvalidArgumentError(
            f"{where} ({raw['name']!r}): 'op' must be one of {list(_OPS)}. Got {op!r}."
        )
    severity = str(raw.get("severity", "warning"))
    if severity not in SEVERITIES:
        raise InvalidArgumentError(
            f"{where} ({raw['name']!r}): 'severity' must be one of {list(SEVERITIES)}. Got {severity!r}."
        )
    try:
        threshold = float(raw["threshold"])
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"{where} ({raw['name']!r}): 'threshold' must be a number. Got {raw['threshold']!r}."
        ) from None
    return AlertRule(
        name=str(raw["name"]),
        metric=metric,
        threshold=threshold,
        op=op,
        window_ms=parse_duration_ms(raw.get("window", "1h"), what=f"The 'window' of rule {raw['name']!r}"),
        for_ms=0
        if raw.get("for") in (None, 0, "0")
        else parse_duration_ms(raw["for"], what=f"The 'for' of rule {raw['name']!r}"),
        severity=severity,
        column=str(column) if column else None,
    )


def load_rules(source: str | Path | Mapping[str, Any]) -> tuple[list[AlertRule], str | None]:
    """Rules and the optional webhook from a YAML file (or an already parsed mapping)."""
    import yaml

    from modelyard._yaml import load_yaml

    label = "rules"
    if isinstance(source, Mapping):
        doc: Any = source
    else:
        path = Path(source)
        label = str(path)
        if not path.is_file():
            raise InvalidArgumentError(f"The alert rules file {label!r} does not exist.")
        try:
            doc = load_yaml(path, what="alert rules file")
        except yaml.YAMLError as exc:
            raise InvalidArgumentError(f"The alert rules file {label!r} is not valid YAML: {exc}") from None
    if isinstance(doc, list):
        doc = {"rules": doc}
    if not isinstance(doc, Mapping) or not isinstance(doc.get("rules"), list):
        raise InvalidArgumentError(f"{label}: expected a top-level 'rules:' list of alert rules.")
    rules = [_rule_from_dict(i, r, label) for i, r in enumerate(doc["rules"])]
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidArgumentError(f"{label}: rule names must be unique; repeated: {dupes}.")
    webhook = doc.get("webhook")
    return rules, str(webhook) if webhook else None


def store_rules(ws: Workspace, model_name: str, rules: Sequence[AlertRule], now_ms: int) -> None:
    """Replace the stored rules of a model (``yard monitor alerts`` shows them)."""
    from modelyard.monitoring._store import MonitoringService

    MonitoringService(ws).store_rules(model_name, list(rules), now_ms)


def stored_rules(ws: Workspace, model_name: str) -> list[AlertRule]:
    from modelyard.monitoring._store import MonitoringService

    return MonitoringService(ws).stored_rules(model_name)


@dataclass
class AlertEvent:
    """A rule that started firing or resolved during an evaluation."""

    kind: str  # firing | resolved
    model_name: str
    rule: AlertRule
    value: float | None
    started_at: int
    at: int
    firing_id: int
    delivered: bool = False
    delivery_error: str | None = None

    def text(self) -> str:
        v = "n/a" if self.value is None else f"{self.value:.4g}"
        if self.kind == "firing":
            return (
                f"[{self.rule.severity.upper()}] {self.model_name}: {self.rule.name} firing: "
                f"{self.rule.key()} = {v} ({self.rule.describe()})"
            )
        return f"[RESOLVED] {self.model_name}: {self.rule.name}: {self.rule.key()} = {v}"

    def slack_payload(self) -> dict[str, Any]:
        color = {"critical": "#d62728", "warning": "#ff9f1c", "info": "#4c78a8"}[self.rule.severity]
        if self.kind == "resolved":
            color = "#2ca02c"
        return {
            "text": self.text(),
            "attachments": [
                {
                    "color": color,
                    "title": f"{self.rule.name} ({self.kind})",
                    "fields": [
                        {"title": "model", "value": self.model_name, "short": True},
                        {"title": "severity", "value": self.rule.severity, "short": True},
                        {"title": "metric", "value": self.rule.key(), "short": True},
                        {
                            "title": "value",
                            "value": "n/a" if self.value is None else f"{self.value:.6g}",
                            "short": True,
                        },
                        {"title": "condition", "value": self.rule.describe(), "short": False},
                    ],
                    "ts": self.at // 1000,
                }
            ],
        }


def evaluate_rules(
    ws: Workspace,
    model_name: str,
    rules: Sequence[AlertRule],
    values: Mapping[str, float | None],
    now_ms: int,
) -> list[AlertEvent]:
    """Advance each rule's state with the current values (``rule.name`` → value); record firings.

    State lives in the store, so ``monitor run --once`` from cron keeps pending/firing state.
    """
    from modelyard.monitoring._store import MonitoringService

    return MonitoringService(ws).evaluate_rules(model_name, list(rules), dict(values), now_ms)


def deliver(
    ws: Workspace, events: Sequence[AlertEvent], webhook: str | None, *, timeout: float = 5.0
) -> None:
    """Log every event and POST it (Slack-compatible JSON) to ``webhook`` (a URL, ``env:NAME`` or
    ``file:PATH``); record the outcome. Logs and the stored error show the webhook's host only."""
    from modelyard._redact import is_reference, redact_webhook, resolve_secret, scrub_urls

    for ev in events:
        level = logging.WARNING if ev.kind == "firing" and ev.rule.severity != "info" else logging.INFO
        log.log(level, ev.text())
        if webhook:
            import httpx

            try:
                url = resolve_secret(webhook, what="alert webhook") if is_reference(webhook) else webhook
                resp = httpx.post(url, json=ev.slack_payload(), timeout=timeout)
                resp.raise_for_status()
                ev.delivered = True
            except InvalidArgumentError as exc:  # the reference does not resolve (variable unset, file gone)
                ev.delivery_error = str(exc)
                log.error("alert webhook %s failed: %s", redact_webhook(webhook), ev.delivery_error)
            except (
                httpx.HTTPError,
                httpx.InvalidURL,
            ) as exc:  # its message quotes the URL, whose path is the token
                ev.delivery_error = scrub_urls(f"{type(exc).__name__}: {exc}")
                log.error("alert webhook %s failed: %s", redact_webhook(webhook), ev.delivery_error)
        else:
            ev.delivered = True  # the log is the only channel
        if ev.kind == "firing":
            from modelyard.monitoring._store import MonitoringService

            MonitoringService(ws).record_delivery(
                ev.model_name, ev.firing_id, ev.delivered, ev.delivery_error
            )


def recent_firings(ws: Workspace, model_name: str, limit: int = 20) -> list[dict[str, Any]]:
    from modelyard.monitoring._store import MonitoringService

    return MonitoringService(ws).recent_firings(model_name, limit)
