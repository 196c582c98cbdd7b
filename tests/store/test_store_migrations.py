"""The Alembic migrations build exactly the SQLAlchemy schema; unknown revisions are refused."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelyard
from modelyard._workspace import Workspace
from modelyard.errors import SchemaVersionError
from modelyard.store import known_heads
from modelyard.store._schema import metadata


def _import_every_schema_module() -> list[str]:
    """Import every ``modelyard.*._schema`` module so features added later are covered too."""
    found = []
    for info in pkgutil.walk_packages(modelyard.__path__, "modelyard."):
        if info.name.endswith("._schema"):
            importlib.import_module(info.name)
            found.append(info.name)
    return found


def test_migrations_match_the_metadata(store_uri: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    modules = _import_every_schema_module()
    assert "modelyard.store._schema" in modules
    ws = Workspace(store_uri).open()
    try:
        with ws.store.engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": False}
            )
            diff = compare_metadata(ctx, metadata)
            revisions = {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}
    finally:
        ws.close()
    assert diff == [], "the migrations and the _schema modules disagree:\n" + "\n".join(map(str, diff))
    assert revisions == set(known_heads())


def test_reopening_a_migrated_store_is_a_no_op(tmp_path: Path) -> None:
    uri = str(tmp_path / "s")
    Workspace(uri).open().close()
    db = tmp_path / "s" / "yard.db"
    before = db.stat().st_mtime_ns
    ws = Workspace(uri).open()
    with ws.store.read() as conn:
        assert {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")} == set(
            known_heads()
        )
    ws.close()
    assert db.stat().st_mtime_ns == before


def test_sqlite_store_runs_in_wal_mode(tmp_path: Path) -> None:
    ws = Workspace(str(tmp_path / "s")).open()
    try:
        with ws.store.read() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        ws.close()


def test_unknown_revision_is_a_schema_version_error(store_uri: str) -> None:
    ws = Workspace(store_uri).open()
    # one row per migration head (each feature has its own branch): replace them all by an unknown one
    ws.store.write(
        lambda conn: (
            conn.execute(sa.text("DELETE FROM alembic_version")),
            conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES ('zz99')")),
        )
    )
    ws.close()
    with pytest.raises(
        SchemaVersionError,
        match=r"written by a newer modelyard \(schema revisions \['zz99'\]\)\. Upgrade modelyard",
    ):
        Workspace(store_uri).open()
    # nothing was changed by the refused open
    ws2 = Workspace(store_uri)
    eng = sa.create_engine(ws2.store.location.db_url)  # a plain engine: opening the store would refuse
    with eng.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "zz99"
        assert sa.inspect(conn).has_table("runs")
    eng.dispose()


def test_known_heads_reads_the_migration_files() -> None:
    heads = known_heads()
    assert "0001" in heads or all(h != "0001" for h in heads)  # 0001 is a head until a feature builds on it
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(modelyard.__file__).parent / "store" / "migrations"))
    assert set(ScriptDirectory.from_config(cfg).get_heads()) == set(heads)
