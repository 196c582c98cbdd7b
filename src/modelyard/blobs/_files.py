"""Writing files safely: blob modes, materialized copies (reflinks), destination checks, OS errors.

A materialized file is a copy (a reflink where the filesystem has them), written to a temp file
and renamed into place, so nothing is ever written through a symbolic link already in the
destination. Modes from a manifest lose setuid/setgid/sticky bits and world-write, and a blob or
copy is never more readable than its source.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from modelyard.errors import BlobError

__all__ = ["stat_source"]

#: Copy buffer when the kernel cannot copy (matches the store's copy chunk).
_COPY_CHUNK = 16 * 1024 * 1024

#: Linux ``FICLONE`` ioctl: share the source's extents (copy on write) on btrfs, XFS, bcachefs...
_FICLONE = 0x40049409


def _why(exc: OSError) -> str:
    """An OS error as the words a user acts on ("the disk is full" rather than errno 28)."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full (no space left on device); free some space and try again"
    if exc.errno == errno.EDQUOT:
        return "the disk quota is exceeded; free some space and try again"
    if exc.errno == errno.EROFS:
        return "the filesystem is read-only"
    return exc.strerror or str(exc)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _blob_mode(source_mode: int) -> int:
    """A blob is read-only and never more readable than the file it came from (always by its owner)."""
    return 0o400 | (source_mode & 0o044)


def _safe_mode(mode: int | None, blob_mode: int = 0o444) -> int:
    """The mode a materialized file gets: no setuid/setgid/sticky bit, never world-writable,
    and readable by no one the blob is not readable by (the umask applies on top)."""
    m = (0o644 if mode is None else int(mode)) & 0o775 | 0o400  # the owner can always read (and verify) it
    return m & ~(0o044 & ~blob_mode)


def _clone_or_copy(src: int, dst: int) -> None:
    """Copy an open file into another: a reflink when the filesystem has them (copy on write:
    writing the copy never touches the source), else the kernel's copy, else a buffer copy."""
    try:
        import fcntl

        fcntl.ioctl(dst, _FICLONE, src)
        return
    except (OSError, ImportError):
        pass
    copy = getattr(os, "copy_file_range", None)
    done = 0
    if copy is not None:
        try:
            while n := copy(src, dst, _COPY_CHUNK * 4):
                done += n
            if done or os.fstat(src).st_size == 0:
                return
        except OSError as exc:
            if done or exc.errno not in (
                errno.EXDEV,
                errno.ENOSYS,
                errno.EINVAL,
                errno.EOPNOTSUPP,
                errno.EPERM,
            ):
                raise
    os.lseek(src, 0, os.SEEK_SET)
    os.lseek(dst, 0, os.SEEK_SET)
    os.ftruncate(dst, 0)
    while chunk := os.read(src, _COPY_CHUNK):
        _write_all(dst, chunk)


def _freshen(path: str | os.PathLike[str]) -> bool:
    """Set a reused blob's mtime to now, so ``yard gc`` counts it as just written (as git does
    for objects it finds already stored); False when the blob is gone or cannot be touched."""
    try:
        os.utime(path)
        return True
    except OSError:
        return False


def _check_target(dest: Path) -> None:
    """Refuse to write ``dest`` when it is a symbolic link (never written through) or a folder."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise BlobError(
            f"Refused to write {str(dest)!r}: it is a symbolic link (to {os.readlink(dest)!r}) and "
            f"a download never "
            "writes through a link. Remove the link or choose another destination."
        )
    if stat.S_ISDIR(st.st_mode):
        raise BlobError(
            f"Cannot write {str(dest)!r}: a folder is in the way. Remove it or choose another destination."
        )


def _check_tree_path(dest: Path, parts: tuple[str, ...]) -> None:
    """Refuse a manifest path whose folders below ``dest`` are links or files."""
    for k in range(1, len(parts)):
        p = dest.joinpath(*parts[:k])
        try:
            st = os.lstat(p)
        except FileNotFoundError:
            return  # created fresh below
        if stat.S_ISLNK(st.st_mode):
            raise BlobError(
                f"Refused to write {str(dest.joinpath(*parts))!r}: {str(p)!r} is a symbolic link "
                f"(to {os.readlink(p)!r}) "
                "and a download never writes through a link. Remove the link or choose another destination."
            )
        if not stat.S_ISDIR(st.st_mode):
            raise BlobError(
                f"Cannot write {str(dest.joinpath(*parts))!r}: {str(p)!r} is a file, not a folder."
            )
    _check_target(dest.joinpath(*parts))


def _make_dir(path: Path, made: list[Path], *, root: bool = False) -> None:
    """Create a folder unless it exists, recording what was created in ``made``. Below the
    root a link or a file in the way is refused (the root itself may be a link to a folder)."""
    try:
        st = os.stat(path) if root else os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return
        what = "a symbolic link" if stat.S_ISLNK(st.st_mode) else "a file"
        raise BlobError(f"Cannot write into {str(path)!r}: it is {what}, not a folder.")
    missing = [path]
    while not os.path.lexists(missing[-1].parent) and missing[-1].parent != missing[-1]:
        missing.append(missing[-1].parent)
    for p in reversed(missing):
        try:
            os.mkdir(p)
        except OSError as exc:
            raise BlobError(f"Cannot create the folder {str(p)!r}: {_why(exc)}.") from exc
        made.append(p)


def stat_source(src: Path) -> os.stat_result:
    """The stat of a file about to be stored (BlobError when it is missing, unreadable or a folder)."""
    try:
        st = src.stat()
    except FileNotFoundError as exc:
        raise BlobError(f"Cannot store {str(src)!r}: the file does not exist.") from exc
    except OSError as exc:
        raise BlobError(f"Cannot read {str(src)!r}: {exc.strerror}.") from exc
    if stat.S_ISDIR(st.st_mode):
        raise BlobError(f"Cannot store {str(src)!r} as one blob: it is a folder. Use put_tree().")
    return st
