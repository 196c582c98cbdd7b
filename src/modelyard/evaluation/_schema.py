"""Tables of the evaluation feature: evaluation records, gate checks and attached gate policies.

Created by migration ``0700_evaluation``. Model versions and dataset versions are referenced by
name and version (no foreign keys: those tables live in other features' migrations).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["evaluations", "gate_checks", "gate_policies"]

evaluations = Table(
    "evaluations",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("dataset_name", String(KEY_LEN), nullable=True),
    Column("dataset_version", String(64), nullable=True),
    #: where the data came from when it is not a dataset version (a file path, "frame")
    Column("data_source", Text, nullable=True),
    #: blake3 of the evaluated rows (pandas row hashes), so two evaluations on the same rows match
    Column("data_digest", String(64), nullable=True),
    Column("label", String(KEY_LEN), nullable=False),
    Column("task", String(16), nullable=False),
    Column("n_rows", BigInteger, nullable=False),
    Column("metrics", Text, nullable=False),  # JSON {metric: value}
    Column("slices", Text, nullable=False),  # JSON {column: {value: {n, metric: value}}}
    Column("classes", Text, nullable=True),  # JSON list
    Column("created_at", BigInteger, nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("user", String(KEY_LEN), nullable=True),
    Column("modelyard_version", String(32), nullable=False),
    Index("ix_evaluations_model", "model_name", "model_version", "created_at"),
    Index("ix_evaluations_dataset", "dataset_name", "dataset_version"),
)

gate_checks = Table(
    "gate_checks",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("model_name", String(KEY_LEN), nullable=False),
    Column("model_version", Integer, nullable=False),
    Column("evaluation_id", String(32), nullable=True),
    Column("policy_digest", String(64), nullable=False),
    Column("policy_text", Text, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("results", Text, nullable=False),  # JSON list of gate results
    #: "gate" (yard gate), "promotion" (moving a protected alias), "forced" (--force)
    Column("trigger", String(16), nullable=False),
    Column("alias", String(KEY_LEN), nullable=True),
    Column("reason", Text, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("user", String(KEY_LEN), nullable=True),
    Index("ix_gate_checks_model", "model_name", "model_version", "created_at"),
)

gate_policies = Table(
    "gate_policies",
    metadata,
    Column("model_name", String(KEY_LEN), primary_key=True),
    Column("policy_text", Text, nullable=False),
    Column("source", Text, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Column("user", String(KEY_LEN), nullable=True),
)
