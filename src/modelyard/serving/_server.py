"""Running the model server: uvicorn, ``--workers auto`` (cgroup aware), a background handle.

One worker runs the :class:`ModelServer` in this process. Several workers run under uvicorn's
process supervisor; each worker builds its own server from the spec file (``YARD_SERVE_SPEC``),
watches that file, and writes admin swaps back to it so every worker follows; each reports the
spec it applied in a shared state folder (``YARD_SERVE_STATE``, :mod:`._workers`) and
``PUT /admin/spec`` answers once every worker applied the new spec. Prometheus values go to a
shared ``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` merges them.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidArgumentError, invalid_param
from modelyard.serving._types import ASGIApp

__all__ = [
    "ServerHandle",
    "available_cpus",
    "free_port",
    "resolve_workers",
    "run_in_thread",
    "serve",
    "worker_app",
]

_ENV_SPEC = "YARD_SERVE_SPEC"
_ENV_URI = "YARD_SERVE_URI"


def _cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        if text:
            return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        if quota > 0 and period > 0:
            return quota / period
    except (OSError, ValueError):
        pass
    return None


def available_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by the cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpus()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def resolve_workers(workers: int | str) -> int:
    """``"auto"`` → :func:`available_cpus`; a positive integer as is."""
    if isinstance(workers, str):
        if workers.strip().lower() == "auto":
            return available_cpus()
        try:
            workers = int(workers)
        except ValueError:
            raise invalid_param("workers", "yard serve", "'auto' or a positive integer", workers) from None
    if workers < 1:
        raise invalid_param("workers", "yard serve", "'auto' or a positive integer", workers)
    return workers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _uvicorn_options(limits: Any = None) -> dict[str, Any]:
    """uvicorn settings; ``limits`` (a spec's :class:`LimitsSpec`) sets the connection limits."""
    from modelyard.serving._spec import LimitsSpec

    lim = limits or LimitsSpec()
    opts: dict[str, Any] = {
        "log_level": "warning",
        "access_log": False,
        "lifespan": "on",
        "timeout_keep_alive": lim.keepalive_s,
        # uvicorn answers 503 once the open connections, the one asking included, reach its limit:
        # max_connections N admits N connections, so the limit is N + 1
        "limit_concurrency": lim.max_connections + 1,
    }
    try:
        import uvloop  # noqa: F401

        opts["loop"] = "uvloop"
    except ImportError:  # pragma: no cover
        pass
    try:
        from modelyard.serving._protocol import DeadlineHttpToolsProtocol

        opts["http"] = DeadlineHttpToolsProtocol
    except ImportError:  # pragma: no cover - httptools is a dependency
        pass
    return opts


def uvicorn_config(app: ASGIApp | str, limits: Any = None, **kwargs: Any) -> Any:
    """A ``uvicorn.Config`` for ``app`` with the header/body deadlines and connection limits of
    ``limits`` (a spec's :class:`LimitsSpec`; defaults when None)."""
    import uvicorn

    from modelyard.serving._spec import LimitsSpec

    lim = limits or LimitsSpec()
    config = uvicorn.Config(app, **{**_uvicorn_options(lim), **kwargs})
    config.yard_header_timeout_s = lim.header_timeout_s  # type: ignore[attr-defined]  # read by _protocol
    config.yard_body_timeout_s = lim.body_timeout_s  # type: ignore[attr-defined]
    return config


#: Allocations (net of frees) between two young-generation collections while serving. Python's
#: default, 700, collects every ~35 requests of 1 row, and each collection walks the requests in
#: flight and the prediction log's buffered entries again: 7-10 µs of CPU per request measured in
#: process (bench/RESULTS.md, session 7), against under 1.5 µs at 10,000.
GC_YOUNG_THRESHOLD = 10_000


def _freeze_heap() -> None:
    """Move everything loaded so far (libraries, the model) out of the garbage collector's view:
    full collections then scan only request garbage instead of the whole heap (long p99 pauses).
    Only the young generations are collected first: a full collection of the heap costs ~0.1-0.2 s of
    time-to-ready, to free a little garbage of the imports that stays frozen instead. The young
    generation is collected every :data:`GC_YOUNG_THRESHOLD` allocations instead of 700."""
    import gc

    gc.collect(1)
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


@contextlib.contextmanager
def _forked_workers() -> Iterator[None]:
    """uvicorn starts its workers with ``spawn``: each re-imports Python, modelyard and the model's
    libraries (seconds each, all at once). Here they are forked instead: they start with everything
    the parent imported while checking the spec (the libraries of every model, skops' type lists),
    so N workers are ready about as soon as one. Where ``fork`` is missing, spawn stays."""
    import multiprocessing

    try:
        import uvicorn._subprocess as sub
    except ImportError:  # pragma: no cover - uvicorn moved its helper: keep its default
        yield
        return
    spawn = getattr(sub, "spawn", None)
    if spawn is None or "fork" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        yield
        return
    patched: Any = sub  # its "spawn" is a SpawnContext; a ForkContext has the same Process API
    patched.spawn = multiprocessing.get_context("fork")
    try:
        yield
    finally:
        patched.spawn = spawn


def _release_before_fork(uri: str | None) -> None:
    """Close the parent's database connections so no forked worker shares one (each opens its own)."""
    from modelyard._workspace import get_workspace

    with contextlib.suppress(Exception):
        get_workspace(uri).close()


def _multiprocess_metrics() -> None:
    """prometheus-client picks its value class when first imported, and the parent imported it before
    ``PROMETHEUS_MULTIPROC_DIR`` was set: forked workers must write their values to files."""
    from modelyard._prometheus import use_multiprocess_values

    use_multiprocess_values()


def _supervisor(base: Any) -> Any:
    """uvicorn's worker supervisor (``base``: its ``Multiprocess``) that marks every worker that
    stopped dead in the shared metric files: a worker killed (and replaced) or retired cannot do it
    itself, and without it its live gauges (requests in flight, queued rows, an open breaker) stay
    in every ``/metrics`` sum."""
    from modelyard._prometheus import worker_exited

    class Supervisor(base):  # type: ignore[misc]
        def _mark_gone(self, before: set[int | None]) -> None:
            for pid in before - {p.pid for p in self.processes}:
                if pid is not None:
                    worker_exited(pid)

        def keep_subprocess_alive(self) -> None:  # replaces dead or hung workers
            before = {p.pid for p in self.processes}
            super().keep_subprocess_alive()
            self._mark_gone(before)

        def handle_signals(self) -> None:  # SIGHUP restarts every worker, SIGTTOU retires one
            before = {p.pid for p in self.processes}
            super().handle_signals()
            self._mark_gone(before)

    return Supervisor


def worker_app() -> Any:
    """The app factory each worker process calls (``uvicorn --factory``)."""
    from modelyard.serving._app import ModelServer

    spec = os.environ.get(_ENV_SPEC)
    if not spec:
        raise InvalidArgumentError(f"{_ENV_SPEC} is not set; start workers with 'yard serve'.")
    from modelyard.serving._workers import WorkerBoard

    board = WorkerBoard.from_env()
    server = ModelServer(
        spec,
        uri=os.environ.get(_ENV_URI) or None,
        watch=True,
        watch_interval_s=0.05 if board is not None else 1.0,  # a stat per look; reads on change only
        persist_swaps=True,
        board=board,
    ).start()
    _freeze_heap()
    return server


def serve(
    spec: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int | str = 1,
    uri: str | None = None,
    spec_path: str | None = None,
    admin_token: str | None = None,
    on_ready: Any = None,
) -> None:
    """Serve ``spec`` until interrupted (blocking)."""
    import uvicorn

    from modelyard.serving._app import ModelServer
    from modelyard.serving._spec import load_spec

    n = resolve_workers(workers)
    if n == 1:
        server = ModelServer(
            spec_path or spec, uri=uri, admin_token=admin_token, watch=spec_path is not None
        ).start()
        if on_ready:
            on_ready(server, n)
        _freeze_heap()
        limits = server.spec.limits if server.spec else None
        try:
            uvicorn.Server(uvicorn_config(server, limits, host=host, port=port)).run()
        finally:
            server.close()
        return
    # several workers: validate and load once here, so a bad reference fails before forking
    spec_obj = load_spec(spec_path or spec)
    probe = ModelServer(spec_obj, uri=uri, prediction_log=False).start()
    if on_ready:
        on_ready(probe, n)
    probe.close()
    _release_before_fork(uri)
    scratch = Path(tempfile.mkdtemp(prefix="yard-serve-"))
    if spec_path is None:
        spec_path = str(scratch / "spec.yaml")
        Path(spec_path).write_text(spec_obj.to_yaml())
    prom = scratch / "prometheus"
    prom.mkdir()
    os.environ[_ENV_SPEC] = os.path.abspath(spec_path)  # symlinks kept (ConfigMap volumes swap them)
    if uri:
        os.environ[_ENV_URI] = uri
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(prom)
    from modelyard.serving._workers import ENV_STATE, ENV_WORKERS

    os.environ[ENV_STATE] = str(scratch / "state")  # each worker's applied spec (see _workers.py)
    os.environ[ENV_WORKERS] = str(n)
    if admin_token:
        os.environ["YARD_SERVE_ADMIN_TOKEN"] = admin_token
    _multiprocess_metrics()
    try:
        from uvicorn.supervisors import Multiprocess

        config = uvicorn_config(
            "modelyard.serving._server:worker_app",
            spec_obj.limits,
            factory=True,
            host=host,
            port=port,
            workers=n,
        )
        with _forked_workers():
            _supervisor(Multiprocess)(config, sockets=[config.bind_socket()]).run()
    except KeyboardInterrupt:  # pragma: no cover
        pass
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class ServerHandle:
    """A server running in a background thread of this process (tests, the quickstart)."""

    def __init__(self, server: Any, uvicorn_server: Any, thread: threading.Thread, url: str) -> None:
        self.app = server
        self._server = uvicorn_server
        self._thread = thread
        self.url = url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)


def run_in_thread(
    app: ASGIApp,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    timeout: float = 20.0,
    limits: Any = None,
) -> ServerHandle:
    """Start ``app`` under uvicorn in a daemon thread on a loopback port; wait until it listens.

    ``limits`` (a :class:`LimitsSpec`) overrides the connection limits of ``app``'s spec."""
    import uvicorn

    port = port or free_port(host)
    spec = getattr(app, "spec", None)
    server = uvicorn.Server(
        uvicorn_config(
            app, limits if limits is not None else getattr(spec, "limits", None), host=host, port=port
        )
    )
    # uvicorn installs no signal handlers off the main thread (Server.capture_signals)
    thread = threading.Thread(target=server.run, name=f"yard-serve-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise InvalidArgumentError(f"The model server did not start on {host}:{port}.")
        time.sleep(0.02)
    return ServerHandle(app, server, thread, f"http://{host}:{port}")


@contextlib.contextmanager
def running(app: ASGIApp, **kwargs: Any) -> Iterator[ServerHandle]:
    """``with running(app) as h: httpx.get(h.url + "/health/ready")``."""
    handle = run_in_thread(app, **kwargs)
    try:
        yield handle
    finally:
        handle.stop()
