"""Fixtures of the tracking tests."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine


@pytest.fixture
def full_disk() -> Iterator[Callable[[Path, int], Callable[[], None]]]:
    """``full_disk(db_file, pages)``: from now on, every new SQLite connection to ``db_file`` reports
    SQLITE_FULL past ``pages`` pages (a full disk; connections already open are not affected, so
    dispose the store's engine first). Returns a function that frees the disk again (for new
    connections); it is freed at the end of the test anyway.

    A listener on SQLAlchemy's public ``connect`` event of every engine: the store's own code runs
    unchanged and meets a real SQLite error."""
    listeners: list[Callable[..., None]] = []

    def free() -> None:
        while listeners:
            fn = listeners.pop()
            if event.contains(Engine, "connect", fn):
                event.remove(Engine, "connect", fn)

    def cap(db_file: Path, pages: int) -> Callable[[], None]:
        target = str(Path(db_file).resolve())

        def on_connect(dbapi_conn: object, _record: object) -> None:
            if not isinstance(dbapi_conn, sqlite3.Connection):
                return
            files = [row[2] for row in dbapi_conn.execute("PRAGMA database_list")]
            if target in files:
                dbapi_conn.execute(f"PRAGMA max_page_count={int(pages)}")

        event.listen(Engine, "connect", on_connect)
        listeners.append(on_connect)
        return free

    yield cap
    free()
