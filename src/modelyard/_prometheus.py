"""Prometheus metrics over several worker processes (prometheus-client's multiprocess mode).

A server started with N workers gives them one folder in ``PROMETHEUS_MULTIPROC_DIR``
(:func:`multiprocess_folder`: a fresh temporary folder per server, removed when it stops); each worker
writes its values to files there and ``/metrics`` merges every worker's (:func:`render`), so one scrape
counts what all workers answered. A worker that stops marks itself dead (:func:`worker_exited`), so
its live gauges drop out of the sums; its counters stay counted. Used by the team server
(``yard server --workers N``) and the model server (``yard serve --workers N``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["multiprocess_dir", "multiprocess_folder", "render", "use_multiprocess_values", "worker_exited"]

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The folder the workers of this server write their values to (None: one process, no files)."""
    return os.environ.get(ENV) or os.environ.get("prometheus_multiproc_dir")


def use_multiprocess_values() -> None:
    """prometheus-client picks its value class when first imported: a process that imported it before
    ``PROMETHEUS_MULTIPROC_DIR`` was set (a worker forked from a parent that had) must switch to
    values kept in files."""
    values: Any = sys.modules.get("prometheus_client.values")
    if values is not None and multiprocess_dir() is not None:
        values.ValueClass = values.MultiProcessValue()


@contextlib.contextmanager
def multiprocess_folder(prefix: str) -> Iterator[Path]:
    """A fresh folder set as ``PROMETHEUS_MULTIPROC_DIR`` for the workers started inside the block;
    removed (and the variable restored) after it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    before = os.environ.get(ENV)
    os.environ[ENV] = str(folder)
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        shutil.rmtree(folder, ignore_errors=True)


def render(registry: Any) -> tuple[bytes, str]:
    """The exposition text of ``registry``, or, in multiprocess mode, of every worker's values merged;
    and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if multiprocess_dir() is None:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    return generate_latest(merged), CONTENT_TYPE_LATEST


def worker_exited(pid: int | None = None) -> None:
    """Mark worker ``pid`` (this process by default) dead: its live gauges leave the merged values."""
    if multiprocess_dir() is None:
        return
    from prometheus_client import multiprocess

    with contextlib.suppress(OSError):
        multiprocess.mark_process_dead(os.getpid() if pid is None else pid)
