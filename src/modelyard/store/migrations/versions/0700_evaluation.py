"""Evaluation: evaluation records, gate checks, gate policies attached to models.

Revision ID: 0700
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0700"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evaluations",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("dataset_name", sa.String(250), nullable=True),
        sa.Column("dataset_version", sa.String(64), nullable=True),
        sa.Column("data_source", sa.Text, nullable=True),
        sa.Column("data_digest", sa.String(64), nullable=True),
        sa.Column("label", sa.String(250), nullable=False),
        sa.Column("task", sa.String(16), nullable=False),
        sa.Column("n_rows", sa.BigInteger, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("slices", sa.Text, nullable=False),
        sa.Column("classes", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("duration_ms", sa.Integer, nullable=False),
        sa.Column("user", sa.String(250), nullable=True),
        sa.Column("modelyard_version", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evaluations"),
    )
    op.create_index("ix_evaluations_model", "evaluations", ["model_name", "model_version", "created_at"])
    op.create_index("ix_evaluations_dataset", "evaluations", ["dataset_name", "dataset_version"])
    op.create_table(
        "gate_checks",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("evaluation_id", sa.String(32), nullable=True),
        sa.Column("policy_digest", sa.String(64), nullable=False),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("results", sa.Text, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("alias", sa.String(250), nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("user", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_gate_checks"),
    )
    op.create_index("ix_gate_checks_model", "gate_checks", ["model_name", "model_version", "created_at"])
    op.create_table(
        "gate_policies",
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("policy_text", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("user", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("model_name", name="pk_gate_policies"),
    )


def downgrade() -> None:
    op.drop_table("gate_policies")
    op.drop_index("ix_gate_checks_model", "gate_checks")
    op.drop_table("gate_checks")
    op.drop_index("ix_evaluations_dataset", "evaluations")
    op.drop_index("ix_evaluations_model", "evaluations")
    op.drop_table("evaluations")
