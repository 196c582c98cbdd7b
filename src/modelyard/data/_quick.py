"""The fast path of ``yard data add PATH --name NAME`` when nothing changed.

Re-adding an unchanged file or folder is the common case in scripts and pipelines. The full
command line imports Typer, SQLAlchemy and runs the migration check before it can tell; this
path answers from the stat cache and one read-only SQLite query using only the standard library,
blake3 and the blob store module, and prints exactly what the full command prints.

It answers only when it is sure: a local folder/SQLite store at the code's schema revision, a
dataset whose latest version has exactly the manifest the stat cache gives for every file, and
every blob present. In every other case (first add, a changed file, PostgreSQL, other options,
any error) :func:`try_unchanged_add` returns False and the full command runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

__all__ = ["migration_heads", "try_unchanged_add", "unchanged_version"]

def migration_heads() -> frozenset[str]:
    """Heads of the metadata store's migration graph (``modelyard._heads``: no SQLAlchemy import)."""
    from modelyard._heads import known_heads

    return known_heads()


def _parse(argv: list[str]) -> dict[str, Any] | None:
    """``[--uri U] data add PATH --name N [--description D] [--no-profile] [--json]``, else None."""
    out: dict[str, Any] = {"uri": None, "name": None, "json": False, "path": None}
    i = 0
    n = len(argv)
    while i < n and argv[i].startswith("--uri"):
        if argv[i] == "--uri" and i + 1 < n:
            out["uri"], i = argv[i + 1], i + 2
        elif argv[i].startswith("--uri="):
            out["uri"], i = argv[i][6:], i + 1
        else:
            return None
    if argv[i : i + 2] != ["data", "add"]:
        return None
    i += 2
    seen: set[str] = set()
    while i < n:
        a = argv[i]
        key, eq, val = a.partition("=")
        if key in ("--name", "-n", "--description", "-d"):
            field = "name" if key in ("--name", "-n") else "description"
            if field in seen or (eq and key.startswith("-") and not key.startswith("--")):
                return None
            seen.add(field)
            if not eq:
                if i + 1 >= n:
                    return None
                val, i = argv[i + 1], i + 1
            out[field] = val
        elif a in ("--json", "--no-profile"):
            if a in seen:
                return None
            seen.add(a)
            out["json"] = out["json"] or a == "--json"
        elif a.startswith("-") or out["path"] is not None:
            return None  # --help, an unknown option, a second path: the full command answers
        else:
            out["path"] = a
        i += 1
    if not out["name"] or out["path"] is None:
        return None
    return out


def unchanged_version(path: str | os.PathLike[str], name: str, uri: str | None = None) -> Any:
    """The latest version of ``name`` when ``path`` is exactly it (files unchanged), else None.

    Read-only: nothing is written to the store.
    """
    import sqlite3

    from modelyard.blobs import BlobStore, manifest_digest
    from modelyard.config import resolve
    from modelyard.data._record import _row_to_version, walk

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
    conn = sqlite3.connect(db_file, timeout=30)
    try:
        conn.row_factory = sqlite3.Row
        revisions = {r[0] for r in conn.execute("SELECT version_num FROM alembic_version")}
        if revisions != migration_heads():
            return None  # the full command migrates, or explains the version mismatch
        row = conn.execute(
            "SELECT v.* FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id "
            "WHERE d.name = ? ORDER BY v.version DESC LIMIT 1",
            (name,),
        ).fetchone()
    finally:
        conn.close()
    if row is None or row["manifest_digest"] != digest:
        return None
    return _row_to_version(SimpleNamespace(**{k: row[k] for k in row.keys()}), name, created=False)


def try_unchanged_add(argv: list[str]) -> bool:
    """Answer ``yard data add`` of an unchanged path (printing what the full command prints); True when answered."""
    if os.environ.get("YARD_NO_FAST_PATH"):
        return False
    args = _parse(argv)
    if args is None:
        return False
    try:
        v = unchanged_version(args["path"], args["name"], args["uri"])
    except Exception:  # whatever went wrong, the full command reports it properly
        return False
    if v is None:
        return False
    if args["json"]:
        text = json.dumps(v.to_dict(), indent=2, allow_nan=False)
    else:
        from modelyard.data._record import human_size

        rows = f", {v.rows:,} rows" if v.rows is not None else ""
        text = f"unchanged, still {v.ref}  {v.manifest_digest[:16]}  ({v.files} file(s), {human_size(v.bytes)}{rows})"
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    return True
