"""Content-addressed blob store: blake3 digests, atomic writes, verified reads, manifests.

``BlobStore`` names bytes by their blake3 digest, stores identical bytes once, and re-hashes
every read: bytes that do not match their name raise :class:`~modelyard.errors.IntegrityError`.
Where the bytes live is its :class:`~modelyard.blobs._backend.Backend`: a local folder
(:class:`~modelyard.blobs._backend.LocalBackend`, the fast paths) or any fsspec URL
(:class:`~modelyard.blobs._fsspec.FsspecBackend`). Hashing is in ``_hashing``, manifests in
``_manifest``, the stat cache in ``_statcache``, safe file writing in ``_files``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from modelyard.blobs._backend import Backend, LocalBackend, corrupt_error, missing_error
from modelyard.blobs._files import _check_target, _check_tree_path, _make_dir, _why, stat_source
from modelyard.blobs._hashing import check_digest, hash_bytes, hash_file, is_digest
from modelyard.blobs._manifest import ManifestEntry, manifest_bytes, manifest_digest, parse_manifest
from modelyard.blobs._statcache import StatCache
from modelyard.config import redact
from modelyard.errors import BlobError, BlobNotFoundError, IntegrityError

__all__ = [
    "BlobStore",
    "ManifestEntry",
    "hash_bytes",
    "hash_file",
    "is_digest",
    "manifest_bytes",
    "manifest_digest",
]


class BlobStore:
    """Content-addressed storage of immutable bytes.

    ``BlobStore("./.yard/blobs")`` uses a local folder; ``BlobStore("s3://bucket/yard")`` (or any
    fsspec URL, ``memory://`` in tests) uses that filesystem.
    """

    def __init__(self, uri: str | os.PathLike[str], *, backend: Backend | None = None) -> None:
        self.uri = os.fspath(uri)
        self._local: Path | None = None
        self.backend: Backend
        if backend is not None:  # a modelyard server's blobs (blobs/_http.py)
            self.backend = backend
        elif "://" not in self.uri or self.uri.startswith("file://"):
            path = self.uri[len("file://") :] if self.uri.startswith("file://") else self.uri
            self._local = Path(path).expanduser().resolve()
            self.backend = LocalBackend(self._local, repr(self))
        else:
            from modelyard.blobs._fsspec import FsspecBackend

            self.backend = FsspecBackend.from_url(self.uri, repr(self))

    def __repr__(self) -> str:
        return f"BlobStore({redact(self.uri)!r})"

    @property
    def is_local(self) -> bool:
        """True when blobs live in a local folder (hard links and memory maps are possible)."""
        return self._local is not None

    def _local_backend(self) -> LocalBackend:
        if not isinstance(self.backend, LocalBackend):
            raise BlobError(f"{self!r} is not a local folder; read blobs with open() or get_file().")
        return self.backend

    def local_path(self, digest: str) -> Path:
        """Path of a blob in a local store (it may not exist)."""
        return self._local_backend().path(digest)

    # used by pipelines/_serializers.py to publish a finished local file without a copy
    def _tmp_file(self) -> Path:
        return self._local_backend().tmp_file()

    def _publish(self, tmp: Path, digest: str, mode: int = 0o444) -> None:
        self._local_backend().publish(tmp, digest, mode)

    def _stat_cache(self) -> StatCache | None:
        return self.backend.stat_cache() if isinstance(self.backend, LocalBackend) else None

    def _missing(self, digest: str) -> BlobNotFoundError:
        return missing_error(repr(self), digest)

    def _corrupt(self, digest: str) -> IntegrityError:
        return corrupt_error(repr(self), digest)

    # -- writing -------------------------------------------------------------------------
    def put_bytes(self, data: bytes) -> str:
        """Store bytes; return their digest."""
        digest = hash_bytes(data)
        self.backend.store_bytes(data, digest, 0o444, "the bytes")
        return digest

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's bytes; return ``(digest, size)``. The source file is left untouched.

        A local store remembers ``(path, size, mtime, inode) → digest`` of files it stored, so an
        unchanged file is not hashed again. New bytes are hashed while they are copied (one read,
        one write); what lands in the store is exactly what was hashed.
        """
        src = Path(path)
        return self.backend.store_file(src, stat_source(src))

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
        if len(items) <= 16:
            out = []
            for p, rel in items:
                digest, size = self.put_file(p)
                out.append(
                    ManifestEntry(path=rel, digest=digest, size=size, mode=stat.S_IMODE(os.stat(p).st_mode))
                )
            return out
        return self.backend.store_files(items, stats, workers)

    def known_entries(
        self,
        files: Sequence[str | os.PathLike[str]],
        rels: list[str],
        stats: list[os.stat_result] | None = None,
    ) -> list[ManifestEntry] | None:
        """Manifest entries of files this local store has stored unchanged (same size, mtime and
        inode, blob present), read from the stat cache without reading a byte; None when any
        file is new, changed, or the store is not local."""
        return self.backend.known_entries([os.fspath(p) for p in files], rels, stats)

    # -- reading -------------------------------------------------------------------------
    def exists(self, digest: str) -> bool:
        """True when a blob with this digest is stored."""
        return self.backend.exists(digest)

    def size(self, digest: str) -> int:
        """Size in bytes of a stored blob."""
        return self.backend.size(digest)

    def read_bytes(self, digest: str) -> bytes:
        """Return a blob's bytes after checking them against the digest."""
        return self.backend.read(check_digest(digest))

    def verify(self, digest: str) -> bool:
        """True when the blob exists and its bytes hash to its digest."""
        try:
            return self.backend.hash_stored(digest) == digest
        except (FileNotFoundError, BlobNotFoundError):
            return False

    def open(self, digest: str) -> io.BytesIO:
        """A verified in-memory file object with the blob's bytes."""
        return io.BytesIO(self.read_bytes(digest))

    def get_file(
        self, digest: str, dest: str | os.PathLike[str], *, mode: int | None = None, link: bool = False
    ) -> Path:
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
        flags = (
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        )
        try:
            if not self.backend.materialize(check_digest(digest), tmp, dest, mode, link, flags):
                os.replace(tmp, dest)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, IsADirectoryError):
                raise BlobError(
                    f"Cannot write {str(dest)!r}: a folder is in the way. Remove it or choose "
                    f"another destination."
                ) from exc
            if isinstance(exc, OSError):
                raise BlobError(f"Cannot write {str(dest)!r}: {_why(exc)}.") from exc
            raise

    # -- folders (manifests) -------------------------------------------------------------
    def put_manifest(self, entries: Iterable[ManifestEntry], **meta: Any) -> str:
        """Store a manifest (path → digest, size, mode) as a blob; return its digest."""
        return self.put_bytes(manifest_bytes(entries, **meta))

    def read_manifest(self, digest: str) -> list[ManifestEntry]:
        """Read and verify a manifest blob."""
        return parse_manifest(self.read_bytes(digest), digest)

    def manifest_children(self, digest: str) -> list[str]:
        """The digests a manifest blob lists (what ``yard gc`` keeps alive with it).

        Raises BlobNotFoundError when the blob is missing, IntegrityError when it does not match
        its digest or has a malformed entry, and BlobError when it cannot be read or is not a manifest.
        """
        try:
            entries = self.read_manifest(digest)
        except OSError as exc:
            raise BlobError(f"Cannot read blob {digest[:12]}… in {self!r}: {_why(exc)}.") from exc
        return [e.digest for e in entries]

    def manifest_meta(self, digest: str) -> dict[str, Any]:
        """The extra metadata stored with a manifest (empty when none)."""
        doc = json.loads(self.read_bytes(digest))
        return dict(doc.get("meta") or {})

    def put_tree(
        self, folder: str | os.PathLike[str], *, workers: int | None = None, **meta: Any
    ) -> tuple[str, int]:
        """Store every file below ``folder`` and a manifest of them; return ``(manifest digest, total
        size)``."""
        from modelyard.blobs._walk import walk

        root = Path(folder)
        if not root.is_dir():
            raise BlobError(f"Cannot store {str(root)!r} as a folder: it is not a directory.")
        walked = walk(root, skip_hidden=False)  # never follows a link out of the folder
        entries = self.put_files(
            [(p, rel) for p, rel, _ in walked], workers=workers, stats=[st for _, _, st in walked]
        )
        return self.put_manifest(entries, **meta), sum(e.size for e in entries)

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
        return self.backend.iter_digests()

    def delete(self, digest: str) -> None:
        """Remove a blob (used by garbage collection only)."""
        self.backend.delete(digest)

    def stale_temp_files(self) -> list[Path]:
        """Unfinished writes left by crashed processes (never visible as blobs)."""
        return self.backend.stale_temp_files()

    def mtime(self, digest: str) -> float:
        """Modification time of a blob (seconds since the epoch)."""
        return self.backend.mtime(digest)
