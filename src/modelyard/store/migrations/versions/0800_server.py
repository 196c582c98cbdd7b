"""Team server: users, groups, API tokens (hashed), grants, idempotency keys.

Revision ID: 0800
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0800"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "yard_users",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_yard_users"),
    )
    op.create_table(
        "yard_groups",
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_yard_groups"),
    )
    op.create_table(
        "yard_group_members",
        sa.Column("group_name", sa.String(250), nullable=False),
        sa.Column("user_name", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "user_name", name="pk_yard_group_members"),
    )
    op.create_table(
        "yard_tokens",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(250), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("revoked_at", sa.BigInteger, nullable=True),
        sa.Column("last_used_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_yard_tokens"),
    )
    op.create_index("ix_yard_tokens_user_name", "yard_tokens", ["user_name"])
    op.create_table(
        "yard_grants",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("principal", sa.String(250), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(250), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(250), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_yard_grants"),
        sa.UniqueConstraint("principal", "kind", "target", name="uq_yard_grants_principal_kind_target"),
    )
    op.create_table(
        "yard_idempotency",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("user_name", sa.String(250), nullable=True),
        sa.Column("operation", sa.String(120), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Integer, nullable=True),
        sa.Column("response", sa.LargeBinary, nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_yard_idempotency"),
    )
    op.create_index("ix_yard_idempotency_created_at", "yard_idempotency", ["created_at"])


def downgrade() -> None:
    for table in ("yard_idempotency", "yard_grants", "yard_tokens", "yard_group_members", "yard_groups"):
        op.drop_table(table)
    op.drop_table("yard_users")
