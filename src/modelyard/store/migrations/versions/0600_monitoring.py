"""Monitoring: alert rules/state/firings, monitoring runs/results, feedback, reference profiles.

Revision ID: 0600
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0600"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_alert_rules",
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_name", "name", name="pk_monitor_alert_rules"),
    )
    op.create_table(
        "monitor_alert_state",
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("rule_name", sa.String(250), nullable=False),
        sa.Column("pending_since", sa.BigInteger, nullable=True),
        sa.Column("firing_id", sa.Integer, nullable=True),
        sa.Column("last_value", sa.Float, nullable=True),
        sa.Column("evaluated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_name", "rule_name", name="pk_monitor_alert_state"),
    )
    op.create_table(
        "monitor_alert_firings",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("rule_name", sa.String(250), nullable=False),
        sa.Column("metric", sa.String(250), nullable=False),
        sa.Column("severity", sa.String(32), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("fired_at", sa.BigInteger, nullable=False),
        sa.Column("resolved_at", sa.BigInteger, nullable=True),
        sa.Column("delivered", sa.Boolean, nullable=False),
        sa.Column("delivery_error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_alert_firings"),
    )
    op.create_index(
        "ix_monitor_alert_firings_model_name_fired_at", "monitor_alert_firings", ["model_name", "fired_at"]
    )
    op.create_table(
        "monitor_runs",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("window_start", sa.BigInteger, nullable=False),
        sa.Column("window_end", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("share_drifted", sa.Float, nullable=True),
        sa.Column("dataset_drift", sa.Boolean, nullable=True),
        sa.Column("report_digest", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_runs"),
    )
    op.create_index("ix_monitor_runs_model_name_window_end", "monitor_runs", ["model_name", "window_end"])
    op.create_table(
        "monitor_results",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("metric", sa.String(250), nullable=False),
        sa.Column("column_name", sa.String(250), nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "metric", "column_name", name="pk_monitor_results"),
    )
    op.create_table(
        "monitor_feedback",
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("label", sa.Text, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_monitor_feedback"),
    )
    op.create_table(
        "monitor_references",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("reference", sa.Text, nullable=False),
        sa.Column("profile_digest", sa.String(64), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_monitor_references"),
    )
    op.create_index(
        "ix_monitor_references_model_name_reference", "monitor_references", ["model_name", "reference"]
    )


def downgrade() -> None:
    for name in (
        "monitor_references",
        "monitor_feedback",
        "monitor_results",
        "monitor_runs",
        "monitor_alert_firings",
        "monitor_alert_state",
        "monitor_alert_rules",
    ):
        op.drop_table(name)
