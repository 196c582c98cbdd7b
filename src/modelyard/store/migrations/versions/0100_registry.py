"""Registry: registered models, model versions, aliases, audit log.

Revision ID: 0100
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0100"
down_revision = "0001"
branch_labels = None
depends_on = None

_APPEND_ONLY_SQLITE = """
CREATE TRIGGER trg_model_audit_no_{op} BEFORE {OP} ON model_audit
BEGIN SELECT RAISE(ABORT, 'model_audit is append-only'); END
"""


def upgrade() -> None:
    op.create_table(
        "registered_models",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_registered_models"),
        sa.UniqueConstraint("name", name="uq_registered_models_name"),
    )
    op.create_table(
        "model_versions",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("flavor", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(32), nullable=True),
        sa.Column("manifest_digest", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("signature", sa.Text, nullable=True),
        sa.Column("requirements", sa.Text, nullable=False),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("modelyard_version", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(250), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "version", name="pk_model_versions"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name="fk_model_versions_model_id_registered_models"
        ),
    )
    op.create_index("ix_model_versions_run_id", "model_versions", ["run_id"])
    op.create_index("ix_model_versions_manifest_digest", "model_versions", ["manifest_digest"])
    op.create_table(
        "model_aliases",
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("alias", sa.String(250), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("model_id", "alias", name="pk_model_aliases"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name="fk_model_aliases_model_id_registered_models"
        ),
    )
    op.create_table(
        "model_audit",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("model_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("actor", sa.String(250), nullable=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_audit"),
        sa.ForeignKeyConstraint(
            ["model_id"], ["registered_models.id"], name="fk_model_audit_model_id_registered_models"
        ),
    )
    op.create_index("ix_model_audit_model_id_id", "model_audit", ["model_id", "id"])
    # The audit log is append-only in the database itself, not only by convention.
    if op.get_bind().dialect.name == "sqlite":
        for name in ("update", "delete"):
            op.execute(_APPEND_ONLY_SQLITE.format(op=name, OP=name.upper()))
    else:
        op.execute(
            "CREATE FUNCTION model_audit_append_only() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'model_audit is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER trg_model_audit_append_only BEFORE UPDATE OR DELETE ON model_audit "
            "FOR EACH ROW EXECUTE FUNCTION model_audit_append_only()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP TRIGGER IF EXISTS trg_model_audit_append_only ON model_audit")
        op.execute("DROP FUNCTION IF EXISTS model_audit_append_only()")
    for table in ("model_audit", "model_aliases", "model_versions", "registered_models"):
        op.drop_table(table)
