"""Blobs on any fsspec filesystem (``s3://``, ``gs://``, ``memory://`` in tests...).

Same layout as a local store (``objects/ab/cdef…``); fsspec writes each object in one call.
There is no stat cache, no hard link and no memory map here: files are hashed as they are read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelyard.blobs._backend import missing_error, object_name, verified
from modelyard.blobs._files import _safe_mode, _write_all, stat_source
from modelyard.blobs._hashing import check_digest, hash_bytes, hash_file, is_digest
from modelyard.blobs._manifest import ManifestEntry

__all__ = ["FsspecBackend"]


class FsspecBackend:
    """Blobs under ``root`` of an fsspec filesystem."""

    def __init__(self, fs: Any, root: str, where: str) -> None:
        self.fs = fs
        self.prefix = root.rstrip("/")
        self.where = where
        self.root: Path | None = None

    @classmethod
    def from_url(cls, url: str, where: str) -> FsspecBackend:
        import fsspec

        fs, root = fsspec.core.url_to_fs(url)
        return cls(fs, root, where)

    def path(self, digest: str) -> str:
        """Where the blob ``digest`` is (or would be) on the filesystem (the digest is not checked)."""
        rel = object_name(digest)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    # -- reading -------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self.path(check_digest(digest))))

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self.path(check_digest(digest))))
        except FileNotFoundError as exc:
            raise missing_error(self.where, digest) from exc

    def mtime(self, digest: str) -> float:
        info = self.fs.info(self.path(check_digest(digest)))
        m = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
        return m.timestamp() if hasattr(m, "timestamp") else float(m)

    def read(self, digest: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self.path(digest))
        except FileNotFoundError as exc:
            raise missing_error(self.where, digest) from exc
        return verified(self.where, digest, data)

    def hash_stored(self, digest: str) -> str:
        return hash_bytes(self.fs.cat_file(self.path(digest)))

    def iter_digests(self) -> Iterator[str]:
        base = f"{self.prefix}/objects" if self.prefix else "objects"
        if not self.fs.exists(base):
            return
        for path in sorted(self.fs.find(base)):
            parts = path.rstrip("/").split("/")
            d = parts[-2] + parts[-1]
            if is_digest(d):
                yield d

    def delete(self, digest: str) -> None:
        path = self.path(check_digest(digest))
        if self.fs.exists(path):
            self.fs.rm_file(path)

    def stale_temp_files(self) -> list[Path]:
        return []  # objects are written in one call: no temp files

    # -- writing -------------------------------------------------------------------------
    def _write(self, digest: str, write: Callable[[str], object]) -> None:
        """Write an object; on filesystems with real folders (``local://``, ``sftp://``...)
        its ``objects/ab/`` folder is made on the first miss (object stores need none)."""
        path = self.path(digest)
        try:
            write(path)
        except FileNotFoundError:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            write(path)

    def store_bytes(self, data: bytes, digest: str, mode: int, label: str) -> None:
        if not self.exists(digest):
            self._write(digest, lambda path: self.fs.pipe_file(path, data))

    def store_file(self, src: Path, st: os.stat_result) -> tuple[str, int]:
        digest = hash_file(src)
        if not self.exists(digest):
            self._write(digest, lambda path: self.fs.put_file(str(src), path))
        return digest, st.st_size

    def store_files(
        self, items: list[tuple[str, str]], stats: list[os.stat_result] | None, workers: int | None
    ) -> list[ManifestEntry]:
        out = []
        for p, rel in items:
            digest, size = self.store_file(Path(p), stat_source(Path(p)))
            out.append(
                ManifestEntry(path=rel, digest=digest, size=size, mode=stat.S_IMODE(os.stat(p).st_mode))
            )
        return out

    def known_entries(
        self, paths: list[str], rels: list[str], stats: list[os.stat_result] | None
    ) -> list[ManifestEntry] | None:
        return None  # no stat cache: every file is read

    def materialize(
        self, digest: str, tmp: Path, dest: Path, mode: int | None, link: bool, flags: int
    ) -> bool:
        data = self.read(digest)
        fd = os.open(tmp, flags, _safe_mode(mode))
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        return False
