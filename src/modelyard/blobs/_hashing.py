"""blake3 digests: of bytes, of local files (memory-mapped, all cores, when large), and of a copy
being made (one read, one write)."""

from __future__ import annotations

import errno
import os
import re
import threading
from pathlib import Path
from typing import Any

import blake3

from modelyard.errors import InvalidArgumentError

__all__ = ["hash_bytes", "hash_file", "is_digest"]

_CHUNK = 4 * 1024 * 1024
#: Copy buffer for large files (big enough for blake3 to use every core on each update).
_COPY_CHUNK = 16 * 1024 * 1024
#: Files and buffers from this size on are memory-mapped and hashed on all cores.
_MMAP_MIN = 8 * 1024 * 1024
_DIGEST_RE = re.compile("[0-9a-f]{64}")


def is_digest(value: str) -> bool:
    """True when ``value`` looks like a blake3 hex digest."""
    return len(value) == 64 and _DIGEST_RE.fullmatch(value) is not None


def check_digest(digest: str) -> str:
    """``digest`` itself, or InvalidArgumentError when it is not a blake3 hex digest."""
    if not isinstance(digest, str) or not is_digest(digest):
        raise InvalidArgumentError(
            f"{digest!r} is not a blob digest (64 lowercase hex characters of blake3)."
        )
    return digest


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


def kernel_copy_then_hash(fin: int, fout: int, tmp: Path) -> str | None:
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
        if done == 0 and exc.errno in (
            errno.EXDEV,
            errno.ENOSYS,
            errno.EINVAL,
            errno.EOPNOTSUPP,
            errno.EPERM,
        ):
            return None  # e.g. across filesystems on an old kernel: copy through a buffer instead
        raise
    if done == 0 and size > 0:  # pragma: no cover - some filesystems copy nothing instead of failing
        return None
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


def buffer_copy_hashing(fin: Any, fout: int) -> str:
    """Copy an open file into ``fout`` through a buffer, hashing what is written; fsync it."""
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
