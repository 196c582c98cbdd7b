"""The active run handle: buffered metric logging, params, tags, artifacts, lifecycle.

Metric points are appended to an in-memory buffer and written in batches by one background
flusher thread per process: every ``YARD_FLUSH_INTERVAL`` seconds (default 1.0), when a
buffer passes ``FLUSH_AT`` points, on :meth:`Run.flush`, when the run ends and at interpreter
exit. A training loop never waits on the database. What ``kill -9`` can lose is bounded by
one flush interval: the points logged since the last flush.

The same thread stamps every live run's heartbeat every ``YARD_HEARTBEAT_INTERVAL`` seconds, so a
run whose process was killed reads as ``lost`` instead of ``running`` forever (``_heartbeat``).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from modelyard import _hooks
from modelyard._rpc import idempotency_key
from modelyard._shared import now_ms
from modelyard.errors import ConflictError, ModelyardError, ServerError, UsageError, invalid_param
from modelyard.tracking import _heartbeat
from modelyard.tracking._records import ArtifactRecord, RunRecord, RunStatus
from modelyard.tracking._service import MetricRow, TrackingService, format_exception

if TYPE_CHECKING:
    from modelyard._workspace import Workspace
from modelyard.tracking._validation import check_key, to_float

__all__ = ["Run", "flush_all"]

log = logging.getLogger("modelyard.tracking")

#: A buffer holding this many points wakes the flusher early; one write sends at most this many.
FLUSH_AT = 50_000


def _buffer_limit() -> int:
    """Most points a run keeps while its store does not answer (``YARD_METRIC_BUFFER``)."""
    try:
        return max(FLUSH_AT, int(os.environ.get("YARD_METRIC_BUFFER", "5000000")))
    except ValueError:
        return 5_000_000


def _interval() -> float:
    try:
        return max(0.05, float(os.environ.get("YARD_FLUSH_INTERVAL", "1.0")))
    except ValueError:
        return 1.0


class _Flusher:
    """One daemon thread per process that flushes every live run's buffer."""

    def __init__(self) -> None:
        self.runs: set[Run] = set()
        self.wake = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.pid = os.getpid()
        self.last_beat = 0

    def register(self, run: Run) -> None:
        with self.lock:
            if self.pid != os.getpid():  # forked: the parent's thread does not exist here
                self.thread = None
                self.pid = os.getpid()
            self.runs.add(run)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="yard-metric-flusher", daemon=True)
                self.thread.start()

    def _loop(self) -> None:
        while True:
            try:
                beat_s = _heartbeat.interval_ms() / 1000
            except ModelyardError:  # a bad YARD_HEARTBEAT_INTERVAL: reported by beat() below
                beat_s = _interval()
            self.wake.wait(min(_interval(), beat_s))
            self.wake.clear()
            with self.lock:
                live = list(self.runs)
            for run in live:
                try:
                    run._flush(background=True)
                except Exception as exc:  # keep the points; retry next interval
                    log.warning("modelyard: flushing metrics of run %s failed, will retry: %s", run.id, exc)
            try:
                self.beat(live)
            except Exception as exc:  # the next interval tries again
                log.warning("modelyard: writing the heartbeat of live runs failed, will retry: %s", exc)

    def beat(self, live: list[Run], *, force: bool = False) -> None:
        """Stamp the heartbeat of ``live`` runs still running, when an interval has passed (or ``force``)."""
        now = _heartbeat.clock()
        if not force and now - self.last_beat < _heartbeat.interval_ms():
            return
        self.last_beat = now
        by_store: dict[int, tuple[TrackingService, list[str]]] = {}
        for run in live:
            if run._status is RunStatus.RUNNING:
                by_store.setdefault(id(run._service.ws), (run._service, []))[1].append(run.id)
        for service, ids in by_store.values():
            service.heartbeat(ids, now)

    def flush_all(self) -> None:
        for run in list(self.runs):
            run._flush(background=False)


_flusher = _Flusher()


def flush_all() -> None:
    """Write every buffered metric point of every run in this process now."""
    _flusher.flush_all()


class Run:
    """A run being logged. Use it as a context manager, or call :meth:`end`.

    Created by :func:`modelyard.start_run`; don't construct it directly.

    Higher layers add methods here through the extension point ``"tracking.Run"``
    (:mod:`modelyard._hooks`), loaded when the first run is made: ``log_model`` (the registry),
    ``use_dataset`` and ``inputs`` (data). Tracking itself imports nothing above it.
    """

    log_model: Callable[..., Any]
    use_dataset: Callable[..., Any]
    inputs: Callable[..., list[Any]]

    def __init__(self, service: TrackingService, record: RunRecord) -> None:
        _hooks.load("tracking.Run")  # imported once, then found in sys.modules
        self._service = service
        self._record = record
        self.id: str = record.id
        self.name: str = record.name
        self.experiment: str = record.experiment
        self.parent_id: str | None = record.parent_id
        self._status = RunStatus.RUNNING
        self._rows: list[MetricRow] = []
        self._latest: dict[str, MetricRow] = {}
        self._next_step: dict[str, int] = {}
        self._keys: set[str] = set()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._failed_flush: BaseException | None = None
        #: Batches taken from the buffer but not yet acknowledged by the store, each with the
        #: idempotency key it is always sent with (a retried batch is stored once).
        self._unsent: list[tuple[str, list[MetricRow], list[MetricRow]]] = []
        self._unsent_points = 0
        self._buffer_limit = _buffer_limit()
        _flusher.register(self)

    def __repr__(self) -> str:
        return (
            f"<Run {self.id} name={self.name!r} experiment={self.experiment!r} status={self._status.value}>"
        )

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def status(self) -> RunStatus:
        """The run's current status."""
        return self._status

    @property
    def workspace(self) -> Workspace:
        """The workspace (metadata + blob store) this run writes to."""
        return self._service.ws

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._status is not RunStatus.RUNNING:
            _pop_active(self)
            return
        self._end_after(exc)

    def _end_after(self, exc: BaseException | None) -> None:
        """End the run as ``exc`` says: finished (None), killed (Ctrl-C) or failed (its traceback)."""
        if exc is None:
            self.end()
        elif isinstance(exc, KeyboardInterrupt):
            self.end(RunStatus.KILLED, error="KeyboardInterrupt")
        else:
            self.end(RunStatus.FAILED, error=format_exception(exc))

    def end(self, status: RunStatus | str = RunStatus.FINISHED, *, error: str | None = None) -> None:
        """Flush buffered metrics and end the run (``finished``, ``failed`` or ``killed``)."""
        try:
            new = RunStatus(status)
        except ValueError:
            new = RunStatus.RUNNING
        if not new.is_terminal:
            raise invalid_param("status", "Run.end", "one of 'finished', 'failed', 'killed'", status)
        self._status.check_transition(new, self.id)
        try:
            self._flush(background=False)
        finally:
            try:
                self._service.end_run(self.id, new, error)
            finally:  # even when the store refuses, this handle is done: never leave it on the active stack
                self._status = new
                with _flusher.lock:
                    _flusher.runs.discard(self)
                _pop_active(self)

    def _check_open(self) -> None:
        if self._status is not RunStatus.RUNNING:
            raise ConflictError(
                f"Run {self.id} is {self._status.value}; nothing more can be logged to it. "
                "Start a new run, or resume this one with yard.start_run(run_id=...)."
            )

    # -- metrics -------------------------------------------------------------------------------
    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one value of a metric; returns at once (written by the background flusher).

        ``step`` defaults to one past the last step logged for this key (0 first).
        ``timestamp`` is in milliseconds since the epoch (now by default). NaN and inf are kept.
        """
        if self._status is not RunStatus.RUNNING:
            self._check_open()
        if key not in self._keys:
            check_key(key, "metric name")
            self._keys.add(key)
        v = value if type(value) is float else to_float(key, value)
        if step is None:
            step = self._next_step.get(key, 0)
        elif type(step) is not int:
            step = _to_step(key, step)
        ts = now_ms() if timestamp is None else int(timestamp)
        nan = v != v
        row = (self.id, key, step, None if nan else v, nan, ts)
        with self._lock:
            if len(self._rows) + self._unsent_points >= self._buffer_limit:
                raise ServerError(
                    f"Run {self.id}: {len(self._rows) + self._unsent_points} metric points are waiting for "
                    f"the store at {self._service.ws!r}, which has not acknowledged them (last error: "
                    f"{self._failed_flush}). The buffer holds at most {self._buffer_limit} "
                    "(YARD_METRIC_BUFFER); nothing buffered is lost, and it is sent when the store answers."
                )
            self._rows.append(row)
            cur = self._latest.get(key)
            if cur is None or step > cur[2] or (step == cur[2] and ts >= cur[5]):
                self._latest[key] = row
            n = len(self._rows)
        self._next_step[key] = step + 1
        if n >= FLUSH_AT and n % FLUSH_AT == 0:
            _flusher.wake.set()

    def log_metrics(
        self, values: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record several metrics at the same step."""
        if not isinstance(values, Mapping):
            raise invalid_param("values", "log_metrics", "a mapping of name to number", values)
        converted = {check_key(k, "metric name"): to_float(k, v) for k, v in values.items()}
        for k, v in converted.items():
            self.log_metric(k, v, step=step, timestamp=timestamp)

    def flush(self) -> None:
        """Write every buffered metric point now."""
        self._flush(background=False)

    def _flush(self, *, background: bool) -> None:
        with self._flush_lock:
            with self._lock:
                if not self._rows and not self._unsent:
                    return
                if self._rows:
                    rows, self._rows = self._rows, []
                    latest, self._latest = list(self._latest.values()), {}
                    for i in range(0, len(rows), FLUSH_AT):
                        last = i + FLUSH_AT >= len(rows)
                        self._unsent.append(
                            (uuid.uuid4().hex, rows[i : i + FLUSH_AT], latest if last else [])
                        )
                    self._unsent_points += len(rows)
            while self._unsent:
                key, rows, latest = self._unsent[0]
                try:
                    with idempotency_key(key):
                        self._service.store_metric_batch(self.id, rows, latest)
                except BaseException as exc:  # kept, with its key, for the next attempt
                    self._failed_flush = exc
                    raise
                with self._lock:
                    self._unsent.pop(0)
                    self._unsent_points -= len(rows)
            self._failed_flush = None

    # -- params, tags --------------------------------------------------------------------------
    def log_param(self, key: str, value: Any) -> None:
        """Record one param (fixed once logged)."""
        self.log_params({key: value})

    def log_params(self, values: Mapping[str, Any]) -> None:
        """Record params; a key logged before with another value raises ConflictError."""
        self._check_open()
        self._service.log_params(self.id, values)

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag (tags may change)."""
        self.set_tags({key: value})

    def set_tags(self, values: Mapping[str, Any]) -> None:
        """Set several tags."""
        self._service.set_tags(self.id, values)

    # -- artifacts -------------------------------------------------------------------------------
    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactRecord:
        """Store a file or a whole folder (as a manifest) under ``artifact_path``."""
        self._check_open()
        return self._service.log_artifact(self.id, local_path, artifact_path)

    def log_text(self, text: str, artifact_path: str) -> ArtifactRecord:
        """Store a string as a UTF-8 file artifact."""
        self._check_open()
        return self._service.log_bytes(self.id, text.encode(), artifact_path)

    def log_dict(self, obj: Any, artifact_path: str) -> ArtifactRecord:
        """Store a JSON-serializable object as a JSON (or YAML, by extension) artifact."""
        if artifact_path.endswith((".yaml", ".yml")):
            import yaml

            text = yaml.safe_dump(obj, sort_keys=False)
        else:
            text = json.dumps(obj, indent=2, default=str)
        return self.log_text(text, artifact_path)

    def download_artifact(self, path: str, dest: str | os.PathLike[str] = ".") -> Path:
        """Fetch an artifact of this run to ``dest`` (verified)."""
        return self._service.download_artifact(self.id, path, dest)

    # -- reading back ------------------------------------------------------------------------------
    def info(self) -> RunRecord:
        """What is stored about this run now (buffered metrics are flushed first)."""
        self.flush()
        return self._service.get_run(self.id)


def _to_step(key: str, step: Any) -> int:
    try:
        if isinstance(step, bool) or int(step) != step:
            raise ValueError
        return int(step)
    except (TypeError, ValueError):
        from modelyard.errors import InvalidArgumentError

        raise InvalidArgumentError(
            f"The step of metric {key!r} must be a whole number. Got {type(step).__name__} {step!r} instead."
        ) from None


# -- the active-run stack ----------------------------------------------------------------------
_active: list[Run] = []
_active_lock = threading.Lock()


def _push_active(run: Run) -> None:
    with _active_lock:
        _active.append(run)


def _pop_active(run: Run) -> None:
    with _active_lock:
        if run in _active:
            _active.remove(run)


def active_run() -> Run | None:
    """The innermost run started with :func:`start_run` and not yet ended, or None."""
    with _active_lock:
        return _active[-1] if _active else None


def _require_no_active(nested: bool) -> Run | None:
    current = active_run()
    if current is not None and not nested:
        raise UsageError(
            f"Run {current.id} ({current.name!r}) is already active. End it first, or pass nested=True "
            "to start a child run."
        )
    return current


_last_exc: list[BaseException] = []
_prev_hook = sys.excepthook


def _excepthook(tp: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    _last_exc.append(value)
    _prev_hook(tp, value, tb)


def _at_exit() -> None:
    """Flush every buffer and end runs left open: failed if the interpreter dies of an exception."""
    exc = _last_exc[-1] if _last_exc else None
    for run in reversed(list(_active)):
        try:
            if run.status is RunStatus.RUNNING:
                run._end_after(exc)
        except ModelyardError as e:  # pragma: no cover - store gone at exit
            log.warning("modelyard: could not end run %s at exit: %s", run.id, e)
    for run in list(_flusher.runs):
        try:
            run.flush()
        except Exception as e:  # pragma: no cover
            log.warning("modelyard: could not flush run %s at exit: %s", run.id, e)


sys.excepthook = _excepthook
atexit.register(_at_exit)
