"""Tables of dataset versioning: datasets, their immutable versions, and run inputs (lineage).

``dataset_versions.manifest_digest`` names a manifest blob (files, sizes, digests);
``schema_digest`` and ``profile_digest`` name JSON blobs (empty for non-tabular data).
``run_inputs`` is the lineage edge dataset version → run.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["dataset_versions", "datasets", "run_inputs"]

datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LEN), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("manifest_digest", String(64), nullable=False),
    Column("schema_digest", String(64), nullable=True),
    Column("profile_digest", String(64), nullable=True),
    # 'parquet', 'csv', 'arrow', 'mixed' (non-tabular files present) or 'files'
    Column("format", String(16), nullable=False),
    Column("files", Integer, nullable=False),
    Column("rows", BigInteger, nullable=True),
    Column("bytes", BigInteger, nullable=False),
    Column("source", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("run_id", String(32), nullable=True),
    UniqueConstraint("dataset_id", "version", name="uq_dataset_versions_dataset_id_version"),
    Index("ix_dataset_versions_manifest_digest", "manifest_digest"),
)

run_inputs = Table(
    "run_inputs",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "dataset_version_id", Integer, ForeignKey("dataset_versions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_run_inputs_dataset_version_id", "dataset_version_id"),
)
