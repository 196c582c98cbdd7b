"""Team server tables (migration ``0800``): users, groups, API tokens, grants, idempotency keys."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from modelyard.store._schema import KEY_LEN, metadata

__all__ = ["grants", "group_members", "groups", "idempotency_keys", "tokens", "users"]

users = Table(
    "yard_users",
    metadata,
    Column("name", String(KEY_LEN), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("disabled", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY_LEN), nullable=True),
)

groups = Table(
    "yard_groups",
    metadata,
    Column("name", String(KEY_LEN), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

group_members = Table(
    "yard_group_members",
    metadata,
    Column("group_name", String(KEY_LEN), primary_key=True),
    Column("user_name", String(KEY_LEN), primary_key=True),
)

tokens = Table(
    "yard_tokens",
    metadata,
    # the public half of a token ("yard_<id>_<secret>"); only a hash of the secret is stored
    Column("id", String(32), primary_key=True),
    Column("user_name", String(KEY_LEN), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("description", String(500), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Index("ix_yard_tokens_user_name", "user_name"),
)

grants = Table(
    "yard_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # a user or a group ("group:<name>")
    Column("principal", String(KEY_LEN), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("target", String(KEY_LEN), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", String(KEY_LEN), nullable=True),
    UniqueConstraint("principal", "kind", "target", name="uq_yard_grants_principal_kind_target"),
)

idempotency_keys = Table(
    "yard_idempotency",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("user_name", String(KEY_LEN), nullable=True),
    Column("operation", String(120), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", Integer, nullable=True),
    Column("response", LargeBinary, nullable=True),
    Index("ix_yard_idempotency_created_at", "created_at"),
)
