"""Monitoring: drift that does not cry wolf, the prediction log, performance, alerts, Prometheus.

import modelyard as yard
report = yard.drift(reference=df_train, current=df_live)
report.drifted_columns, report.share_drifted, report.to_html()

yard.monitoring.report("churn-clf", "1h")                 # a window of the prediction log
yard.monitoring.feedback("labels.parquet", label_column="churned")
yard.monitoring.run("churn-clf", every="5m", rules="alerts.yml", metrics_port=9108)
"""

from modelyard.monitoring._alerts import METRICS as ALERT_METRICS
from modelyard.monitoring._alerts import AlertRule, load_rules
from modelyard.monitoring._api import alerts, feedback, grafana_dashboard, report, run
from modelyard.monitoring._drift import DEFAULT_THRESHOLDS, METHODS, DriftReference, drift
from modelyard.monitoring._report import STATUSES, ColumnDrift, DriftReport
from modelyard.monitoring._service import Monitor, WindowResult, performance

__all__ = [
    "ALERT_METRICS",
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "STATUSES",
    "AlertRule",
    "ColumnDrift",
    "DriftReference",
    "DriftReport",
    "Monitor",
    "WindowResult",
    "alerts",
    "drift",
    "feedback",
    "grafana_dashboard",
    "load_rules",
    "performance",
    "report",
    "run",
]
