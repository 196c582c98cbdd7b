"""Store URIs: one URI picks the metadata store and the blob store."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.config import redact, resolve
from modelyard.errors import ConfigError


def test_folder_uri(tmp_path: Path) -> None:
    loc = resolve(str(tmp_path / "s"))
    assert loc.dialect == "sqlite" and loc.db_url == f"sqlite:///{tmp_path / 's' / 'yard.db'}"
    assert loc.blob_uri == str(tmp_path / "s" / "blobs") and loc.root == tmp_path / "s"
    assert resolve(f"file://{tmp_path / 's'}").db_url == loc.db_url


def test_default_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YARD_URI", str(tmp_path / "env"))
    assert resolve().root == tmp_path / "env"
    monkeypatch.delenv("YARD_URI")
    monkeypatch.chdir(tmp_path)
    assert resolve().root == tmp_path / ".yard"
    monkeypatch.setenv("YARD_URI", "")
    assert resolve().root == tmp_path / ".yard"


def test_sqlite_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rel = resolve("sqlite:///rel.db")
    assert rel.db_url == f"sqlite:///{tmp_path / 'rel.db'}" and rel.blob_uri == str(tmp_path / "blobs")
    absolute = resolve(f"sqlite:///{tmp_path / 'x' / 'a.db'}")
    assert absolute.db_url == f"sqlite:///{tmp_path / 'x' / 'a.db'}"
    with pytest.raises(ConfigError, match="needs a database file"):
        resolve("sqlite://")


def test_postgres_uri_and_blob_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    loc = resolve("postgresql://u:pw@db.example:5432/yard?blob_uri=s3://bucket/yard&sslmode=require")
    assert loc.dialect == "postgresql" and loc.root is None
    assert loc.db_url == "postgresql+psycopg://u:pw@db.example:5432/yard?sslmode=require"
    assert loc.blob_uri == "s3://bucket/yard"
    assert "pw" not in repr(loc)
    monkeypatch.setenv("YARD_BLOB_URI", "memory://override")
    assert resolve("postgresql://u@h/db").blob_uri == "memory://override"
    assert resolve("./somewhere").blob_uri == "memory://override"
    assert resolve("./somewhere", blob_uri="memory://arg").blob_uri == "memory://arg"


def test_redact() -> None:
    assert redact("postgresql://user:secret@host/db") == "postgresql://user:***@host/db"
    assert redact("postgresql://user@host/db") == "postgresql://user@host/db"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("", "The store URI is empty"),
        ("mysql://u@h/db", "unknown scheme 'mysql'"),
        ("https://alice:pw@yard.example", "carries credentials; a modelyard server takes a token"),
        ("https://", "names no host"),
    ],
)
def test_bad_uris(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(uri)


def test_a_server_uri_resolves_to_its_api() -> None:
    loc = resolve("https://yard.example.com/team/")
    assert (loc.dialect, loc.uri, loc.blob_uri) == (
        "http",
        "https://yard.example.com/team",
        "https://yard.example.com/team/api/v1/blobs",
    )


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    from modelyard._workspace import Workspace

    ws = Workspace(f"postgresql://u:hunter2@127.0.0.1:1/db?blob_uri={tmp_path}")
    for obj in (ws, ws.store, ws.location, ws.blobs):
        assert "hunter2" not in repr(obj), obj
    assert "***" in repr(ws) and "***" in repr(ws.store)
