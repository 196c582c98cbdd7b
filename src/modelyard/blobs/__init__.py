"""Content-addressed blob store (blake3), manifests for folders, integrity checks."""

from modelyard.blobs._store import (
    BlobStore,
    ManifestEntry,
    hash_bytes,
    hash_file,
    is_digest,
    manifest_bytes,
    manifest_digest,
)

__all__ = ["BlobStore", "ManifestEntry", "hash_bytes", "hash_file", "is_digest", "manifest_bytes", "manifest_digest"]
