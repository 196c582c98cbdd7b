"""Listing the files of a folder to store: links never lead out of it, and loops are refused.

``walk(root)`` follows a symbolic link only when its target is inside ``root`` (a link to
``/etc`` in a data folder would otherwise store ``/etc/shadow``). Links that lead out are not
followed: the walk refuses the whole folder and names them, so nothing is silently left out. A
link to a folder that contains it (a loop) is refused too. Dangling links are skipped, as before.
Only the standard library is used: ``yard data add``'s fast path imports this module.
"""

from __future__ import annotations

import errno
import os
import stat

from modelyard.errors import InvalidArgumentError

__all__ = ["walk"]

#: How many offending links an error message lists by name.
_SHOWN = 3


def _links(items: list[tuple[str, str]]) -> str:
    shown = ", ".join(f"{rel!r} → {target!r}" for rel, target in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # pragma: no cover - replaced between the scan and the message
        return "?"


def walk(root: str | os.PathLike[str], *, skip_hidden: bool = True) -> list[tuple[str, str, os.stat_result]]:
    """``(path, posix path relative to root, stat)`` of every file below ``root``, sorted by path.

    Names starting with ``.`` are skipped when ``skip_hidden``. Raises
    :class:`~modelyard.errors.InvalidArgumentError` when a symbolic link leads out of ``root``
    or makes a loop.
    """
    top = os.path.abspath(root)
    top_real = os.path.realpath(top)
    base = top_real.rstrip("/") + "/"
    out: list[tuple[str, str, os.stat_result]] = []
    outside: list[tuple[str, str]] = []
    loops: list[tuple[str, str]] = []
    chain: set[str] = {top_real}  # real paths of the folders being scanned (a link to one of them loops)

    def scan(folder: str, prefix: str, real: str) -> None:
        with os.scandir(folder) as it:
            entries = list(it)
        for entry in entries:
            name = entry.name
            if skip_hidden and name.startswith("."):
                continue
            rel = prefix + name
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if target != top_real and not target.startswith(base):
                    outside.append((rel, _readlink(entry.path)))
                    continue
                try:
                    st = os.stat(entry.path)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:  # links that point at each other
                        loops.append((rel, _readlink(entry.path)))
                    continue  # dangling: skipped
                if stat.S_ISDIR(st.st_mode):
                    if target in chain:
                        loops.append((rel, _readlink(entry.path)))
                        continue
                    chain.add(target)
                    scan(entry.path, rel + "/", target)
                    chain.discard(target)
                elif stat.S_ISREG(st.st_mode):
                    out.append((entry.path, rel, st))
            elif entry.is_dir(follow_symlinks=False):
                sub = real.rstrip("/") + "/" + name
                chain.add(sub)
                scan(entry.path, rel + "/", sub)
                chain.discard(sub)
            elif entry.is_file(follow_symlinks=False):
                out.append((entry.path, rel, entry.stat(follow_symlinks=False)))

    scan(top, "", top_real)
    loops.sort()
    outside.sort()
    if loops:
        raise InvalidArgumentError(
            f"Cannot store the folder {str(root)!r}: {len(loops)} symbolic link(s) make a loop "
            f"(they point at a folder that contains them): {_links(loops)}. Remove them and try again."
        )
    if outside:
        raise InvalidArgumentError(
            f"Cannot store the folder {str(root)!r}: {len(outside)} symbolic link(s) lead out of "
            f"it and were refused "
            f"(modelyard never follows a link out of the folder it stores): {_links(outside)}. "
            "Remove them, or copy the files they point at into the folder."
        )
    out.sort(key=lambda t: t[1])
    return out
