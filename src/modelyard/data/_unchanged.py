"""A read-only query: is this path exactly the latest version of that dataset? (No SQLAlchemy.)

Re-adding an unchanged file or folder is the common case in scripts and pipelines. ``yard data
add`` asks :func:`unchanged_version` first, after Typer has parsed the command line: the answer
comes from the blob store's stat cache and one query on the SQLite file, opened read-only, so
the command does not pay for SQLAlchemy, the store's migration check or pandas/pyarrow.

It answers only when it is sure: a local folder/SQLite store at exactly the schema revision
this code's migrations produce (:mod:`modelyard._heads`, the same heads the store migrates to),
a dataset whose latest version has exactly the manifest the stat cache gives for every file, and
every blob present. In every other case (first add, a changed file, PostgreSQL, another schema
revision, any error) it returns None and the command asks :class:`~modelyard.data.DataService`,
which decides the same thing through the store (and stores what changed).

The columns read here are those of ``dataset_versions``/``datasets`` in :mod:`._schema`
(tests/data/test_data_unchanged_readd.py checks that they exist there).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["QUERY", "migration_heads", "unchanged_version"]

#: The one query: the latest version of a dataset by name.
QUERY = (
    "SELECT v.* FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
    "WHERE d.name = ? ORDER BY v.version DESC LIMIT 1"
)


def migration_heads() -> frozenset[str]:
    """Heads of the metadata store's migration graph (``modelyard._heads``: no SQLAlchemy import)."""
    from modelyard._heads import known_heads

    return known_heads()


def unchanged_version(path: str | os.PathLike[str], name: str, uri: str | None = None) -> Any:
    """The latest version of ``name`` when ``path`` is exactly it (files unchanged), else None.

    Read-only (the database is opened with ``mode=ro``) and never raises: when anything is
    unexpected the answer is None and the caller takes the full path, which reports it properly.
    ``YARD_NO_FAST_PATH=1`` turns it off.
    """
    if os.environ.get("YARD_NO_FAST_PATH"):
        return None
    try:
        return _unchanged_version(path, name, uri)
    except Exception:  # whatever went wrong, the full command reports it properly
        return None


def _unchanged_version(path: str | os.PathLike[str], name: str, uri: str | None) -> Any:
    import sqlite3
    from urllib.parse import quote

    from modelyard.blobs import BlobStore, manifest_digest
    from modelyard.config import resolve
    from modelyard.data._record import _row_to_version, walk

    if uri is None:  # the store `yard.set_uri` chose in this process, if any (else YARD_URI / ./.yard)
        uri = getattr(sys.modules.get("modelyard._workspace"), "_default_uri", None)
    loc = resolve(uri)
    if loc.dialect != "sqlite" or "://" in loc.blob_uri:
        return None
    db_file = loc.db_url[len("sqlite:///") :]
    if not os.path.isfile(db_file):
        return None
    p = Path(path)
    st = os.stat(p)
    if os.path.isdir(p):
        walked = walk(p)
        if not walked:
            return None
        files = [a for a, _, _ in walked]
        rels = [r for _, r, _ in walked]
        stats = [s for _, _, s in walked]
    else:
        files, rels, stats = [os.fspath(p)], [p.name], [st]
    blobs = BlobStore(loc.blob_uri)
    entries = blobs.known_entries(files, rels, stats)
    if entries is None:
        return None
    digest = manifest_digest(entries, kind="dataset")
    if not blobs.exists(digest):
        return None
    conn = sqlite3.connect(f"file:{quote(os.path.abspath(db_file))}?mode=ro", uri=True, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        revisions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        if revisions != migration_heads():
            return None  # the full command migrates, or explains the version mismatch
        row = conn.execute(QUERY, (name,)).fetchone()
    finally:
        conn.close()
    if row is None or row["manifest_digest"] != digest:
        return None
    return _row_to_version(SimpleNamespace(**{k: row[k] for k in row.keys()}), name, created=False)
