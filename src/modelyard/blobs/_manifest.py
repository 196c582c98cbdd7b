"""Manifests: a folder stored as one blob listing ``path → (digest, size, mode)`` of its files.

The bytes are canonical JSON (sorted keys, entries sorted by path): the same entries always give
the same manifest digest. Parsing treats the bytes as untrusted and checks every entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelyard._version import __version__
from modelyard.blobs._hashing import hash_bytes, is_digest
from modelyard.errors import BlobError, IntegrityError

__all__ = ["ManifestEntry", "manifest_bytes", "manifest_digest"]


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a folder stored as a manifest."""

    path: str
    digest: str
    size: int
    mode: int = 0o644


def manifest_bytes(entries: Iterable[ManifestEntry], **meta: Any) -> bytes:
    """The canonical bytes of a manifest blob (entries sorted by path; same entries, same bytes)."""
    items = sorted(entries, key=lambda e: e.path)
    doc: dict[str, Any] = {
        "type": "modelyard.manifest",
        "modelyard_version": __version__,
        "entries": [{"path": e.path, "digest": e.digest, "size": e.size, "mode": e.mode} for e in items],
    }
    if meta:
        doc["meta"] = meta
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def manifest_digest(entries: Iterable[ManifestEntry], **meta: Any) -> str:
    """The digest :meth:`BlobStore.put_manifest` would give these entries (nothing is stored)."""
    return hash_bytes(manifest_bytes(entries, **meta))


def parse_manifest(data: bytes, digest: str) -> list[ManifestEntry]:
    """The entries of manifest bytes (already verified against ``digest``, named in errors).

    Raises BlobError when the bytes are not a manifest, IntegrityError when an entry is malformed.
    """
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BlobError(f"Blob {digest[:12]}… is not a manifest.") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("type") != "modelyard.manifest"
        or not isinstance(doc.get("entries"), list)
    ):
        raise BlobError(f"Blob {digest[:12]}… is not a manifest.")
    out = []
    for e in doc["entries"]:
        ok = (
            isinstance(e, dict)
            and isinstance(e.get("path"), str)
            and isinstance(e.get("digest"), str)
            and is_digest(e["digest"])
            and type(e.get("size")) is int
            and type(e.get("mode", 0o644)) is int
        )
        if not ok:
            raise IntegrityError(f"Manifest {digest[:12]}… has a malformed entry: {str(e)[:80]!r}.")
        out.append(ManifestEntry(e["path"], e["digest"], e["size"], e.get("mode", 0o644)))
    return out
