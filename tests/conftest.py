"""Shared fixtures: an isolated store per test, and the same tests on SQLite and PostgreSQL.

PostgreSQL tests use the server at ``YARD_TEST_PG`` (default
``postgresql://postgres@127.0.0.1:5432/test``), one fresh schema per test. They are skipped,
with the reason printed, only when no server answers — and fail instead when ``CI`` is set, so
that CI cannot turn green by skipping half the matrix (the same for Prometheus).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

PG_URL = os.environ.get("YARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

_pg_state: dict[str, object] = {}
_background: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Under ``-n``, xdist's ``worksteal`` mode unless ``--dist`` is given (testkit.xdist.dist_mode)."""
    from testkit.xdist import dist_mode

    if hasattr(config.option, "dist"):
        given = [*config.invocation_params.args, *config.getini("addopts")]
        given += os.environ.get("PYTEST_ADDOPTS", "").split()
        config.option.dist = dist_mode(config.option.dist, given)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Heavy modules first (testkit.xdist.heavy_first): with or without xdist, the same order in every
    process (xdist requires the workers' collections to be identical)."""
    from testkit.xdist import heavy_first

    items[:] = heavy_first(items)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start building the Airflow venv now (once: in the xdist controller or the only process) when
    the session includes its test, so that the build overlaps the other tests (testkit.airflow)."""
    config = session.config
    if hasattr(config, "workerinput") or config.option.collectonly:
        return
    from testkit.airflow import BackgroundBuild, session_covers

    args = config.args or [str(Path(config.rootpath) / p) for p in config.getini("testpaths")]
    if session_covers(args, config.invocation_params.dir, config.option.markexpr or ""):
        _background["airflow"] = BackgroundBuild()


def pytest_unconfigure(config: pytest.Config) -> None:
    build = _background.pop("airflow", None)
    if build is not None:
        build.stop()  # type: ignore[attr-defined]


def missing_service(why: str) -> NoReturn:
    """Skip the test because a service it needs is missing; fail it instead under CI (``CI`` set)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(
            f"CI is set, so a missing service fails the run instead of skipping it: {why}", pytrace=False
        )
    pytest.skip(why)


@pytest.fixture
def prometheus_installed() -> None:
    """Prometheus and promtool on PATH (skipped when missing; fails under CI)."""
    for exe in ("prometheus", "promtool"):
        if shutil.which(exe) is None:
            missing_service(f"{exe} is not installed (apt-get install -y prometheus; .ci/run installs it)")


def pg_available() -> bool:
    """True when the test PostgreSQL server answers (checked once per process)."""
    if "ok" not in _pg_state:
        try:
            import psycopg

            with psycopg.connect(
                PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=30
            ) as conn:
                conn.execute("SELECT 1")
            _pg_state["ok"] = True
        except Exception as exc:  # pragma: no cover - depends on the machine
            _pg_state["ok"] = False
            _pg_state["why"] = str(exc)
    return bool(_pg_state["ok"])


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own default store and no leftover active runs."""
    from modelyard import _workspace
    from modelyard.tracking import _run

    monkeypatch.setenv("YARD_URI", str(tmp_path / ".yard"))
    monkeypatch.delenv("YARD_BLOB_URI", raising=False)
    monkeypatch.setenv("YARD_FLUSH_INTERVAL", "0.2")
    _workspace.set_uri(None)
    yield
    for run in list(_run._active):
        try:
            if run.status.value == "running":
                run.end()
        except Exception:
            pass
    _run._active.clear()
    for ws in list(_workspace._cache.values()):
        ws.close()
    _workspace._cache.clear()


def _pg_uri(tmp_path: Path) -> Iterator[str]:
    if not pg_available():
        missing_service(f"PostgreSQL at {PG_URL} did not answer: {_pg_state.get('why')}")
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    uri = f"{PG_URL}{sep}options=-csearch_path%3D{schema}&blob_uri={tmp_path / 'blobs'}"
    try:
        yield uri
    finally:
        from modelyard import _workspace

        for ws in list(_workspace._cache.values()):
            ws.close()
        _workspace._cache.clear()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store URI: once on SQLite (a folder), once on the real PostgreSQL."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
        return
    yield from _pg_uri(tmp_path)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def module_store_uri(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Like ``store_uri`` (SQLite, then PostgreSQL) but shared by the tests of one module: for
    stores that are expensive to fill (registered models). The tests must not depend on each other."""
    tmp = tmp_path_factory.mktemp("module-store")
    if request.param == "sqlite":
        yield str(tmp / "store")
        return
    yield from _pg_uri(tmp)


@pytest.fixture
def pg_uri(tmp_path: Path) -> Iterator[str]:
    """A fresh PostgreSQL store URI (skipped when no server answers)."""
    yield from _pg_uri(tmp_path)


@pytest.fixture
def workspace(store_uri: str):  # type: ignore[no-untyped-def]
    """An opened Workspace over ``store_uri`` (SQLite and PostgreSQL)."""
    import modelyard as yard

    yard.set_uri(store_uri)
    ws = yard.get_workspace(store_uri).open()
    yield ws
    yard.set_uri(None)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres), "server"])
def contract_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The contract suite's store: SQLite, the real PostgreSQL, and a real ``yard server`` on loopback
    HTTP (over its own fresh SQLite store, token auth, the test acting as an admin). The same test
    runs on all three; a feature must not know which backend it is on."""
    if request.param == "sqlite":
        yield str(tmp_path / "store")
        return
    if request.param == "postgresql":
        yield from _pg_uri(tmp_path)
        return
    yield from _server_uri(tmp_path, request)


def _server_uri(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    from modelyard import _workspace
    from modelyard.server import ServerSettings, create_app
    from modelyard.server._users import AuthService
    from yard_server_harness import running_server

    store = tmp_path / "server-store"
    ws = _workspace.Workspace(str(store)).open()
    auth = AuthService(ws)
    auth.add_user("tester", "admin")
    token = auth.create_token("tester", expires=None)["token"]
    app = create_app(ServerSettings(uri=str(store)), workspace=ws)
    mp = pytest.MonkeyPatch()
    mp.setenv("YARD_TOKEN", token)
    try:
        with running_server(app) as url:
            yield url
            for cached in list(_workspace._cache.values()):
                cached.close()
            _workspace._cache.clear()
    finally:
        mp.undo()
        ws.close()


@pytest.fixture
def server_uri(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A real ``yard server`` on loopback (fresh SQLite store; YARD_TOKEN is an admin's token)."""
    yield from _server_uri(tmp_path, request)
