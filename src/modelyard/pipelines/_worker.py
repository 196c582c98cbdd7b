"""Run one step where the executor put it (this process, a pool worker, a Ray worker).

A worker never touches the metadata store: it loads inputs (in-memory values or output
digests from the blob store), calls the function with retries while capturing its output and
log records, serializes the result into the blob store and returns a :class:`StepResult`.
Only the driver records runs and cache entries, so a failed step leaves no cache entry.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelyard.blobs import BlobStore
from modelyard.pipelines._graph import Ref, substitute
from modelyard.pipelines._serializers import choose_serializer, load_output, save_output

__all__ = ["StepResult", "StepTask", "execute", "run_payload", "run_payload_ray"]

MAX_LOG = 200_000


@dataclass
class StepTask:
    """Everything a worker needs to run one node."""

    node: str
    step: str
    fn: Callable[..., Any]
    arguments: dict[str, Any]
    input_digests: dict[str, str]
    blob_uri: str
    serializer: str | None
    allow_pickle: bool
    retries: int
    datasets: dict[str, Any] = field(default_factory=dict)
    ws_uri: str | None = None
    #: upstream node → (serializer, allow_pickle) its step declares: how its output may be loaded
    input_specs: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    #: the driver's token for a modelyard server's workspace: only for the process executor,
    #: whose workers are this user's own children (a warm pool outlives the environment it was
    #: started with); Ray workers use the credentials of their own environment
    token: str | None = field(default=None, repr=False)


@dataclass
class StepResult:
    """What came back from running one node."""

    node: str
    ok: bool
    output_digest: str | None = None
    size: int = 0
    serializer: str | None = None
    duration_s: float = 0.0
    attempts: int = 0
    logs: str = ""
    error: str | None = None
    error_type: str | None = None
    value: Any = field(default=None, repr=False)


def _call(fn: Callable[..., Any], arguments: Mapping[str, Any]) -> Any:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.name not in arguments:
            continue
        v = arguments[p.name]
        if p.kind is p.POSITIONAL_ONLY:
            args.append(v)
        elif p.kind is p.VAR_POSITIONAL:
            args.extend(v)
        elif p.kind is p.VAR_KEYWORD:
            kwargs.update(v)
        else:
            kwargs[p.name] = v
    return fn(*args, **kwargs)


class _LogCapture(logging.Handler):
    def __init__(self, buf: io.StringIO) -> None:
        super().__init__(logging.INFO)
        self.buf = buf
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.buf.write(self.format(record) + "\n")
        except Exception:  # pragma: no cover
            pass


def execute(
    task: StepTask, values: Mapping[str, Any] | None = None, *, keep_value: bool = False
) -> StepResult:
    """Run ``task``: inputs from ``values`` (node → object) or the blob store; never raises."""
    values = dict(values or {})
    blobs = _blob_store(task)
    buf = io.StringIO()
    start = time.perf_counter()
    attempts = 0
    try:
        loaded: dict[str, Any] = {}

        def resolve(ref: Ref) -> Any:
            if ref.node_id in values:
                return values[ref.node_id]
            if ref.node_id not in loaded:
                ser, pickle_ok = task.input_specs.get(ref.node_id, (None, False))
                loaded[ref.node_id] = load_output(
                    blobs, task.input_digests[ref.node_id], serializer=ser, allow_pickle=pickle_ok
                )
            return loaded[ref.node_id]

        def load_dataset(d: Any) -> Any:
            from modelyard.data._service import DataService

            # The version is resolved: loading it reads only verified blobs, never the metadata store.
            return DataService(_workspace(task)).load(
                task.datasets[d.ref], engine=d.engine, columns=d.columns
            )

        arguments = substitute(task.arguments, resolve, load_dataset)
        handler = _LogCapture(buf)
        root = logging.getLogger()
        while True:
            attempts += 1
            root.addHandler(handler)
            try:
                with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
                    result = _call(task.fn, arguments)
                break
            except Exception:
                if attempts > task.retries:
                    raise
                buf.write(f"\n--- attempt {attempts} failed, retrying ---\n{traceback.format_exc()}\n")
            finally:
                root.removeHandler(handler)
        ser = choose_serializer(result, task.step, task.serializer, task.allow_pickle)
        digest, size = save_output(blobs, result, ser, step=task.step)
        return StepResult(
            node=task.node,
            ok=True,
            output_digest=digest,
            size=size,
            serializer=ser.name,
            duration_s=time.perf_counter() - start,
            attempts=attempts,
            logs=buf.getvalue()[-MAX_LOG:],
            value=result if keep_value else None,
        )
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit) and not isinstance(exc, SystemExit):
            raise
        return StepResult(
            node=task.node,
            ok=False,
            duration_s=time.perf_counter() - start,
            attempts=attempts,
            logs=buf.getvalue()[-MAX_LOG:],
            error="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-20000:],
            error_type=type(exc).__name__,
        )


_REMOTE: dict[tuple[str, str], Any] = {}


def _workspace(task: StepTask) -> Any:
    """The task's workspace; for a server with the driver's token when the task carries one."""
    from modelyard._workspace import Workspace, get_workspace

    if task.token is None or task.ws_uri is None:
        return get_workspace(task.ws_uri)
    key = (task.ws_uri, task.token)
    ws = _REMOTE.get(key)
    if ws is None:
        from modelyard._remote import RemoteClient
        from modelyard.blobs._http import HttpBackend
        from modelyard.config import redact

        ws = Workspace(task.ws_uri)
        ws.remote = RemoteClient(ws.location.uri, token=task.token)
        ws.blobs = BlobStore(ws.location.blob_uri, backend=HttpBackend(ws.remote, redact(ws.location.uri)))
        if len(_REMOTE) > 8:
            _REMOTE.clear()
        _REMOTE[key] = ws
    return ws


def _blob_store(task: StepTask) -> BlobStore:
    """The blobs of the task's workspace: a modelyard server's travel over HTTP, any other store
    is opened here at ``blob_uri``."""
    if task.ws_uri is not None and task.ws_uri.startswith(("http://", "https://")):
        blobs: BlobStore = _workspace(task).blobs
        return blobs
    return BlobStore(task.blob_uri)


def run_payload(payload: bytes) -> StepResult:
    """Process-pool entry point: the task arrives cloudpickled (user functions by value)."""
    import cloudpickle

    task = cloudpickle.loads(payload)
    return execute(task)


def run_payload_ray(payload: bytes, input_nodes: list[str], *input_values: Any) -> tuple[StepResult, Any]:
    """Ray task body: upstream values arrive as resolved object refs; returns (result, value)."""
    import cloudpickle

    task = cloudpickle.loads(payload)
    res = execute(task, dict(zip(input_nodes, input_values, strict=True)), keep_value=True)
    value, res.value = res.value, None
    return res, value


def _flush_std() -> None:  # pragma: no cover - best effort before a worker returns
    for s in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            s.flush()
