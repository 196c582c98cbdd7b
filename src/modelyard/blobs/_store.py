"""Content-addressed blob store: blake3 digests, atomic writes, verified reads.

Layout under the store's root (a local folder or any fsspec URL)::

    objects/ab/cdef0123...   one file per blob, named by its blake3 hex digest
    tmp/                     writes in progress (never visible as blobs)

A write goes to ``tmp/``, is fsynced and renamed into ``objects/`` so a crash never leaves a
partial blob under a digest. Identical bytes are stored once. Every read re-hashes the bytes and
raises :class:`~modelyard.errors.IntegrityError` when they do not match their name.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import blake3

from modelyard._version import __version__
from modelyard.config import redact
from modelyard.errors import BlobError, BlobNotFoundError, IntegrityError, InvalidArgumentError

__all__ = [
    "BlobStore",
    "ManifestEntry",
    "hash_bytes",
    "hash_file",
    "is_digest",
]

_CHUNK = 4 * 1024 * 1024
_MMAP_MIN = 8 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")


def is_digest(value: str) -> bool:
    """True when ``value`` looks like a blake3 hex digest."""
    return len(value) == 64 and set(value) <= _HEX


def hash_bytes(data: bytes | memoryview) -> str:
    """blake3 hex digest of a bytes object."""
    return blake3.blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> str:
    """blake3 hex digest of a local file; large files are memory-mapped and hashed on all cores."""
    size = os.path.getsize(path)
    if size >= _MMAP_MIN:
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        h.update_mmap(os.fspath(path))
        return h.hexdigest()
    h = blake3.blake3()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a folder stored as a manifest."""

    path: str
    digest: str
    size: int
    mode: int = 0o644


def _check_digest(digest: str) -> str:
    if not isinstance(digest, str) or not is_digest(digest):
        raise InvalidArgumentError(f"{digest!r} is not a blob digest (64 lowercase hex characters of blake3).")
    return digest


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class BlobStore:
    """Content-addressed storage of immutable bytes.

    ``BlobStore("./.yard/blobs")`` uses a local folder; ``BlobStore("s3://bucket/yard")`` (or any
    fsspec URL, ``memory://`` in tests) uses that filesystem.
    """

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self.uri = os.fspath(uri)
        self._local: Path | None = None
        self._fs: Any = None
        self._root = ""
        if "://" not in self.uri or self.uri.startswith("file://"):
            path = self.uri[len("file://") :] if self.uri.startswith("file://") else self.uri
            self._local = Path(path).expanduser().resolve()
        else:
            import fsspec

            self._fs, self._root = fsspec.core.url_to_fs(self.uri)
            self._root = self._root.rstrip("/")

    def __repr__(self) -> str:
        return f"BlobStore({redact(self.uri)!r})"

    @property
    def is_local(self) -> bool:
        """True when blobs live in a local folder (hard links and memory maps are possible)."""
        return self._local is not None

    # -- paths ---------------------------------------------------------------------------
    def _obj(self, digest: str) -> str:
        return f"objects/{digest[:2]}/{digest[2:]}"

    def local_path(self, digest: str) -> Path:
        """Path of a blob in a local store (it may not exist)."""
        if self._local is None:
            raise BlobError(f"{self!r} is not a local folder; read blobs with open() or get_file().")
        return self._local / self._obj(_check_digest(digest))

    def _remote(self, rel: str) -> str:
        return f"{self._root}/{rel}" if self._root else rel

    # -- writing -------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their digest."""
        digest = hash_bytes(data)
        if self.exists(digest):
            return digest
        if self._local is not None:
            tmp = self._tmp_file()
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self._publish(tmp, digest)
        else:
            self._fs.pipe_file(self._remote(self._obj(digest)), data)
        return digest

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's bytes; return ``(digest, size)``. The source file is left untouched."""
        src = Path(path)
        try:
            size = src.stat().st_size
            digest = hash_file(src)
        except FileNotFoundError as exc:
            raise BlobError(f"Cannot store {str(src)!r}: the file does not exist.") from exc
        except IsADirectoryError as exc:
            raise BlobError(f"Cannot store {str(src)!r} as one blob: it is a folder. Use put_tree().") from exc
        except OSError as exc:
            raise BlobError(f"Cannot read {str(src)!r}: {exc.strerror}.") from exc
        if self.exists(digest):
            return digest, size
        if self._local is not None:
            tmp = self._tmp_file()
            try:
                shutil.copyfile(src, tmp)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                # The source may have changed between hashing and copying: hash what we hold.
                copied = hash_file(tmp)
                if copied != digest:
                    raise BlobError(f"{str(src)!r} changed while it was being stored; try again.")
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            self._publish(tmp, digest)
        else:
            self._fs.put_file(str(src), self._remote(self._obj(digest)))
        return digest, size

    def _tmp_file(self) -> Path:
        assert self._local is not None
        tmp_dir = self._local / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tmp_dir / f"{uuid.uuid4().hex}.part"

    def _publish(self, tmp: Path, digest: str) -> None:
        final = self.local_path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    # -- reading -------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        """True when a blob with this digest is stored."""
        if self._local is not None:
            return self.local_path(digest).exists()
        return bool(self._fs.exists(self._remote(self._obj(_check_digest(digest)))))

    def size(self, digest: str) -> int:
        """Size in bytes of a stored blob."""
        try:
            if self._local is not None:
                return self.local_path(digest).stat().st_size
            return int(self._fs.size(self._remote(self._obj(_check_digest(digest)))))
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc

    def _missing(self, digest: str) -> BlobNotFoundError:
        return BlobNotFoundError(
            f"Blob {digest[:12]}… is missing from {self!r}. It was deleted or never uploaded; "
            "run `yard doctor` to list every missing blob."
        )

    def read_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes after checking them against the digest."""
        _check_digest(digest)
        try:
            if self._local is not None:
                data = self.local_path(digest).read_bytes()
            else:
                data = self._fs.cat_file(self._remote(self._obj(digest)))
        except FileNotFoundError as exc:
            raise self._missing(digest) from exc
        if hash_bytes(data) != digest:
            raise self._corrupt(digest)
        return data

    def _corrupt(self, digest: str) -> IntegrityError:
        return IntegrityError(
            f"Blob {digest[:12]}… in {self!r} does not match its digest: it was corrupted or tampered with. "
            "Restore it from a backup or re-log the artifact; `yard doctor` lists every damaged blob."
        )

    def verify(self, digest: str) -> bool:
        """True when the blob exists and its bytes hash to its digest."""
        try:
            if self._local is not None:
                return hash_file(self.local_path(digest)) == digest
            return hash_bytes(self._fs.cat_file(self._remote(self._obj(digest)))) == digest
        except (FileNotFoundError, BlobNotFoundError):
            return False

    def open(self, digest: str) -> io.BytesIO:
        """A verified in-memory file object with the blob's bytes."""
        return io.BytesIO(self.read_bytes(digest))

    def get_file(self, digest: str, dest: str | os.PathLike[str], *, mode: int | None = None, link: bool = False) -> Path:
        """Write a blob to ``dest`` after verifying it; ``link=True`` hard-links when possible."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if self._local is not None:
            src = self.local_path(digest)
            if not src.exists():
                raise self._missing(digest)
            if hash_file(src) != digest:
                raise self._corrupt(digest)
            if link:
                try:
                    if dest.exists():
                        dest.unlink()
                    os.link(src, dest)
                    return dest
                except OSError:
                    pass
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
            shutil.copyfile(src, tmp)
            os.chmod(tmp, mode if mode is not None else 0o644)
            os.replace(tmp, dest)
            return dest
        data = self.read_bytes(digest)
        dest.write_bytes(data)
        if mode is not None:
            os.chmod(dest, mode)
        return dest

    # -- folders (manifests) -------------------------------------------------------------
    def put_manifest(self, entries: Iterable[ManifestEntry], **meta: Any) -> str:
        """Store a manifest (path → digest, size, mode) as a blob; return its digest."""
        items = sorted(entries, key=lambda e: e.path)
        doc = {
            "type": "modelyard.manifest",
            "modelyard_version": __version__,
            "entries": [{"path": e.path, "digest": e.digest, "size": e.size, "mode": e.mode} for e in items],
        }
        if meta:
            doc["meta"] = meta
        return self.put_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())

    def read_manifest(self, digest: str) -> list[ManifestEntry]:
        """Read and verify a manifest blob."""
        try:
            doc = json.loads(self.read_bytes(digest))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BlobError(f"Blob {digest[:12]}… is not a manifest.") from exc
        if not isinstance(doc, dict) or doc.get("type") != "modelyard.manifest":
            raise BlobError(f"Blob {digest[:12]}… is not a manifest.")
        return [ManifestEntry(**e) for e in doc["entries"]]

    def manifest_meta(self, digest: str) -> dict[str, Any]:
        """The extra metadata stored with a manifest (empty when none)."""
        doc = json.loads(self.read_bytes(digest))
        return dict(doc.get("meta") or {})

    def put_tree(self, folder: str | os.PathLike[str], *, workers: int | None = None, **meta: Any) -> tuple[str, int]:
        """Store every file below ``folder`` and a manifest of them; return ``(manifest digest, total size)``."""
        root = Path(folder)
        if not root.is_dir():
            raise BlobError(f"Cannot store {str(root)!r} as a folder: it is not a directory.")
        files = sorted(p for p in root.rglob("*") if p.is_file())
        entries = self.put_files([(p, PurePosixPath(p.relative_to(root)).as_posix()) for p in files], workers=workers)
        return self.put_manifest(entries, **meta), sum(e.size for e in entries)

    def put_files(
        self, files: Iterable[tuple[str | os.PathLike[str], str]], *, workers: int | None = None
    ) -> list[ManifestEntry]:
        """Store many ``(local path, path in the manifest)`` files in parallel; return their entries."""
        items = list(files)

        def one(item: tuple[str | os.PathLike[str], str]) -> ManifestEntry:
            p, rel = item
            digest, size = self.put_file(p)
            return ManifestEntry(path=rel, digest=digest, size=size, mode=stat.S_IMODE(os.stat(p).st_mode))

        if len(items) > 16:
            with ThreadPoolExecutor(max_workers=workers or min(16, (os.cpu_count() or 2) * 4)) as pool:
                return list(pool.map(one, items))
        return [one(i) for i in items]

    def get_tree(self, digest: str, dest: str | os.PathLike[str], *, link: bool = False) -> Path:
        """Materialize a manifest's files under ``dest`` (verified; hard links with ``link=True``)."""
        dest = Path(dest)
        for e in self.read_manifest(digest):
            rel = PurePosixPath(e.path)
            if rel.is_absolute() or ".." in rel.parts:
                raise IntegrityError(f"Manifest {digest[:12]}… has an unsafe path {e.path!r}.")
            self.get_file(e.digest, dest / rel, mode=e.mode, link=link)
        return dest

    # -- maintenance ---------------------------------------------------------------------
    def iter_digests(self) -> Iterator[str]:
        """Every stored digest."""
        if self._local is not None:
            objects = self._local / "objects"
            if not objects.exists():
                return
            for sub in sorted(objects.iterdir()):
                if sub.is_dir() and len(sub.name) == 2:
                    for f in sorted(sub.iterdir()):
                        d = sub.name + f.name
                        if is_digest(d):
                            yield d
        else:
            base = self._remote("objects")
            if not self._fs.exists(base):
                return
            for path in sorted(self._fs.find(base)):
                parts = path.rstrip("/").split("/")
                d = parts[-2] + parts[-1]
                if is_digest(d):
                    yield d

    def delete(self, digest: str) -> None:
        """Remove a blob (used by garbage collection only)."""
        if self._local is not None:
            p = self.local_path(digest)
            try:
                os.chmod(p, 0o644)
                p.unlink()
            except FileNotFoundError:
                pass
        else:
            path = self._remote(self._obj(_check_digest(digest)))
            if self._fs.exists(path):
                self._fs.rm_file(path)

    def stale_temp_files(self) -> list[Path]:
        """Unfinished writes left by crashed processes (never visible as blobs)."""
        if self._local is None or not (self._local / "tmp").exists():
            return []
        return sorted((self._local / "tmp").iterdir())

    def mtime(self, digest: str) -> float:
        """Modification time of a blob (seconds since the epoch)."""
        if self._local is not None:
            return self.local_path(digest).stat().st_mtime
        info = self._fs.info(self._remote(self._obj(_check_digest(digest))))
        m = info.get("mtime") or info.get("LastModified") or info.get("created") or 0
        return m.timestamp() if hasattr(m, "timestamp") else float(m)

