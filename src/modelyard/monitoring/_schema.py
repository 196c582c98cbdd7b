"""Monitoring tables: alert rules, alert state and firings, monitoring runs and results,
feedback labels, stored reference profiles. Created by migration ``0600``."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, String, Table, Text

from modelyard.store._schema import KEY_LEN, metadata

__all__ = [
    "monitor_alert_firings",
    "monitor_alert_rules",
    "monitor_alert_state",
    "monitor_feedback",
    "monitor_references",
    "monitor_results",
    "monitor_runs",
]

monitor_alert_rules = Table(
    "monitor_alert_rules",
    metadata,
    Column("model_name", String(KEY_LEN), primary_key=True),
    Column("name", String(KEY_LEN), primary_key=True),
    Column("spec", Text, nullable=False),  # the rule as JSON
    Column("updated_at", BigInteger, nullable=False),
)

monitor_alert_state = Table(
    "monitor_alert_state",
    metadata,
    Column("model_name", String(KEY_LEN), primary_key=True),
    Column("rule_name", String(KEY_LEN), primary_key=True),
    Column("pending_since", BigInteger, nullable=True),  # condition true since (ms)
    Column("firing_id", Integer, nullable=True),  # the open firing, if any
    Column("last_value", Float, nullable=True),
    Column("evaluated_at", BigInteger, nullable=False),
)

monitor_alert_firings = Table(
    "monitor_alert_firings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("rule_name", String(KEY_LEN), nullable=False),
    Column("metric", String(KEY_LEN), nullable=False),
    Column("severity", String(32), nullable=False),
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=False),
    Column("message", Text, nullable=False),
    Column("started_at", BigInteger, nullable=False),  # condition first true
    Column("fired_at", BigInteger, nullable=False),
    Column("resolved_at", BigInteger, nullable=True),
    Column("delivered", Boolean, nullable=False),
    Column("delivery_error", Text, nullable=True),
    Index("ix_monitor_alert_firings_model_name_fired_at", "model_name", "fired_at"),
)

monitor_runs = Table(
    "monitor_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("model_version", String(64), nullable=True),
    Column("window_start", BigInteger, nullable=False),
    Column("window_end", BigInteger, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("reference", Text, nullable=True),
    Column("share_drifted", Float, nullable=True),
    Column("dataset_drift", Boolean, nullable=True),
    Column("report_digest", String(64), nullable=True),  # blob: the JSON report
    Column("created_at", BigInteger, nullable=False),
    Index("ix_monitor_runs_model_name_window_end", "model_name", "window_end"),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("metric", String(KEY_LEN), primary_key=True),
    Column("column_name", String(KEY_LEN), primary_key=True),  # "" for window-level metrics
    Column("value", Float, nullable=True),
)

monitor_feedback = Table(
    "monitor_feedback",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("label", Text, nullable=False),  # JSON value
    Column("received_at", BigInteger, nullable=False),
)

monitor_references = Table(
    "monitor_references",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("reference", Text, nullable=False),  # dataset ref (name@vN) or file path it came from
    Column("profile_digest", String(64), nullable=False),  # blob: Parquet of the reference columns
    Column("rows", BigInteger, nullable=False),
    Column("columns", Text, nullable=False),  # JSON list
    Column("created_at", BigInteger, nullable=False),
    Index("ix_monitor_references_model_name_reference", "model_name", "reference", unique=False),
)
