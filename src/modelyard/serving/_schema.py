"""Serving tables (migration ``0400``): one row per Parquet segment of the prediction log."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["prediction_log_segments"]

prediction_log_segments = Table(
    "prediction_log_segments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("start_ms", BigInteger, nullable=False),
    Column("end_ms", BigInteger, nullable=False),
    Column("rows", Integer, nullable=False),
    # blake3 digest of the Parquet blob (kept alive by modelyard._maintenance.BLOB_REFERENCES)
    Column("digest", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index(
        "ix_prediction_log_segments_model_name_model_version_start_ms",
        "model_name",
        "model_version",
        "start_ms",
    ),
    Index("ix_prediction_log_segments_created_at", "created_at"),
)
