"""The model server: an ASGI app built from a deployment spec, swappable while it runs.

``build_app(spec)`` returns a started :class:`ModelServer`, itself an ASGI app::

    server = yard.serving.build_app("serve.yaml")          # or a dict / DeploymentSpec
    uvicorn.run(server, port=8080)
    server.swap(new_spec)        # load + warm, then switch; in-flight requests finish on the old

``ModelServer(spec, ...)`` only stores its arguments; :meth:`ModelServer.start` (called by
``build_app`` and, when not done yet, by the ASGI lifespan startup) loads and warms the models.
Every endpoint is a row of the route table (:mod:`modelyard.serving._routes`): the predict rows
are matched here on the ASGI scope (the hot path), every row is also a Starlette route, and
``/openapi.json`` documents the same rows. A swap also comes from ``PUT /admin/spec``
(``Authorization: Bearer <token>``) or from the spec file changing on disk (``watch=True``).
A spec whose models fail to load leaves the old one serving and the reason on ``/health/ready``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard.errors import ModelyardError, did_you_mean
from modelyard.serving._admin import ADMIN_ENV
from modelyard.serving._codec import (
    HTTPProblem,
    Payload,
    PredictAndProba,
    decode_mlflow,
    decode_native,
    loads,
    to_jsonable,
)
from modelyard.serving._columnar import numeric_payload
from modelyard.serving._http import (
    JSONResponse,
    RawRequest,
    check_type,
    csv_payload,
    problem,
    read_body,
    respond,
    wants_proba,
)
from modelyard.serving._metrics import ServingMetrics
from modelyard.serving._predlog import PredictionLogger
from modelyard.serving._routes import ROUTES, FastRouter, Route, starlette_app
from modelyard.serving._routing import logged_inputs
from modelyard.serving._runtime import Answer, Deployment, load_deployment
from modelyard.serving._spec import DeploymentSpec, SwapError, load_spec
from modelyard.serving._types import Receive, Scope, Send
from modelyard.serving._v2 import decode_v2_request, render_infer
from modelyard.serving._workers import WorkerBoard

__all__ = ["ModelServer", "SwapError", "build_app"]

log = logging.getLogger("modelyard.serving")

SpecSource = DeploymentSpec | str | os.PathLike[str] | dict[str, Any]
_TABLE_BYTES = 256  # smaller bodies (a row or two) decode as fast through the lists


def _default_loader(uri: str | None) -> Callable[..., Any]:
    def load(ref: str, *, allow_pickle: bool = False) -> Any:
        from modelyard._workspace import get_workspace
        from modelyard.registry import load_model
        from modelyard.registry._model import read_input_example

        model = load_model(ref, uri, allow_pickle=allow_pickle)
        digest = model.manifest_digest
        try:
            ws = get_workspace(uri)
            model.input_example = read_input_example(ws, digest) if digest is not None else None
        except Exception:  # warm-up then builds rows from the signature
            model.input_example = None
        return model

    return load


class ModelServer:
    """An ASGI model server over a swappable :class:`Deployment`.

    The constructor stores its arguments; :meth:`start` loads the spec's models."""

    def __init__(
        self,
        spec: SpecSource,
        *,
        uri: str | None = None,
        loader: Callable[[str], Any] | None = None,
        admin_token: str | None = None,
        watch: bool = False,
        watch_interval_s: float = 1.0,
        persist_swaps: bool = False,
        prediction_log: bool = True,
        routes: tuple[Route, ...] = ROUTES,
        board: WorkerBoard | None = None,
    ) -> None:
        self.uri = uri
        self._first_spec = spec
        self.spec_path: Path | None = None
        if (
            isinstance(spec, (str, os.PathLike))
            and Path(os.fspath(spec)).suffix.lower() in (".yaml", ".yml", ".json")
            and "\n" not in os.fspath(spec)
        ):
            # absolute, symlinks kept: a Kubernetes ConfigMap volume swaps its `..data` symlink on update
            self.spec_path = Path(os.path.abspath(os.fspath(spec)))
        self._loader: Callable[..., Any] = loader or _default_loader(uri)
        self._default_loader = loader is None  # takes the spec's allow_pickle
        self._admin_token = admin_token if admin_token is not None else os.environ.get(ADMIN_ENV) or None
        self.watch = watch
        self.watch_interval_s = watch_interval_s
        self.persist_swaps = persist_swaps
        self.prediction_log = prediction_log
        self.routes = routes
        self.metrics = ServingMetrics()
        self.predlog: PredictionLogger | None = None
        self.last_swap: dict[str, Any] = {}
        self.started_at = time.time()
        self._deployment: Deployment | None = None
        self._swap_lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._started = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # request ids: a random per-process prefix and a counter (no syscall per request)
        self._rid_prefix = uuid.uuid4().hex[:16]
        self._rid_counter = itertools.count(1)
        self._applied_digest: str | None = None
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._file_stat: tuple[int, int, int] | None = None  # (inode, mtime, size) last read
        #: the applied-spec files of the sibling workers (``yard serve --workers N``), else None
        self.board = board
        self.admin_lock = threading.Lock()  # one admin swap at a time: swap, write the file, wait
        # the three views of the route table: the hot path, the Starlette app, /openapi.json
        self.fast_router = FastRouter(routes)
        self.app = starlette_app(self, routes)

    def start(self) -> ModelServer:
        """Load and warm the spec's models, open the prediction log, watch the spec file
        (``watch=True``). Does nothing when already started. Raises :class:`SwapError` when a
        model fails to load."""
        with self._start_lock:
            if self._started:
                return self
            first = load_spec(self._first_spec)
            pl = first.prediction_log
            if self.prediction_log and pl.enabled and self.predlog is None:
                self.predlog = PredictionLogger(
                    self.uri,
                    sample_rate=pl.sample_rate,
                    max_buffer_rows=pl.max_buffer_rows,
                    flush_rows=pl.flush_rows,
                    flush_interval_s=pl.flush_interval_s,
                    on_drop=self.metrics.predlog_dropped.inc,
                )
                try:
                    self.predlog.prepare()
                except Exception:  # the first flush reports it
                    log.debug("prediction log not prepared", exc_info=True)
            if self.spec_path is not None:
                self._applied_digest = self._file_digest()
            if self.board is not None and self.spec_path is not None:  # digest and spec of one read
                text, self._applied_digest, _ = self.read_spec_file()
                first = load_spec(text + "\n")  # text, never taken for a path
            try:
                self.swap(first, reason="initial")
            except SwapError as exc:
                if self.board is not None:
                    self.board.report(self._applied_digest, False, str(exc))
                if self.predlog is not None:  # nothing to log: do not leave its thread behind
                    self.predlog.close()
                    self.predlog = None
                raise
            self._started = True
            if self.board is not None:
                self.board.report(self._applied_digest, True)
            if self.watch and self.spec_path is not None:
                self._watch_stop.clear()
                self._watcher = threading.Thread(
                    target=self._watch, args=(self.watch_interval_s,), name="yard-spec-watch", daemon=True
                )
                self._watcher.start()
        return self

    @property
    def started(self) -> bool:
        """Whether :meth:`start` has loaded the first spec."""
        return self._started

    def __repr__(self) -> str:
        dep = self._deployment
        return (
            f"ModelServer(endpoint={dep.endpoint if dep else None!r}, "
            f"admin={'on' if self._admin_token else 'off'})"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "lifespan"
        ):  # startup loads (unless started); shutdown flushes and stops the threads
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    try:
                        if not self._started:
                            await asyncio.to_thread(self.start)
                    except Exception as exc:
                        await send({"type": "lifespan.startup.failed", "message": str(exc)})
                        return
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.to_thread(self.close)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            match = self.fast_router.match(scope["method"], scope["path"])
            if match is not None:  # the hot path skips Starlette's router and middleware
                route, params = match
                response = await self.predict(RawRequest(scope, receive, params), route.api or "")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    # -- spec swaps --------------------------------------------------------------------------------
    @property
    def deployment(self) -> Deployment | None:
        """The deployment answering new requests."""
        return self._deployment

    @property
    def spec(self) -> DeploymentSpec | None:
        return self._deployment.spec if self._deployment else None

    def swap(self, spec: SpecSource, *, reason: str | None = "api") -> Deployment:
        """Load and warm ``spec``'s models, then send new requests to them (thread-safe).

        Raises :class:`SwapError` (the old spec keeps serving) when the spec is invalid or a
        model fails to load. ``reason`` labels the count in ``yard_serving_spec_swaps_total``
        (``initial``, ``admin``, ``file``, ``api``); None: not counted here (a swap another
        worker counts, or one the admin route counts once it knows the outcome on every worker).
        """
        t0 = time.perf_counter()
        with self._swap_lock:
            try:
                new_spec = load_spec(spec)
                loader = self._loader
                if new_spec.allow_pickle and self._default_loader:
                    loader = functools.partial(loader, allow_pickle=True)
                new = load_deployment(new_spec, loader, self.metrics)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ModelyardError) else str(exc)
                self.last_swap = {"ok": False, "error": error, "at_ms": int(time.time() * 1000)}
                if reason is not None:
                    self.metrics.swaps.labels("failed", reason).inc()
                log.error("spec swap failed, keeping the current spec: %s", error)
                raise SwapError(f"The new spec was not applied: {error}") from exc
            new.predlog = self.predlog
            old, self._deployment = self._deployment, new
            if self.predlog is not None:
                self.predlog.sample_rate = new_spec.prediction_log.sample_rate
            self.last_swap = {
                "ok": True,
                "error": None,
                "at_ms": int(time.time() * 1000),
                "seconds": round(time.perf_counter() - t0, 3),
                "models": {slot: f"{rt.name}/{rt.version}" for slot, rt in new.runtimes.items()},
            }
            if reason is not None:
                self.metrics.swaps.labels("ok", reason).inc()
            log.info("serving %s", self.last_swap["models"])
        if old is not None:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(old.retire)
                except RuntimeError:
                    old.retire()
            else:
                old.retire()
        return new

    def _file_digest(self) -> str | None:
        try:
            assert self.spec_path is not None
            return hashlib.sha256(self.spec_path.read_bytes()).hexdigest()
        except OSError:
            return None

    def read_spec_file(self) -> tuple[str, str, os.stat_result]:
        """The spec file's text, its sha256 and its stat, from one open file."""
        assert self.spec_path is not None
        with open(self.spec_path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
        self._file_stat = (st.st_ino, st.st_mtime_ns, st.st_size)
        return data.decode(errors="replace"), hashlib.sha256(data).hexdigest(), st

    def _watch(self, interval: float) -> None:
        while not self._watch_stop.wait(interval):
            assert self.spec_path is not None
            try:
                st = os.stat(self.spec_path)
                if (st.st_ino, st.st_mtime_ns, st.st_size) == self._file_stat:
                    continue  # unchanged since the last read: no read, no hash
                text, digest, st = self.read_spec_file()
            except OSError:
                continue
            if digest == self._applied_digest:
                continue
            self._applied_digest = digest
            reason: str | None = "file"
            if self.board is not None:  # every worker sees an edit: the first to claim it counts it
                from modelyard.serving._workers import file_key

                reason = "file" if self.board.claim(file_key(digest, st)) else None
            try:
                self.swap(text + "\n", reason=reason)  # text, never taken for a path
            except SwapError as exc:
                if self.board is not None:
                    self.board.report(digest, False, str(exc))
                continue  # recorded in last_swap, shown on /health/ready
            if self.board is not None:
                self.board.report(digest, True)

    def persist_spec(self, text: str) -> str:
        """Write ``text`` to the spec file atomically (the watcher does not swap on it again);
        with sibling workers, claim the change first so only this worker counts it. Returns
        the text's sha256."""
        assert self.spec_path is not None
        tmp = self.spec_path.with_name(f".{self.spec_path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(text)
        digest = hashlib.sha256(text.encode()).hexdigest()
        self._applied_digest = digest
        if self.board is not None:
            from modelyard.serving._workers import file_key

            self.board.claim(file_key(digest, os.stat(tmp)))  # a rename keeps inode and mtime
        os.replace(tmp, self.spec_path)
        return digest

    def close(self) -> None:
        """Stop watching, flush the prediction log, stop the predict threads."""
        self._watch_stop.set()
        if self.board is not None:
            self.board.remove()
        if self.predlog is not None:
            self.predlog.close()
        dep, self._deployment = self._deployment, None
        if dep is not None:
            dep.close()

    # -- what the routes ask of the server ---------------------------------------------------------
    @property
    def admin_enabled(self) -> bool:
        """Whether the admin routes are on (the server has an admin token)."""
        return bool(self._admin_token)

    def token_matches(self, token: str) -> bool:
        """Whether ``token`` is the admin token (constant time)."""
        return bool(self._admin_token) and hmac.compare_digest(
            token.encode(), (self._admin_token or "").encode()
        )

    def enter(self, name: str | None) -> Deployment:
        """The deployment answering model ``name`` (None: any), counted in flight until
        ``leave()``; 503 before a spec is loaded, 404 for another model's name."""
        dep = self._deployment
        if dep is None:
            raise HTTPProblem(503, "not_ready", "No deployment is loaded yet; see /health/ready.")
        if name is not None and name != dep.endpoint and name not in dep.model_names:
            raise HTTPProblem(
                404,
                "unknown_model",
                f"No model named {name!r} is served here; this server serves {dep.endpoint!r}."
                + did_you_mean(name, [dep.endpoint]),
            )
        dep.in_flight += 1
        return dep

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """``(ready, /health/ready body)``: ready when every model of the spec is loaded and warmed."""
        dep = self._deployment
        if dep is None:
            return False, {
                "status": "not_ready",
                "reason": self.last_swap.get("error") or "loading",
                "last_swap": self.last_swap,
            }
        ok = all(rt.warmed for rt in dep.all_runtimes())
        body = {"status": "ready" if ok else "warming", **dep.describe(), "last_swap": self.last_swap}
        return ok, body

    # -- the predict path ---------------------------------------------------------------------------
    def _finish(
        self, api: str, rid: str, t0: float, status: int, answer: Answer | None, dep: Deployment | None
    ) -> None:
        m = self.metrics
        version: str | int
        if answer is not None:
            if answer.runtime is not None:
                model, version = answer.runtime.name, answer.runtime.version  # str() once per key
            else:
                model, version = (dep.primary.name if dep else ""), "constant"
        else:
            model, version = (dep.endpoint if dep else ""), ""
        m.answered((model, version, api, status), time.perf_counter() - t0)

    async def predict(self, request: Any, api: str) -> Any:
        """Answer a predict request of ``api`` ("native", "invocations" or "v2"): decode, predict,
        log, render. Every failure is an answer (4xx for the client's, 503 for the server's)."""
        t0 = time.perf_counter()
        rid = request.headers.get("x-request-id")
        rid = rid[:128] if rid else f"{self._rid_prefix}{next(self._rid_counter):08x}"
        dep: Deployment | None = None
        answer: Answer | None = None
        status = 200
        m = self.metrics
        m.in_flight.inc()
        try:
            params = request.path_params
            dep = self.enter(params.get("name"))
            kind = "v2" if api == "v2" else check_type(request, csv_ok=api == "invocations")
            body = await read_body(request, dep.spec.limits.max_body_bytes)
            version = params.get("version")
            if version is not None:
                try:
                    version = int(version)
                except ValueError:
                    raise HTTPProblem(
                        404, "unknown_version", f"Version {version!r} is not a number."
                    ) from None
            v2_id = None
            obj: Any = None
            if kind == "csv":
                payload = csv_payload(body)
            elif kind == "v2":  # JSON, or JSON + binary tensors; the request's outputs set the options
                payload, v2_id = decode_v2_request(request, body, dep)
            else:
                obj = loads(body)
                table = numeric_payload(obj, api, dep.columns, body) if len(body) > _TABLE_BYTES else None
                if table is not None:  # an all-number table: straight into a float matrix
                    payload, body_version = table
                    version = body_version if body_version is not None else version
                elif api == "native":
                    payload, body_version = decode_native(obj, dep.columns)
                    version = body_version if body_version is not None else version
                else:
                    payload = decode_mlflow(obj, dep.columns)
            if kind != "v2" and wants_proba(request, obj if kind == "json" else None, api):
                payload.options = {"proba": True}
            if payload.n > dep.spec.limits.max_rows:
                raise HTTPProblem(
                    413,
                    "too_many_rows",
                    f"The request has {payload.n} rows; the limit is {dep.spec.limits.max_rows}.",
                )
            answer = await dep.answer(payload, version=version, headers=request.headers, request_id=rid)
            latency_ms = (time.perf_counter() - t0) * 1000
            self._log_prediction(rid, dep, payload, answer, latency_ms)
            return self._render(api, answer, rid, v2_id, bool(payload.options))
        except HTTPProblem as p:
            status = p.status
            if status == 429:
                m.rejected.labels(dep.endpoint if dep else "").inc()
            return problem(p, rid)
        except RecursionError:  # a value nested too deep for some library on the way
            status = 400
            return problem(HTTPProblem(400, "too_deep", "The request nests values too deeply."), rid)
        except Exception as exc:  # a bug: answer it, keep the worker alive, log it
            log.exception("unexpected error answering %s", rid)
            status = 503
            return problem(
                HTTPProblem(503, "internal_error", f"The server failed: {type(exc).__name__}: {exc}"), rid
            )
        finally:
            if dep is not None:
                dep.leave()
            m.in_flight.dec()
            self._finish(api, rid, t0, status, answer, dep)

    def _log_prediction(
        self, rid: str, dep: Deployment, payload: Payload, answer: Answer, latency_ms: float
    ) -> None:
        pl = self.predlog
        if pl is None or not pl.sampled():
            return
        rt = answer.runtime or dep.primary
        inputs = logged_inputs(answer.payload or payload, rt.inputs.dtypes)
        output = answer.output
        if isinstance(output, PredictAndProba):  # a V2 request for both outputs: log the predictions
            output = output.predict
        elif payload.options and answer.runtime is not None:  # probabilities: log the most likely class
            import numpy as np

            probs = np.asarray(output)
            if probs.ndim == 2 and rt.classes is not None and probs.shape[1] == len(rt.classes):
                output = np.asarray(rt.classes)[probs.argmax(axis=1)]
        pl.log(rid, rt.name, rt.version, inputs, output, latency_ms, answer.fallback, sample=False)

    def _render(self, api: str, answer: Answer, rid: str, v2_id: Any, proba: bool = False) -> JSONResponse:
        rt = answer.runtime
        classes = rt.classes if proba and rt is not None else None
        version = rt.version if rt is not None else None
        headers = {"x-request-id": rid}
        if version is not None:
            headers["x-model-version"] = str(version)
        if answer.fallback:
            headers["x-fallback"] = answer.reason or "true"
        dep = self._deployment
        if api == "native":
            body: dict[str, Any] = {
                "model": rt.name if rt is not None else dep.endpoint if dep else None,
                "version": version,
                "request_id": rid,
                "predictions": to_jsonable(answer.output),
                "fallback": answer.fallback,
            }
            if answer.fallback:
                body["fallback_reason"] = answer.reason
            if classes is not None:
                body["classes"] = classes
            return respond(200, body, headers)
        if api == "invocations":
            inv: dict[str, Any] = {"predictions": to_jsonable(answer.output)}
            if classes is not None:
                inv["classes"] = classes
            return respond(200, inv, headers)
        return render_infer(answer, dep.endpoint if dep else "", rid, v2_id, proba, headers)


def build_app(
    spec: SpecSource,
    *,
    uri: str | None = None,
    admin_token: str | None = None,
    watch: bool = False,
    loader: Callable[[str], Any] | None = None,
    prediction_log: bool = True,
) -> ModelServer:
    """Build and start the ASGI model server for ``spec`` (a spec, a dict, YAML/JSON text or a file path).

    Loads and warms every model before returning (raises :class:`SwapError` when one fails).
    ``watch=True`` swaps when the spec file changes; ``admin_token`` (or
    ``YARD_SERVE_ADMIN_TOKEN``) enables ``PUT /admin/spec``.
    """
    return ModelServer(
        spec, uri=uri, admin_token=admin_token, watch=watch, loader=loader, prediction_log=prediction_log
    ).start()
