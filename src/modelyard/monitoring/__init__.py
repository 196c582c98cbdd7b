"""Monitoring: drift that does not cry wolf, the prediction log, performance, alerts, Prometheus.

    import modelyard as yard
    report = yard.drift(reference=df_train, current=df_live)
    report.drifted_columns, report.share_drifted, report.to_html()
"""

from modelyard.monitoring._drift import DEFAULT_THRESHOLDS, METHODS, drift
from modelyard.monitoring._report import STATUSES, ColumnDrift, DriftReport

__all__ = ["DEFAULT_THRESHOLDS", "METHODS", "STATUSES", "ColumnDrift", "DriftReport", "drift"]
