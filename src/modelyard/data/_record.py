"""The record of one dataset version, and light helpers the unchanged-add check shares.

Nothing here imports SQLAlchemy, numpy or pyarrow: ``yard data add`` of an unchanged path
answers from this module and :mod:`._unchanged` alone.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["DatasetVersion", "human_size", "walk"]


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version of a dataset. ``created`` is False when ``add`` found it unchanged."""

    id: int
    name: str
    version: int
    manifest_digest: str
    schema_digest: str | None
    profile_digest: str | None
    format: str
    files: int
    rows: int | None
    bytes: int
    created_at: int
    run_id: str | None = None
    source: str | None = None
    description: str | None = None
    created: bool = True

    @property
    def ref(self) -> str:
        """``name@vN``."""
        return f"{self.name}@v{self.version}"

    @property
    def is_tabular(self) -> bool:
        return self.profile_digest is not None

    def __str__(self) -> str:
        return self.ref

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ref"] = self.ref
        d["created"] = datetime.fromtimestamp(self.created_at / 1000, tz=UTC).isoformat(timespec="seconds")
        d["new"] = self.created
        return d


def _row_to_version(r: Any, name: str, *, created: bool = True) -> DatasetVersion:
    return DatasetVersion(
        id=int(r.id),
        name=name,
        version=int(r.version),
        manifest_digest=r.manifest_digest,
        schema_digest=r.schema_digest,
        profile_digest=r.profile_digest,
        format=r.format,
        files=int(r.files),
        rows=int(r.rows) if r.rows is not None else None,
        bytes=int(r.bytes),
        created_at=int(r.created_at),
        run_id=r.run_id,
        source=r.source,
        description=r.description,
        created=created,
    )


def human_size(n: float | None) -> str:
    """``1.5 MiB``-style size (``-`` for None)."""
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def walk(root: str | os.PathLike[str], *, skip_hidden: bool = True) -> list[tuple[str, str, os.stat_result]]:
    """``(path, posix path relative to root, stat)`` of every file below ``root`` (see
    :func:`modelyard.blobs._walk.walk`: links never lead out of ``root``; loops are refused)."""
    from modelyard.blobs._walk import walk as walk_tree  # imported here: `yard --help` stays light

    return walk_tree(root, skip_hidden=skip_hidden)
