"""The metadata store: a SQLAlchemy engine, migrations on open, and retrying transactions."""

from __future__ import annotations

import contextlib
import contextvars
import fcntl
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from modelyard._heads import known_heads
from modelyard.config import StoreLocation, redact
from modelyard.errors import ConfigError, SchemaVersionError, StoreError

__all__ = ["MetadataStore", "known_heads", "one_transaction"]

T = TypeVar("T")

_MIGRATIONS = Path(__file__).parent / "migrations"

#: Run inside the next write transaction, before its function, then cleared. The server records an
#: idempotency key this way, atomically with the effect of the call that carries it.
before_write: contextvars.ContextVar[Callable[[Connection], None] | None] = contextvars.ContextVar(
    "yard_before_write", default=None
)

F = TypeVar("F", bound=Callable[..., Any])


def one_transaction(fn: F) -> F:
    """Mark a service operation that returns None and changes the store in at most one
    :meth:`MetadataStore.write` transaction. A server then records a call's Idempotency-Key *with its
    answer* inside that transaction (one write per call instead of a second one to store the answer
    afterwards); a retried call finds the key and gets the answer, and a call that failed left no key."""
    fn.__yard_one_transaction__ = True  # type: ignore[attr-defined]
    return fn


#: SQLite waits this long for a lock before reporting "database is locked" (ms).
SQLITE_BUSY_TIMEOUT_MS = 60_000


def _one_line(exc: BaseException | None) -> str:
    """A driver error as one line without trailing punctuation (drivers emit multi-line text)."""
    return " ".join(str(exc).split()).rstrip(".?! ")


def _is_disk_full(exc: BaseException) -> bool:
    """SQLite's "database or disk is full" (SQLITE_FULL) or an OS error ENOSPC/EDQUOT."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if "disk is full" in str(seen).lower() or getattr(seen, "errno", None) in (
            errno.ENOSPC,
            errno.EDQUOT,
        ):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False


def _is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "database is locked" in text or "database table is locked" in text or "deadlock" in text


class MetadataStore:
    """One connection pool to the metadata database.

    Use :meth:`write` for a transaction that changes rows (retried when SQLite or
    PostgreSQL report a lock or serialization conflict) and :meth:`read` for queries.
    """

    def __init__(self, location: StoreLocation) -> None:
        self.location = location
        self.dialect = location.dialect
        self._engine: Engine | None = None
        self._read_engine: Engine | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MetadataStore({redact(self.location.db_url)!r})"

    # -- engines -------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The engine used for writes (opened and migrated on first use)."""
        if self._engine is None:
            with self._lock:
                if self._engine is None:
                    self._open()
        assert self._engine is not None
        return self._engine

    @property
    def read_engine(self) -> Engine:
        """The engine used for reads (deferred transactions on SQLite)."""
        self.engine  # noqa: B018 - opens and migrates
        assert self._read_engine is not None
        return self._read_engine

    def _make_engine(self, *, immediate: bool) -> Engine:
        loc = self.location
        if loc.dialect == "sqlite":
            engine = sa.create_engine(
                loc.db_url,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                poolclass=sa.pool.QueuePool,
                pool_size=4,
                max_overflow=8,
            )

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.execute("PRAGMA case_sensitive_like=ON")  # `like` matches case as on PostgreSQL
                cur.close()

            begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                conn.exec_driver_sql(begin)

            return engine
        try:
            return sa.create_engine(loc.db_url, pool_pre_ping=True, pool_size=4, max_overflow=8)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"The store URI {redact(loc.uri)!r} needs the PostgreSQL driver. "
                "Install it with: pip install 'modelyard[postgres]'"
            ) from exc

    def _open(self) -> None:
        loc = self.location
        if loc.root is not None:
            try:
                loc.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = (
                    "the disk is full; free some space and try again"
                    if _is_disk_full(exc)
                    else _one_line(exc)
                )
                raise ConfigError(f"Cannot create the store folder {str(loc.root)!r}: {why}.") from exc
        engine = self._make_engine(immediate=True)
        try:
            self._migrate(engine)
        except (SchemaVersionError, ConfigError):
            engine.dispose()
            raise
        except sa.exc.OperationalError as exc:
            engine.dispose()
            if _is_disk_full(exc):
                raise StoreError(
                    f"Cannot open the metadata store {redact(loc.uri)!r}: the disk is full "
                    f"({_one_line(exc.orig)}). "
                    "Free some space and try again."
                ) from exc
            if loc.dialect == "sqlite":
                raise StoreError(
                    f"Cannot open the metadata store {redact(loc.uri)!r}: {_one_line(exc.orig)}. "
                    "Check that the folder exists, is writable, and the disk has space."
                ) from exc
            raise StoreError(
                f"Cannot open the metadata store {redact(loc.uri)!r}: {_one_line(exc.orig)}. "
                "Check that the database server runs and the URI is right."
            ) from exc
        except sa.exc.DatabaseError as exc:
            engine.dispose()
            raise StoreError(
                f"The file behind the store {redact(loc.uri)!r} is not a modelyard database "
                f"({_one_line(exc.orig)}). "
                "Point YARD_URI at another folder or move the file away."
            ) from exc
        self._engine = engine
        self._read_engine = self._make_engine(immediate=False) if loc.dialect == "sqlite" else engine

    # -- migrations ----------------------------------------------------------------------
    def _current_revisions(self, engine: Engine) -> set[str]:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return set()
            return {r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")}

    def _migrate(self, engine: Engine) -> None:
        heads = known_heads()
        current = self._current_revisions(engine)
        if current == heads:
            return
        with self._migration_lock(engine):
            current = self._current_revisions(engine)
            if current == heads:
                return
            from alembic import command
            from alembic.config import Config
            from alembic.script import ScriptDirectory

            cfg = Config()
            cfg.set_main_option("script_location", str(_MIGRATIONS))
            script = ScriptDirectory.from_config(cfg)
            unknown = {rev for rev in current if not self._is_known_revision(script, rev)}
            if unknown:
                raise SchemaVersionError(
                    f"The store {redact(self.location.uri)!r} was written by a newer modelyard "
                    f"(schema revisions {sorted(unknown)}). Upgrade modelyard: pip install -U modelyard"
                )
            with engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "heads")

    @staticmethod
    def _is_known_revision(script: object, rev: str) -> bool:
        from alembic.util import CommandError

        try:
            return script.get_revision(rev) is not None  # type: ignore[attr-defined]
        except CommandError:  # alembic raises for a revision it has no file for
            return False

    @contextlib.contextmanager
    def _migration_lock(self, engine: Engine) -> Iterator[None]:
        """Serialize migrations across processes: a file lock for SQLite, an advisory lock for PostgreSQL."""
        if self.location.dialect == "sqlite":
            db_file = Path(engine.url.database or "")
            lock_path = db_file.with_name(db_file.name + ".migrate.lock")
            fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
        else:
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_advisory_lock(727274)")
                conn.commit()
                try:
                    yield
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
                    conn.commit()

    # -- transactions --------------------------------------------------------------------
    def write(self, fn: Callable[[Connection], T], *, attempts: int = 20) -> T:
        """Run ``fn(conn)`` in one write transaction, retrying on lock conflicts."""
        delay = 0.01
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    hook = before_write.get()
                    if hook is not None:
                        hook(conn)
                    result = fn(conn)
                if hook is not None:
                    before_write.set(None)  # once per call: the first transaction carries it
                return result
            except sa.exc.OperationalError as exc:
                if _is_disk_full(exc):
                    raise StoreError(
                        f"The metadata store could not write: the disk is full ({_one_line(exc.orig)}). "
                        "Free some space and try again; nothing was recorded."
                    ) from exc
                if not _is_locked(exc) or attempt == attempts - 1:
                    raise StoreError(f"The metadata store failed: {_one_line(exc.orig)}.") from exc
            except sa.exc.DBAPIError as exc:
                # PostgreSQL serialization failures and deadlocks are retryable.
                code = getattr(exc.orig, "sqlstate", None)
                if code not in ("40001", "40P01") or attempt == attempts - 1:
                    raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 1.0)
        raise StoreError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for queries; the transaction is rolled back at the end."""
        with self.read_engine.connect() as conn:
            yield conn

    def refresh_statistics(self, *, force: bool = False) -> list[str]:
        """Refresh PostgreSQL's planner statistics of the tables changed much since their last
        ``ANALYZE`` (autovacuum's own rule: more than 10 % of the rows + 1,000); return their names.

        Autovacuum does this by itself a minute or so after a bulk load, when it is on; until then (or
        for good when it is off) the planner knows nothing of the new rows and may pick a plan that
        reads every run. ``yard server`` calls this when it starts and ``yard gc`` when it runs. One
        process at a time (an advisory lock; the others skip). Nothing to do on SQLite, whose searches
        are written not to need statistics."""
        if self.dialect != "postgresql":
            return []
        stale = sa.text(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() AND "
            "(:force OR n_mod_since_analyze > 1000 + 0.1 * n_live_tup) ORDER BY relname"
        )
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT")
            if not conn.exec_driver_sql("SELECT pg_try_advisory_lock(727275)").scalar():
                return []
            try:
                names = [r[0] for r in conn.execute(stale, {"force": force})]
                for name in names:
                    conn.exec_driver_sql(f'ANALYZE "{name}"')  # names from the catalog, quoted
                return names
            finally:
                conn.exec_driver_sql("SELECT pg_advisory_unlock(727275)")

    def dispose(self) -> None:
        """Close every pooled connection (the store reopens on next use)."""
        if self._engine is not None:
            self._engine.dispose()
        if self._read_engine is not None and self._read_engine is not self._engine:
            self._read_engine.dispose()
        self._engine = self._read_engine = None
