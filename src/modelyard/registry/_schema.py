"""Registry tables on the shared metadata: models, versions, aliases and the audit log.

``registered_models.last_version`` is the per-model version counter: registering a version
increments it with one ``UPDATE ... RETURNING`` inside the same transaction as the insert, so two
processes registering at once get distinct numbers (SQLite serializes writers with
``BEGIN IMMEDIATE``; PostgreSQL holds the row lock until commit).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table, Text

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["model_aliases", "model_audit", "model_versions", "registered_models"]

registered_models = Table(
    "registered_models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(KEY_LEN), nullable=False, unique=True),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=False),  # JSON object
    Column("last_version", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("flavor", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("run_id", String(32), nullable=True),
    # blob manifest of the model folder (model files, yard-model.json, input example)
    Column("manifest_digest", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("signature", Text, nullable=True),  # JSON
    Column("requirements", Text, nullable=False),  # JSON {package: version}
    Column("metrics", Text, nullable=False),  # JSON {name: value}
    Column("description", Text, nullable=True),
    Column("modelyard_version", String(32), nullable=False),
    Column("created_by", String(KEY_LEN), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_model_versions_run_id", "run_id"),
    Index("ix_model_versions_manifest_digest", "manifest_digest"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    Column("model_id", Integer, ForeignKey("registered_models.id"), primary_key=True),
    Column("alias", String(KEY_LEN), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

model_audit = Table(
    "model_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_id", Integer, ForeignKey("registered_models.id"), nullable=False),
    Column("version", Integer, nullable=True),
    Column("action", String(32), nullable=False),
    Column("detail", Text, nullable=False),  # JSON
    Column("reason", Text, nullable=True),
    Column("actor", String(KEY_LEN), nullable=True),
    Column("at", BigInteger, nullable=False),
    Index("ix_model_audit_model_id_id", "model_id", "id"),
)
