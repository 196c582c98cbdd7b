"""Rollout: rollouts, rollout_steps, rollout_events.

Revision ID: 0500
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0500"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("strategy", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("stable_version", sa.Integer, nullable=False),
        sa.Column("candidate_version", sa.Integer, nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("step_started_at", sa.BigInteger, nullable=True),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("base_spec", sa.Text, nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("active_model", sa.String(250), nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.BigInteger, nullable=True),
        sa.Column("analysis", sa.Text, nullable=True),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("created_by", sa.String(250), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollouts"),
        sa.UniqueConstraint("active_model", name="uq_rollouts_active_model"),
    )
    op.create_index("ix_rollouts_model_name_id", "rollouts", ["model_name", "id"])
    op.create_index("ix_rollouts_state", "rollouts", ["state"])
    op.create_table(
        "rollout_steps",
        sa.Column(
            "rollout_id",
            sa.Integer,
            sa.ForeignKey("rollouts.id", name="fk_rollout_steps_rollout_id_rollouts"),
            nullable=False,
        ),
        sa.Column("idx", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("traffic", sa.Text, nullable=False),
        sa.Column("baseline", sa.Text, nullable=True),
        sa.Column("started_at", sa.BigInteger, nullable=True),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.Column("result", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("rollout_id", "idx", name="pk_rollout_steps"),
    )
    op.create_table(
        "rollout_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "rollout_id",
            sa.Integer,
            sa.ForeignKey("rollouts.id", name="fk_rollout_events_rollout_id_rollouts"),
            nullable=False,
        ),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("step", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("actor", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollout_events"),
    )
    op.create_index("ix_rollout_events_rollout_id_id", "rollout_events", ["rollout_id", "id"])


def downgrade() -> None:
    op.drop_table("rollout_events")
    op.drop_table("rollout_steps")
    op.drop_table("rollouts")
