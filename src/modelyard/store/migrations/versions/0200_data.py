"""Data: datasets, dataset versions, run inputs (lineage dataset → run).

Revision ID: 0200
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0200"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_datasets"),
        sa.UniqueConstraint("name", name="uq_datasets_name"),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("dataset_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("manifest_digest", sa.String(64), nullable=False),
        sa.Column("schema_digest", sa.String(64), nullable=True),
        sa.Column("profile_digest", sa.String(64), nullable=True),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("files", sa.Integer, nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=True),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("source", sa.Text, nullable=True),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dataset_versions"),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name="fk_dataset_versions_dataset_id_datasets",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
    )
    op.create_index("ix_dataset_versions_manifest_digest", "dataset_versions", ["manifest_digest"])
    op.create_table(
        "run_inputs",
        sa.Column("run_id", sa.String(32), nullable=False),
        sa.Column("dataset_version_id", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "dataset_version_id", name="pk_run_inputs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_inputs_run_id_runs", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["dataset_version_id"],
            ["dataset_versions.id"],
            name="fk_run_inputs_dataset_version_id_dataset_versions",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_run_inputs_dataset_version_id", "run_inputs", ["dataset_version_id"])


def downgrade() -> None:
    for table in ("run_inputs", "dataset_versions", "datasets"):
        op.drop_table(table)
