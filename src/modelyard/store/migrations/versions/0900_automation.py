"""Automation: automations, automation_runs, automation_steps, automation_events.

Revision ID: 0900
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0900"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("enabled", sa.Integer, nullable=False),
        sa.Column("schedule_cursor", sa.BigInteger, nullable=True),
        sa.Column("alert_cursor", sa.Integer, nullable=True),
        sa.Column("dataset_cursor", sa.Integer, nullable=True),
        sa.Column("webhook_secret_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_automations"),
    )
    op.create_table(
        "automation_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("automation", sa.String(250), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("trigger_key", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("step", sa.String(16), nullable=True),
        sa.Column("active_slot", sa.String(250), nullable=True),
        sa.Column("queued_slot", sa.String(250), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("model_name", sa.String(250), nullable=True),
        sa.Column("model_version", sa.Integer, nullable=True),
        sa.Column("pipeline_run_id", sa.String(32), nullable=True),
        sa.Column("rollout_id", sa.Integer, nullable=True),
        sa.Column("approved_by", sa.String(250), nullable=True),
        sa.Column("approval", sa.String(16), nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(250), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_automation_runs"),
        sa.UniqueConstraint("automation", "trigger_key", name="uq_automation_runs_automation_trigger_key"),
        sa.UniqueConstraint("active_slot", name="uq_automation_runs_active_slot"),
        sa.UniqueConstraint("queued_slot", name="uq_automation_runs_queued_slot"),
    )
    op.create_index("ix_automation_runs_automation_id", "automation_runs", ["automation", "id"])
    op.create_table(
        "automation_steps",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("run_id", "idx", name="pk_automation_steps"),
    )
    op.create_table(
        "automation_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("automation", sa.String(250), nullable=False),
        sa.Column("run_id", sa.Integer, nullable=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("actor", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_automation_events"),
    )
    op.create_index("ix_automation_events_run_id_id", "automation_events", ["run_id", "id"])


def downgrade() -> None:
    op.drop_table("automation_events")
    op.drop_table("automation_steps")
    op.drop_table("automation_runs")
    op.drop_table("automations")
