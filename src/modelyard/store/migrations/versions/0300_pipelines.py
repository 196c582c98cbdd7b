"""Pipelines: step cache index and the steps of each pipeline run.

Revision ID: 0300
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0300"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pipeline_cache",
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("pipeline", sa.String(250), nullable=False),
        sa.Column("node", sa.String(250), nullable=False),
        sa.Column("step", sa.String(250), nullable=False),
        sa.Column("output_digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("key_doc", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("cache_key", name="pk_pipeline_cache"),
    )
    op.create_index(
        "ix_pipeline_cache_pipeline_node_created_at", "pipeline_cache", ["pipeline", "node", "created_at"]
    )
    op.create_table(
        "pipeline_step_runs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("pipeline_run_id", sa.String(32), nullable=False),
        sa.Column("pipeline", sa.String(250), nullable=False),
        sa.Column("node", sa.String(250), nullable=False),
        sa.Column("step", sa.String(250), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("cache_key", sa.String(64), nullable=True),
        sa.Column("cache_hit", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("inputs", sa.Text, nullable=True),
        sa.Column("output_digest", sa.String(64), nullable=True),
        sa.Column("duration_s", sa.Float, nullable=True),
        sa.Column("attempts", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name="pk_pipeline_step_runs"),
    )
    op.create_index("ix_pipeline_step_runs_pipeline_run_id", "pipeline_step_runs", ["pipeline_run_id"])


def downgrade() -> None:
    op.drop_table("pipeline_step_runs")
    op.drop_table("pipeline_cache")
