"""Content-addressed blob store (blake3), manifests for folders, integrity checks."""

from modelyard.blobs._hashing import hash_bytes, hash_file, is_digest
from modelyard.blobs._manifest import ManifestEntry, manifest_bytes, manifest_digest
from modelyard.blobs._store import BlobStore

__all__ = [
    "BlobStore",
    "ManifestEntry",
    "hash_bytes",
    "hash_file",
    "is_digest",
    "manifest_bytes",
    "manifest_digest",
]
