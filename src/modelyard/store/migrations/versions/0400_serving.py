"""Serving: prediction_log_segments (one row per Parquet segment of the prediction log).

Revision ID: 0400
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0400"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prediction_log_segments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model_name", sa.String(250), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=False),
        sa.Column("end_ms", sa.BigInteger, nullable=False),
        sa.Column("rows", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_prediction_log_segments"),
    )
    op.create_index(
        "ix_prediction_log_segments_model_name_model_version_start_ms",
        "prediction_log_segments",
        ["model_name", "model_version", "start_ms"],
    )
    op.create_index("ix_prediction_log_segments_created_at", "prediction_log_segments", ["created_at"])


def downgrade() -> None:
    op.drop_table("prediction_log_segments")
