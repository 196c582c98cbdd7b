"""Blobs on a modelyard server: streamed over HTTP, digest-checked on both ends.

The client never holds cloud credentials: it uploads to and downloads from the server, which keeps
the bytes in whatever blob location it was started with (a folder, S3, any fsspec URL). The server
hashes every upload and keeps it only when it matches the digest the client named; the client
hashes every download while writing it and refuses bytes that do not match.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import blake3

from modelyard.blobs._backend import corrupt_error, missing_error, verified
from modelyard.blobs._files import _safe_mode, _write_all, stat_source
from modelyard.blobs._hashing import check_digest, hash_file
from modelyard.blobs._manifest import ManifestEntry
from modelyard.errors import BlobError

__all__ = ["HttpBackend"]


class BlobClient(Protocol):
    """The calls of :class:`modelyard._remote.RemoteClient` this backend uses."""

    def blob_head(self, digest: str) -> int | None: ...

    def blob_stream(self, digest: str, offset: int = 0) -> Iterator[bytes]: ...

    def blob_upload(self, source: Path | bytes, digest: str, size: int) -> None: ...


class HttpBackend:
    """The byte operations of a blob store, sent to a modelyard server."""

    root: Path | None = None

    def __init__(self, client: BlobClient, where: str) -> None:
        self.client = client
        self.where = where

    def _server_side(self, what: str) -> BlobError:
        return BlobError(f"{what} runs on the server: run it where `yard server` runs, against its store.")

    # -- reading -------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return self.client.blob_head(check_digest(digest)) is not None

    def size(self, digest: str) -> int:
        size = self.client.blob_head(check_digest(digest))
        if size is None:
            raise missing_error(self.where, digest)
        return size

    def mtime(self, digest: str) -> float:
        raise self._server_side("Blob ages (yard gc)")

    def read(self, digest: str) -> bytes:
        data = b"".join(self.client.blob_stream(check_digest(digest)))
        return verified(self.where, digest, data)

    def hash_stored(self, digest: str) -> str:
        h = blake3.blake3()
        for chunk in self.client.blob_stream(check_digest(digest)):
            h.update(chunk)
        return h.hexdigest()

    def iter_digests(self) -> Iterator[str]:
        raise self._server_side("Listing every blob (yard gc, yard doctor)")

    def delete(self, digest: str) -> None:
        raise self._server_side("Deleting blobs (yard gc)")

    def stale_temp_files(self) -> list[Path]:
        return []

    # -- writing -------------------------------------------------------------------------
    def store_bytes(self, data: bytes, digest: str, mode: int, label: str) -> None:
        self.client.blob_upload(bytes(data), check_digest(digest), len(data))

    def store_file(self, src: Path, st: os.stat_result) -> tuple[str, int]:
        digest = hash_file(src)
        self.client.blob_upload(src, digest, st.st_size)
        return digest, st.st_size

    def store_files(
        self, items: list[tuple[str, str]], stats: list[os.stat_result] | None, workers: int | None
    ) -> list[ManifestEntry]:
        def one(i: int) -> ManifestEntry:
            p, rel = items[i]
            st = stats[i] if stats is not None else stat_source(Path(p))
            digest, size = self.store_file(Path(p), st)
            return ManifestEntry(path=rel, digest=digest, size=size, mode=stat.S_IMODE(st.st_mode))

        n = max(1, min(workers or 4, 8, len(items)))
        if n == 1:
            return [one(i) for i in range(len(items))]
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(one, range(len(items))))

    def known_entries(
        self, paths: list[str], rels: list[str], stats: list[os.stat_result] | None
    ) -> list[ManifestEntry] | None:
        return None

    def materialize(
        self, digest: str, tmp: Path, dest: Path, mode: int | None, link: bool, flags: int
    ) -> bool:
        h = blake3.blake3()
        fd = os.open(tmp, flags, _safe_mode(mode))
        try:
            for chunk in self.client.blob_stream(check_digest(digest)):
                h.update(chunk)
                _write_all(fd, chunk)
        finally:
            os.close(fd)
        if h.hexdigest() != digest:
            raise corrupt_error(self.where, digest)
        return False
