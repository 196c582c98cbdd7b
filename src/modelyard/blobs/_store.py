"""Content-addressed blob store: blake3 digests, atomic writes, verified reads.

Layout under the store's root (a local folder or any fsspec URL)::

    objects/ab/cdef0123...   one file per blob, named by its blake3 hex digest
    tmp/                     writes in progress (never visible as blobs)

A write goes to ``tmp/``, is fsynced and renamed into ``objects/`` so a crash never leaves a
partial blob under a digest. Identical bytes are stored once. Every read re-hashes the bytes and
raises :class:`~modelyard.errors.IntegrityError` when they do not match their name.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import stat
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import blake3

from modelyard._version import __version__
from modelyard.blobs._files import (
    _blob_mode,
    _check_target,
    _check_tree_path,
    _clone_or_copy,
    _freshen,
    _make_dir,
    _safe_mode,
    _why,
    _write_all,
)
from modelyard.config import redact
from modelyard.errors import BlobError, BlobNotFoundError, IntegrityError, InvalidArgumentError

__all__ = [
    "BlobStore",
    "ManifestEntry",
    "hash_bytes",
    "hash_file",
    "is_digest",
    "manifest_bytes",
    "manifest_digest",
]

_CHUNK = 4 * 1024 * 1024
#: Files up to this size are read into memory, hashed and written in one go.
_SMALL = 1024 * 1024
#: Copy buffer for large files (big enough for blake3 to use every core on each update).
_COPY_CHUNK = 16 * 1024 * 1024
#: A file modified less than this many seconds ago is not remembered in the stat cache (its
#: mtime may not change on a write within the filesystem's timestamp granularity).
_RACY_SECONDS = 1.0
_MMAP_MIN = 8 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")
_DIGEST_RE = re.compile("[0-9a-f]{64}")


def is_digest(value: str) -> bool:
    """True when ``value`` looks like a blake3 hex digest."""
    return len(value) == 64 and _DIGEST_RE.fullmatch(value) is not None


def hash_bytes(data: bytes | memoryview) -> str:
    """blake3 hex digest of a bytes object (large ones are hashed on all cores)."""
    if len(data) >= _MMAP_MIN:
        return blake3.blake3(data, max_threads=blake3.blake3.AUTO).hexdigest()
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


def _syncfs(folder: str, paths: list[str] | None) -> bool:
    """Flush the whole filesystem holding ``folder`` (Linux ``syncfs``): True when done.

    Otherwise each of ``paths`` is fsynced (when given) and False is returned.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(folder, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return True
        finally:
            os.close(fd)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    for p in paths or []:  # pragma: no cover - fallback
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return False


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _glob_prefix(folder: str, prefix: str) -> list[str]:
    name = os.path.basename(prefix)
    try:
        return [f"{folder}/{n}" for n in os.listdir(folder) if n.startswith(name)]
    except OSError:  # pragma: no cover
        return []


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What must be unchanged for a file to be trusted unread: size, mtime, ctime and inode (as
    git's index does). A rewrite that restores the mtime still moves the ctime."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class _StatCache:
    """``(path, size, mtime_ns, ctime_ns, inode) → digest`` of files a local store has hashed (SQLite)."""

    def __init__(self, path: Path) -> None:
        import sqlite3
        import threading

        self.path = path
        self._lock = threading.Lock()
        self._conn: Any = None
        self._sqlite3 = sqlite3

    def _db(self) -> Any:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._sqlite3.connect(self.path, timeout=30, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("DROP TABLE IF EXISTS stat")  # the first layout had no ctime: it cannot tell
            conn.execute(
                "CREATE TABLE IF NOT EXISTS stat2 (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
                "ctime_ns INTEGER, ino INTEGER, digest TEXT)"
            )
            self._conn = conn
        return self._conn

    def get(self, path: Path, st: os.stat_result) -> str | None:
        return self.get_many_str([(os.fspath(path), st)]).get(os.fspath(path))

    def get_many_str(self, items: list[tuple[str, os.stat_result]]) -> dict[str, str]:
        """Digests of the files whose size, mtime, ctime and inode match what was recorded."""
        abspath = os.path.abspath
        want = {(p if p[:1] == "/" else abspath(p)): (p, st) for p, st in items}
        out: dict[str, str] = {}
        try:
            with self._lock:
                db = self._db()
                keys = list(want)
                for i in range(0, len(keys), 500):
                    chunk = keys[i : i + 500]
                    q = f"SELECT path, size, mtime_ns, ctime_ns, ino, digest FROM stat2 WHERE path IN ({','.join('?' * len(chunk))})"
                    for path, size, mtime_ns, ctime_ns, ino, digest in db.execute(q, chunk):
                        orig, st = want[path]
                        if (size, mtime_ns, ctime_ns, ino) == _stat_key(st) and is_digest(digest):
                            out[orig] = digest
        except self._sqlite3.Error:  # the cache is an optimization only
            return {}
        return out

    def put(self, rows: list[tuple[Path, os.stat_result, str]]) -> None:
        self.put_str([(os.fspath(p), st, d) for p, st, d in rows])

    def put_str(self, rows: list[tuple[str, os.stat_result, str]]) -> None:
        import time

        now = time.time_ns()
        racy = int(_RACY_SECONDS * 1e9)
        data = [
            (p if os.path.isabs(p) else os.path.abspath(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, d)
            for p, st, d in rows
            if now - st.st_mtime_ns > racy
        ]
        if not data:
            return
        try:
            with self._lock:
                db = self._db()
                db.execute("BEGIN")
                db.executemany("INSERT OR REPLACE INTO stat2 VALUES (?, ?, ?, ?, ?, ?)", data)
                db.execute("COMMIT")
        except self._sqlite3.Error:  # pragma: no cover
            pass


class BlobStore:
    """Content-addressed storage of immutable bytes.

    ``BlobStore("./.yard/blobs")`` uses a local folder; ``BlobStore("s3://bucket/yard")`` (or any
    fsspec URL, ``memory://`` in tests) uses that filesystem.
    """

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self.uri = os.fspath(uri)
        self._local: Path | None = None
        self._cache: _StatCache | None = None
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
        if self._local is not None:
            if not self._reuse(digest):
                self._write_new(data, digest, 0o444, "the bytes")
        elif not self.exists(digest):
            self._fs.pipe_file(self._remote(self._obj(digest)), data)
        return digest

    def _reuse(self, digest: str) -> bool:
        """True when a local blob is already stored; its mtime is set to now (see :func:`_freshen`)."""
        return _freshen(self.local_path(digest))

    def _write_new(self, data: bytes, digest: str, mode: int, label: str) -> None:
        """Write bytes to a temp file (fsynced), then publish them as a blob with ``mode``."""
        tmp: Path | None = None
        try:
            tmp = self._tmp_file()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._publish(tmp, digest, mode)
        except BaseException as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot store {label}: {_why(exc)}.") from exc
            raise

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's bytes; return ``(digest, size)``. The source file is left untouched.

        A local store remembers ``(path, size, mtime, inode) → digest`` of files it stored, so an
        unchanged file is not hashed again. New bytes are hashed while they are copied (one read,
        one write); what lands in the store is exactly what was hashed.
        """
        src = Path(path)
        st = self._stat_source(src)
        cache = self._stat_cache()
        if cache is not None:
            known = cache.get(src, st)
            if known is not None and self._reuse(known):
                return known, st.st_size
        if self._local is None:
            digest = hash_file(src)
            if not self.exists(digest):
                self._fs.put_file(str(src), self._remote(self._obj(digest)))
            return digest, st.st_size
        if st.st_size <= _SMALL:
            data = self._read_source(src)
            digest = hash_bytes(data)
            if not self._reuse(digest):
                self._write_new(data, digest, _blob_mode(st.st_mode), repr(str(src)))
            size = len(data)
        else:
            digest = self._copy_hashing(src, _blob_mode(st.st_mode))
            size = self.local_path(digest).stat().st_size  # what was copied (the file may have grown since the stat)
        if cache is not None:
            learned: list[tuple[str, os.stat_result, str]] = []
            self._learn(learned, os.fspath(src), st, digest)  # not if the file changed while it was read
            cache.put_str(learned)
        return digest, size

    def _stat_source(self, src: Path) -> os.stat_result:
        try:
            st = src.stat()
        except FileNotFoundError as exc:
            raise BlobError(f"Cannot store {str(src)!r}: the file does not exist.") from exc
        except OSError as exc:
            raise BlobError(f"Cannot read {str(src)!r}: {exc.strerror}.") from exc
        if stat.S_ISDIR(st.st_mode):
            raise BlobError(f"Cannot store {str(src)!r} as one blob: it is a folder. Use put_tree().")
        return st

    def _read_source(self, src: Path) -> bytes:
        try:
            return src.read_bytes()
        except OSError as exc:
            raise BlobError(f"Cannot read {str(src)!r}: {exc.strerror}.") from exc

    def _copy_hashing(self, src: Path, mode: int = 0o444) -> str:
        """Copy ``src`` into a temp file, hash the copy; publish it; return the digest.

        The copy runs in the kernel (``copy_file_range``: no pass through Python buffers), the
        digest is taken of the *copy* (memory-mapped, blake3 on all cores), so what lands in the
        store is exactly what was hashed even if ``src`` changes meanwhile, and the ``fsync`` of
        the copy runs on a second thread while it is hashed. Where the kernel copy is not
        available the bytes are hashed while they are copied through a buffer (one read, one write).
        """
        tmp = self._tmp_file()
        try:
            with open(src, "rb", buffering=0) as fin:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # not readable by others while copied
                try:
                    digest = self._kernel_copy_then_hash(fin.fileno(), fd, tmp)
                    if digest is None:
                        digest = self._buffer_copy_hashing(fin, fd)
                finally:
                    os.close(fd)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot store {str(src)!r}: {_why(exc)}.") from exc
            raise
        if self._reuse(digest):
            tmp.unlink(missing_ok=True)
        else:
            try:
                self._publish(tmp, digest, mode)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise BlobError(f"Cannot store {str(src)!r}: {_why(exc)}.") from exc
        return digest

    @staticmethod
    def _kernel_copy_then_hash(fin: int, fout: int, tmp: Path) -> str | None:
        """``copy_file_range`` the whole file, then hash the copy while fsyncing it (None: unsupported here)."""
        copy = getattr(os, "copy_file_range", None)
        if copy is None:  # pragma: no cover - not Linux
            return None
        size = os.fstat(fin).st_size
        done = 0
        try:
            while True:
                n = copy(fin, fout, _COPY_CHUNK * 4)
                if n == 0:
                    break
                done += n
        except OSError as exc:
            if done == 0 and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EPERM):
                return None  # e.g. across filesystems on an old kernel: copy through a buffer instead
            raise
        if done == 0 and size > 0:  # pragma: no cover - some filesystems copy nothing instead of failing
            return None
        import threading

        failure: list[BaseException] = []

        def sync() -> None:
            try:
                os.fsync(fout)
            except BaseException as exc:  # pragma: no cover - reported below
                failure.append(exc)

        syncer = threading.Thread(target=sync, name="yard-fsync")
        syncer.start()
        try:
            h = blake3.blake3(max_threads=blake3.blake3.AUTO)
            if done:
                h.update_mmap(os.fspath(tmp))
            digest = h.hexdigest()
        finally:
            syncer.join()
        if failure:
            raise failure[0]
        return digest

    @staticmethod
    def _buffer_copy_hashing(fin: Any, fout: int) -> str:
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        fin.seek(0)
        os.lseek(fout, 0, os.SEEK_SET)
        os.ftruncate(fout, 0)
        buf = bytearray(_COPY_CHUNK)
        view = memoryview(buf)
        while n := fin.readinto(buf):
            chunk = view[:n]
            h.update(chunk)
            written = 0
            while written < n:
                written += os.write(fout, chunk[written:])
        os.fsync(fout)
        return h.hexdigest()

    def _stat_cache(self) -> _StatCache | None:
        if self._local is None or os.environ.get("YARD_NO_STAT_CACHE"):
            return None
        if self._cache is None:
            self._cache = _StatCache(self._local / "cache" / "stat.db")
        return self._cache

    def _tmp_file(self) -> Path:
        assert self._local is not None
        tmp_dir = self._local / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tmp_dir / f"{uuid.uuid4().hex}.part"

    def _publish(self, tmp: Path, digest: str, mode: int = 0o444) -> None:
        final = self.local_path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, mode)
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
        """Write a blob to ``dest``, verified; return ``dest``.

        The file is a copy (a reflink where the filesystem has them: copy on write, so editing
        the file never changes the stored blob). ``link=True`` hard-links the blob instead where
        possible: instant and free of space, but the file *is* the stored blob, so editing it in
        place corrupts the stored version (its read-only mode does not stop root). ``dest`` must
        not be a symbolic link or a folder. ``mode`` (e.g. from a manifest) is applied without
        setuid/setgid bits or world-write, and no wider than the blob's read bits.
        """
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobError(f"Cannot write {str(dest)!r}: {_why(exc)}.") from exc
        _check_target(dest)
        self._materialize(digest, dest, mode, link)
        return dest

    def _materialize(self, digest: str, dest: Path, mode: int | None, link: bool) -> None:
        """Write a verified blob to a temp file beside ``dest`` and rename it over ``dest``
        (the rename replaces whatever is there; nothing is ever written through a link)."""
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            if self._local is not None:
                src = self.local_path(digest)
                try:
                    sfd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
                except FileNotFoundError as exc:
                    raise self._missing(digest) from exc
                try:
                    if link and self._link(src, digest, tmp, dest):
                        return
                    fd = os.open(tmp, flags, _safe_mode(mode, stat.S_IMODE(os.fstat(sfd).st_mode)))
                    try:
                        _clone_or_copy(sfd, fd)
                    finally:
                        os.close(fd)
                finally:
                    os.close(sfd)
                if hash_file(tmp) != digest:  # verify what was written, not only the source
                    raise self._corrupt(digest)
            else:
                data = self.read_bytes(digest)
                fd = os.open(tmp, flags, _safe_mode(mode))
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
            os.replace(tmp, dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, IsADirectoryError):
                raise BlobError(f"Cannot write {str(dest)!r}: a folder is in the way. Remove it or choose another destination.") from exc
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot write {str(dest)!r}: {_why(exc)}.") from exc
            raise

    def _link(self, src: Path, digest: str, tmp: Path, dest: Path) -> bool:
        """Hard-link a verified blob to ``dest`` (False when the filesystem cannot: copy instead)."""
        if hash_file(src) != digest:
            raise self._corrupt(digest)
        try:
            os.link(src, tmp)
        except OSError:
            return False
        os.replace(tmp, dest)
        return True

    # -- folders (manifests) -------------------------------------------------------------
    def put_manifest(self, entries: Iterable[ManifestEntry], **meta: Any) -> str:
        """Store a manifest (path → digest, size, mode) as a blob; return its digest."""
        return self.put_bytes(manifest_bytes(entries, **meta))

    def read_manifest(self, digest: str) -> list[ManifestEntry]:
        """Read and verify a manifest blob."""
        try:
            doc = json.loads(self.read_bytes(digest))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BlobError(f"Blob {digest[:12]}… is not a manifest.") from exc
        if not isinstance(doc, dict) or doc.get("type") != "modelyard.manifest" or not isinstance(doc.get("entries"), list):
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

    def manifest_meta(self, digest: str) -> dict[str, Any]:
        """The extra metadata stored with a manifest (empty when none)."""
        doc = json.loads(self.read_bytes(digest))
        return dict(doc.get("meta") or {})

    def put_tree(self, folder: str | os.PathLike[str], *, workers: int | None = None, **meta: Any) -> tuple[str, int]:
        """Store every file below ``folder`` and a manifest of them; return ``(manifest digest, total size)``."""
        from modelyard.blobs._walk import walk

        root = Path(folder)
        if not root.is_dir():
            raise BlobError(f"Cannot store {str(root)!r} as a folder: it is not a directory.")
        walked = walk(root, skip_hidden=False)  # never follows a link out of the folder
        entries = self.put_files([(p, rel) for p, rel, _ in walked], workers=workers, stats=[st for _, _, st in walked])
        return self.put_manifest(entries, **meta), sum(e.size for e in entries)

    def known_entries(
        self,
        files: list[str | os.PathLike[str]],
        rels: list[str],
        stats: list[os.stat_result] | None = None,
    ) -> list[ManifestEntry] | None:
        """Manifest entries of files this local store has stored unchanged (same size, mtime and
        inode, blob present), read from the stat cache without reading a byte; None when any
        file is new, changed, or the store is not local."""
        cache = self._stat_cache()
        if cache is None or not files:
            return None
        paths = [os.fspath(p) for p in files]
        if stats is None:
            try:
                stats = [os.stat(p) for p in paths]
            except OSError:
                return None
        known = cache.get_many_str(list(zip(paths, stats, strict=True)))
        if len(known) != len(paths):
            return None
        assert self._local is not None
        objects = os.fspath(self._local / "objects")
        exists = os.path.exists
        out = []
        for p, rel, st in zip(paths, rels, stats, strict=True):
            if stat.S_ISDIR(st.st_mode):
                return None
            digest = known[p]
            if not exists(f"{objects}/{digest[:2]}/{digest[2:]}"):
                return None
            out.append(ManifestEntry(rel, digest, st.st_size, stat.S_IMODE(st.st_mode)))
        return out

    def put_files(
        self,
        files: Iterable[tuple[str | os.PathLike[str], str]],
        *,
        workers: int | None = None,
        stats: list[os.stat_result] | None = None,
    ) -> list[ManifestEntry]:
        """Store many ``(local path, path in the manifest)`` files in parallel; return their entries.

        On a local store small new files are written without a per-file fsync; one ``syncfs``
        makes them durable before any of them is renamed into place (a crash leaves only temp
        files). ``stats`` (one per file, e.g. from ``os.scandir``) saves a ``stat`` call per file.
        """
        items = [(os.fspath(p), rel) for p, rel in files]
        if self._local is None or len(items) <= 16:
            out = []
            for p, rel in items:
                digest, size = self.put_file(p)
                out.append(ManifestEntry(path=rel, digest=digest, size=size, mode=stat.S_IMODE(os.stat(p).st_mode)))
            return out
        if stats is None:
            stats = [self._stat_source(Path(p)) for p, _ in items]
        cache = self._stat_cache()
        known = cache.get_many_str([(p, st) for (p, _), st in zip(items, stats, strict=True)]) if cache is not None else {}
        objects = os.fspath(self._local / "objects")
        entries: list[ManifestEntry | None] = [None] * len(items)
        learned: list[tuple[str, os.stat_result, str]] = []
        small: list[int] = []
        for i, (p, rel) in enumerate(items):
            st = stats[i]
            digest = known.get(p)
            if digest is not None and _freshen(f"{objects}/{digest[:2]}/{digest[2:]}"):
                entries[i] = ManifestEntry(rel, digest, st.st_size, stat.S_IMODE(st.st_mode))
            elif st.st_size > _SMALL:  # large: kernel copy, hashed on all cores, one at a time
                digest = self._copy_hashing(Path(p), _blob_mode(st.st_mode))
                self._learn(learned, p, st, digest)
                size = self.local_path(digest).stat().st_size  # what was copied
                entries[i] = ManifestEntry(rel, digest, size, stat.S_IMODE(st.st_mode))
            else:
                small.append(i)
        if small:
            self._put_small(items, stats, small, entries, learned, workers)
        if cache is not None and learned:
            cache.put_str(learned)
        return entries  # type: ignore[return-value]

    @staticmethod
    def _learn(learned: list[tuple[str, os.stat_result, str]], p: str, st: os.stat_result, digest: str) -> None:
        """Remember ``p → digest`` unless the file changed while it was read (then its stat differs)."""
        try:
            now = os.stat(p)
        except OSError:
            return
        if _stat_key(now) == _stat_key(st):
            learned.append((p, st, digest))

    def _put_small(
        self,
        items: list[tuple[str, str]],
        stats: list[os.stat_result],
        todo: list[int],
        entries: list[ManifestEntry | None],
        learned: list[tuple[str, os.stat_result, str]],
        workers: int | None,
    ) -> None:
        """Small new files: read, hash and write each to a temp file (no per-file fsync); one
        ``syncfs``; rename them all into ``objects/``; one more ``syncfs`` for the renames.
        A crash before the renames leaves only temp files, never a partial blob."""
        assert self._local is not None
        objects = os.fspath(self._local / "objects")
        tmp_dir = os.fspath(self._local / "tmp")
        os.makedirs(tmp_dir, exist_ok=True)
        prefix = f"{tmp_dir}/{uuid.uuid4().hex}-"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        pending: list[tuple[str, str]] = []
        hasher = blake3.blake3

        def run(chunk: list[int]) -> tuple[list[tuple[str, str]], list[tuple[str, os.stat_result, str]]]:
            made: list[tuple[str, str]] = []
            seen: list[tuple[str, os.stat_result, str]] = []
            for i in chunk:
                p, rel = items[i]
                st = stats[i]
                try:
                    with open(p, "rb", buffering=0) as f:
                        data = f.read()
                except OSError as exc:
                    raise BlobError(f"Cannot read {p!r}: {exc.strerror}.") from exc
                digest = hasher(data).hexdigest()
                if not _freshen(f"{objects}/{digest[:2]}/{digest[2:]}"):  # reused blobs look new to `yard gc`
                    tmp = f"{prefix}{i}.part"
                    try:
                        # born read-only and no more readable than the source: no chmod before publishing
                        fd = os.open(tmp, flags, _blob_mode(st.st_mode))
                        try:
                            _write_all(fd, data)
                        finally:
                            os.close(fd)
                    except OSError as exc:
                        raise BlobError(f"Cannot store {p!r}: {_why(exc)}.") from exc
                    made.append((tmp, digest))
                seen.append((p, st, digest))
                entries[i] = ManifestEntry(rel, digest, len(data), stat.S_IMODE(st.st_mode))
            return made, seen

        n_threads = workers or min(2, os.cpu_count() or 1)
        try:
            if n_threads <= 1 or len(todo) < 256:
                parts = [run(todo)]
            else:
                # a few contiguous slices, one per thread (per-file futures cost more than the I/O they overlap)
                size = -(-len(todo) // n_threads)
                with ThreadPoolExecutor(max_workers=n_threads, thread_name_prefix="yard-ingest") as pool:
                    futures = [pool.submit(run, todo[k : k + size]) for k in range(0, len(todo), size)]
                    parts = []
                    error: BaseException | None = None
                    for fut in futures:
                        try:
                            parts.append(fut.result())
                        except BaseException as exc:  # keep collecting so every temp file is cleaned up
                            error = error or exc
                    if error is not None:
                        raise error
            for made, seen in parts:
                pending.extend(made)
                for p, st, digest in seen:
                    if not (now := _stat_or_none(p)) or _stat_key(now) != _stat_key(st):
                        continue  # changed while it was read: do not remember it
                    learned.append((p, st, digest))
            if pending:
                _syncfs(tmp_dir, [t for t, _ in pending])
                made_dirs: set[str] = set()
                published: set[str] = set()
                for tmp, digest in pending:
                    if digest in published:  # the same bytes twice in this batch
                        os.unlink(tmp)
                        continue
                    sub = f"{objects}/{digest[:2]}"
                    if sub not in made_dirs:
                        os.makedirs(sub, exist_ok=True)
                        made_dirs.add(sub)
                    os.replace(tmp, f"{sub}/{digest[2:]}")
                    published.add(digest)
                if not _syncfs(objects, None):  # pragma: no cover - not Linux
                    for d in made_dirs:
                        _fsync_dir(Path(d))
        except BaseException as exc:
            for tmp in _glob_prefix(tmp_dir, prefix):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot store the files: {_why(exc)}.") from exc
            raise

    def get_tree(self, digest: str, dest: str | os.PathLike[str], *, link: bool = False) -> Path:
        """Materialize a manifest's files under ``dest`` (verified copies; see :meth:`get_file`).

        Every path is checked before anything is written: none may leave ``dest``, pass through
        a symbolic link already in ``dest``, or land on a folder. On any failure the files and
        folders this call created are removed again.
        """
        dest = Path(dest)
        plan: list[tuple[ManifestEntry, tuple[str, ...]]] = []
        for e in self.read_manifest(digest):
            rel = PurePosixPath(e.path)
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise IntegrityError(f"Manifest {digest[:12]}… has an unsafe path {e.path!r}.")
            plan.append((e, rel.parts))
        if os.path.lexists(dest) and not dest.is_dir():
            raise BlobError(f"Cannot write the files into {str(dest)!r}: it is a file. Give a folder.")
        for _, parts in plan:
            _check_tree_path(dest, parts)
        made_files: list[Path] = []
        made_dirs: list[Path] = []
        try:
            _make_dir(dest, made_dirs, root=True)
            for e, parts in plan:
                for k in range(1, len(parts)):
                    _make_dir(dest.joinpath(*parts[:k]), made_dirs)
                target = dest.joinpath(*parts)
                existed = os.path.lexists(target)
                _check_target(target)
                self._materialize(e.digest, target, e.mode, link)
                if not existed:
                    made_files.append(target)
        except BaseException:
            for f in reversed(made_files):
                with contextlib.suppress(OSError):
                    f.unlink()
            for d in reversed(made_dirs):
                with contextlib.suppress(OSError):
                    d.rmdir()
            raise
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

