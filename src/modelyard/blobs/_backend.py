"""Where blob bytes live: the :class:`Backend` protocol and :class:`LocalBackend` (a local folder).

:class:`~modelyard.blobs.BlobStore` hashes, names and verifies; a backend keeps the bytes of
``objects/ab/cdef…`` and answers for them. The local backend has the fast paths: the kernel copy
hashed memory-mapped on all cores, reflinks and hard links, batched small files with one
``syncfs``, and the stat cache. :class:`~modelyard.blobs._fsspec.FsspecBackend` serves any fsspec URL.

Local layout::

    objects/ab/cdef0123...   one file per blob, named by its blake3 hex digest (read-only)
    tmp/                     writes in progress (never visible as blobs)
    cache/stat.db            the stat cache

A write goes to ``tmp/``, is fsynced and renamed into ``objects/`` so a crash never leaves a
partial blob under a digest. A blob found already stored gets its mtime set to now, so
``yard gc`` (which spares young blobs) counts it as just written.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import blake3

from modelyard.blobs._files import (
    _blob_mode,
    _clone_or_copy,
    _freshen,
    _safe_mode,
    _why,
    _write_all,
    stat_source,
)
from modelyard.blobs._hashing import (
    buffer_copy_hashing,
    check_digest,
    hash_bytes,
    hash_file,
    is_digest,
    kernel_copy_then_hash,
)
from modelyard.blobs._manifest import ManifestEntry
from modelyard.blobs._statcache import StatCache, learn, stat_key, stat_or_none
from modelyard.errors import BlobError, BlobNotFoundError, IntegrityError

__all__ = ["Backend", "LocalBackend"]

#: Files up to this size are read into memory, hashed and written in one go.
_SMALL = 1024 * 1024


def missing_error(where: str, digest: str) -> BlobNotFoundError:
    return BlobNotFoundError(
        f"Blob {digest[:12]}… is missing from {where}. It was deleted or never uploaded; "
        "run `yard doctor` to list every missing blob."
    )


def corrupt_error(where: str, digest: str) -> IntegrityError:
    return IntegrityError(
        f"Blob {digest[:12]}… in {where} does not match its digest: it was corrupted or tampered with. "
        "Restore it from a backup or re-log the artifact; `yard doctor` lists every damaged blob."
    )


def verified(where: str, digest: str, data: bytes) -> bytes:
    """``data`` read as blob ``digest`` from ``where``, refused when it does not hash to ``digest``."""
    if hash_bytes(data) != digest:
        raise corrupt_error(where, digest)
    return data


def object_name(digest: str) -> str:
    return f"objects/{digest[:2]}/{digest[2:]}"


class Backend(Protocol):
    """The byte-level operations of a blob store. Digests given are checked by the caller or here;
    ``where`` (the store's name) appears in the missing/corrupt errors a backend raises."""

    where: str
    #: The local folder holding the blobs (hard links and memory maps possible), else None.
    root: Path | None

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int:
        """Stored size; BlobNotFoundError when missing."""
        ...

    def mtime(self, digest: str) -> float:
        """Modification time (epoch seconds); FileNotFoundError when missing."""
        ...

    def read(self, digest: str) -> bytes:
        """The bytes, verified against ``digest`` (BlobNotFoundError / IntegrityError)."""
        ...

    def hash_stored(self, digest: str) -> str:
        """The digest of the stored bytes (FileNotFoundError or BlobNotFoundError when missing)."""
        ...

    def store_bytes(self, data: bytes, digest: str, mode: int, label: str) -> None:
        """Store ``data`` (whose digest is ``digest``) unless it is stored; ``label`` names it in errors."""
        ...

    def store_file(self, src: Path, st: os.stat_result) -> tuple[str, int]:
        """Store a local file (``st`` its stat); return ``(digest, size stored)``."""
        ...

    def store_files(
        self, items: list[tuple[str, str]], stats: list[os.stat_result] | None, workers: int | None
    ) -> list[ManifestEntry]:
        """Store many ``(local path, manifest path)`` files; return their entries in order."""
        ...

    def known_entries(
        self, paths: list[str], rels: list[str], stats: list[os.stat_result] | None
    ) -> list[ManifestEntry] | None:
        """Entries of files stored unchanged, without reading them; None when unknown."""
        ...

    def materialize(
        self, digest: str, tmp: Path, dest: Path, mode: int | None, link: bool, flags: int
    ) -> bool:
        """Write the verified blob into the new file ``tmp`` (opened with ``flags``; True: it was
        instead hard-linked straight to ``dest``, nothing left to rename)."""
        ...

    def iter_digests(self) -> Iterator[str]: ...

    def delete(self, digest: str) -> None: ...

    def stale_temp_files(self) -> list[Path]: ...


def fsync_dir(path: str | os.PathLike[str]) -> None:
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


def syncfs(folder: str, paths: list[str] | None) -> bool:
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


def _glob_prefix(folder: str, prefix: str) -> list[str]:
    name = os.path.basename(prefix)
    try:
        return [f"{folder}/{n}" for n in os.listdir(folder) if n.startswith(name)]
    except OSError:  # pragma: no cover
        return []


class LocalBackend:
    """Blobs in a local folder (see the module docstring for the layout and the fast paths)."""

    def __init__(self, root: Path, where: str) -> None:
        self.root: Path | None = root
        self.folder = root
        self.where = where
        self._cache: StatCache | None = None

    # -- paths ---------------------------------------------------------------------------
    def path(self, digest: str) -> Path:
        return self.folder / object_name(check_digest(digest))

    def tmp_file(self) -> Path:
        tmp_dir = self.folder / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        return tmp_dir / f"{uuid.uuid4().hex}.part"

    def publish(self, tmp: Path, digest: str, mode: int = 0o444) -> None:
        """Rename a finished temp file into ``objects/`` as the blob ``digest`` (read-only)."""
        final = self.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, mode)
        os.replace(tmp, final)
        fsync_dir(final.parent)

    def stat_cache(self) -> StatCache | None:
        if os.environ.get("YARD_NO_STAT_CACHE"):
            return None
        if self._cache is None:
            self._cache = StatCache(self.folder / "cache" / "stat.db")
        return self._cache

    # -- reading -------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError as exc:
            raise missing_error(self.where, digest) from exc

    def mtime(self, digest: str) -> float:
        return self.path(digest).stat().st_mtime

    def read(self, digest: str) -> bytes:
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise missing_error(self.where, digest) from exc
        return verified(self.where, digest, data)

    def hash_stored(self, digest: str) -> str:
        return hash_file(self.path(digest))

    def iter_digests(self) -> Iterator[str]:
        objects = self.folder / "objects"
        if not objects.exists():
            return
        for sub in sorted(objects.iterdir()):
            if sub.is_dir() and len(sub.name) == 2:
                for f in sorted(sub.iterdir()):
                    d = sub.name + f.name
                    if is_digest(d):
                        yield d

    def delete(self, digest: str) -> None:
        p = self.path(digest)
        try:
            os.chmod(p, 0o644)
            p.unlink()
        except FileNotFoundError:
            pass

    def stale_temp_files(self) -> list[Path]:
        if not (self.folder / "tmp").exists():
            return []
        return sorted((self.folder / "tmp").iterdir())

    # -- writing -------------------------------------------------------------------------
    def _reuse(self, digest: str) -> bool:
        """True when the blob is already stored; its mtime is set to now (see :func:`_freshen`)."""
        return _freshen(self.path(digest))

    def store_bytes(self, data: bytes, digest: str, mode: int, label: str) -> None:
        if self._reuse(digest):
            return
        tmp: Path | None = None
        try:
            tmp = self.tmp_file()
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self.publish(tmp, digest, mode)
        except BaseException as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot store {label}: {_why(exc)}.") from exc
            raise

    def store_file(self, src: Path, st: os.stat_result) -> tuple[str, int]:
        """Unchanged files are answered by the stat cache; new bytes are hashed while they are
        copied (one read, one write): what lands in the store is exactly what was hashed."""
        cache = self.stat_cache()
        if cache is not None:
            known = cache.get(src, st)
            if known is not None and self._reuse(known):
                return known, st.st_size
        if st.st_size <= _SMALL:
            try:
                data = src.read_bytes()
            except OSError as exc:
                raise BlobError(f"Cannot read {str(src)!r}: {exc.strerror}.") from exc
            digest = hash_bytes(data)
            self.store_bytes(data, digest, _blob_mode(st.st_mode), repr(str(src)))
            size = len(data)
        else:
            digest = self._copy_hashing(src, _blob_mode(st.st_mode))
            size = (
                self.path(digest).stat().st_size
            )  # what was copied (the file may have grown since the stat)
        if cache is not None:
            learned: list[tuple[str, os.stat_result, str]] = []
            learn(learned, os.fspath(src), st, digest)  # not if the file changed while it was read
            cache.put_str(learned)
        return digest, size

    def _copy_hashing(self, src: Path, mode: int = 0o444) -> str:
        """Copy ``src`` into a temp file, hash the copy; publish it; return the digest.

        The copy runs in the kernel (``copy_file_range``: no pass through Python buffers), the
        digest is taken of the *copy* (memory-mapped, blake3 on all cores), so what lands in the
        store is exactly what was hashed even if ``src`` changes meanwhile, and the ``fsync`` of
        the copy runs on a second thread while it is hashed. Where the kernel copy is not
        available the bytes are hashed while they are copied through a buffer (one read, one write).
        """
        tmp = self.tmp_file()
        try:
            with open(src, "rb", buffering=0) as fin:
                fd = os.open(
                    tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600
                )  # not readable by others while copied
                try:
                    digest = kernel_copy_then_hash(fin.fileno(), fd, tmp)
                    if digest is None:
                        digest = buffer_copy_hashing(fin, fd)
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
                self.publish(tmp, digest, mode)
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                raise BlobError(f"Cannot store {str(src)!r}: {_why(exc)}.") from exc
        return digest

    def known_entries(
        self, paths: list[str], rels: list[str], stats: list[os.stat_result] | None
    ) -> list[ManifestEntry] | None:
        cache = self.stat_cache()
        if cache is None or not paths:
            return None
        if stats is None:
            try:
                stats = [os.stat(p) for p in paths]
            except OSError:
                return None
        known = cache.get_many_str(list(zip(paths, stats, strict=True)))
        if len(known) != len(paths):
            return None
        objects = os.fspath(self.folder / "objects")
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

    def store_files(
        self, items: list[tuple[str, str]], stats: list[os.stat_result] | None, workers: int | None
    ) -> list[ManifestEntry]:
        """Small new files are written without a per-file fsync; one ``syncfs`` makes them
        durable before any of them is renamed into place (a crash leaves only temp files)."""
        if stats is None:
            stats = [stat_source(Path(p)) for p, _ in items]
        cache = self.stat_cache()
        known = (
            cache.get_many_str([(p, st) for (p, _), st in zip(items, stats, strict=True)])
            if cache is not None
            else {}
        )
        objects = os.fspath(self.folder / "objects")
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
                learn(learned, p, st, digest)
                size = self.path(digest).stat().st_size  # what was copied
                entries[i] = ManifestEntry(rel, digest, size, stat.S_IMODE(st.st_mode))
            else:
                small.append(i)
        if small:
            self._put_small(items, stats, small, entries, learned, workers)
        if cache is not None and learned:
            cache.put_str(learned)
        return entries  # type: ignore[return-value]

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
        objects = os.fspath(self.folder / "objects")
        tmp_dir = os.fspath(self.folder / "tmp")
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
                # a few contiguous slices, one per thread (per-file futures cost more than the I/O they
                # overlap)
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
                    if not (now := stat_or_none(p)) or stat_key(now) != stat_key(st):
                        continue  # changed while it was read: do not remember it
                    learned.append((p, st, digest))
            if pending:
                syncfs(tmp_dir, [t for t, _ in pending])
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
                if not syncfs(objects, None):  # pragma: no cover - not Linux
                    for d in made_dirs:
                        fsync_dir(d)
        except BaseException as exc:
            for tmp in _glob_prefix(tmp_dir, prefix):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot store the files: {_why(exc)}.") from exc
            raise

    # -- materializing -------------------------------------------------------------------
    def materialize(
        self, digest: str, tmp: Path, dest: Path, mode: int | None, link: bool, flags: int
    ) -> bool:
        """A reflink/kernel copy of the blob, verified after it is written (or a hard link)."""
        src = self.path(digest)
        try:
            sfd = os.open(src, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError as exc:
            raise missing_error(self.where, digest) from exc
        try:
            if link and self._link(src, digest, tmp, dest):
                return True
            fd = os.open(tmp, flags, _safe_mode(mode, stat.S_IMODE(os.fstat(sfd).st_mode)))
            try:
                _clone_or_copy(sfd, fd)
            finally:
                os.close(fd)
        finally:
            os.close(sfd)
        if hash_file(tmp) != digest:  # verify what was written, not only the source
            raise corrupt_error(self.where, digest)
        return False

    def _link(self, src: Path, digest: str, tmp: Path, dest: Path) -> bool:
        """Hard-link a verified blob to ``dest`` (False when the filesystem cannot: copy instead)."""
        if hash_file(src) != digest:
            raise corrupt_error(self.where, digest)
        try:
            os.link(src, tmp)
        except OSError:
            return False
        os.replace(tmp, dest)
        return True
