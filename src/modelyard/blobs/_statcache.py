"""The stat cache of a local store: ``(path, size, mtime, ctime, inode) → digest`` of files it hashed.

An unchanged file (every one of those equal, as git's index checks) is not read again. A file
modified less than :data:`_RACY_SECONDS` ago is not remembered: its mtime may not change on a
write within the filesystem's timestamp granularity. The cache is an optimization only: any
SQLite error makes it answer "unknown".
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from modelyard.blobs._hashing import is_digest

__all__: list[str] = []

_RACY_SECONDS = 1.0


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What must be unchanged for a file to be trusted unread: size, mtime, ctime and inode (as
    git's index does). A rewrite that restores the mtime still moves the ctime."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def learn(learned: list[tuple[str, os.stat_result, str]], p: str, st: os.stat_result, digest: str) -> None:
    """Remember ``p → digest`` unless the file changed while it was read (then its stat differs)."""
    now = stat_or_none(p)
    if now is not None and stat_key(now) == stat_key(st):
        learned.append((p, st, digest))


class StatCache:
    """``(path, size, mtime_ns, ctime_ns, inode) → digest`` of files a local store has hashed (SQLite)."""

    def __init__(self, path: Path) -> None:
        import sqlite3  # here: the data fast path imports this module

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

    def get(self, path: str | os.PathLike[str], st: os.stat_result) -> str | None:
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
                    q = (
                        f"SELECT path, size, mtime_ns, ctime_ns, ino, digest FROM stat2 WHERE path IN "
                        f"({','.join('?' * len(chunk))})"
                    )
                    for path, size, mtime_ns, ctime_ns, ino, digest in db.execute(q, chunk):
                        orig, st = want[path]
                        if (size, mtime_ns, ctime_ns, ino) == stat_key(st) and is_digest(digest):
                            out[orig] = digest
        except self._sqlite3.Error:  # the cache is an optimization only
            return {}
        return out

    def put(self, rows: list[tuple[Path, os.stat_result, str]]) -> None:
        self.put_str([(os.fspath(p), st, d) for p, st, d in rows])

    def put_str(self, rows: list[tuple[str, os.stat_result, str]]) -> None:
        now = time.time_ns()
        racy = int(_RACY_SECONDS * 1e9)
        data = [
            (
                p if os.path.isabs(p) else os.path.abspath(p),
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                st.st_ino,
                d,
            )
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
