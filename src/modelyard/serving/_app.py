"""The model server: an ASGI app built from a deployment spec, swappable while it runs.

``build_app(spec)`` returns a :class:`ModelServer`, itself an ASGI app (Starlette inside)::

    server = yard.serving.build_app("serve.yaml")          # or a dict / DeploymentSpec
    uvicorn.run(server, port=8080)
    server.swap(new_spec)        # load + warm, then switch; in-flight requests finish on the old

A swap also comes from ``PUT /admin/spec`` (``Authorization: Bearer <token>``) or from the spec
file changing on disk (``watch=True``). A spec whose models fail to load leaves the old one
serving and the reason on ``/health/ready``.
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
from modelyard.serving._codec import (
    HTTPProblem,
    Payload,
    decode_mlflow,
    decode_native,
    decode_v2,
    dumps,
    loads,
    to_jsonable,
    v2_outputs,
)
from modelyard.serving._metrics import ServingMetrics
from modelyard.serving._predlog import PredictionLogger
from modelyard.serving._runtime import Answer, Deployment, load_deployment
from modelyard.serving._spec import DeploymentSpec, load_spec

__all__ = ["ModelServer", "SwapError", "build_app"]

log = logging.getLogger("modelyard.serving")

_JSON = "application/json"
_ADMIN_ENV = "YARD_SERVE_ADMIN_TOKEN"


class SwapError(ModelyardError):
    """Raised when a new spec cannot be loaded; the server keeps serving the old one."""


def _default_loader(uri: str | None) -> Callable[..., Any]:
    def load(ref: str, *, allow_pickle: bool = False) -> Any:
        from modelyard._workspace import get_workspace
        from modelyard.registry import load_model
        from modelyard.registry._model import read_input_example

        model = load_model(ref, uri, allow_pickle=allow_pickle)
        try:
            model.input_example = read_input_example(get_workspace(uri), model.manifest_digest)
        except Exception:  # warm-up then builds rows from the signature
            model.input_example = None
        return model

    return load


class ModelServer:
    """An ASGI model server over a swappable :class:`Deployment`."""

    def __init__(
        self,
        spec: DeploymentSpec | str | os.PathLike[str] | dict[str, Any],
        *,
        uri: str | None = None,
        loader: Callable[[str], Any] | None = None,
        admin_token: str | None = None,
        watch: bool = False,
        watch_interval_s: float = 1.0,
        persist_swaps: bool = False,
        prediction_log: bool = True,
    ) -> None:
        self.uri = uri
        self.spec_path: Path | None = None
        if isinstance(spec, (str, os.PathLike)) and Path(os.fspath(spec)).suffix.lower() in (".yaml", ".yml", ".json") \
                and "\n" not in os.fspath(spec):
            self.spec_path = Path(os.fspath(spec)).resolve()
        self._loader = loader or _default_loader(uri)
        self._default_loader = loader is None  # takes the spec's allow_pickle
        self._admin_token = admin_token if admin_token is not None else os.environ.get(_ADMIN_ENV) or None
        self.persist_swaps = persist_swaps
        self.metrics = ServingMetrics()
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any]] = {}  # pre-bound label children
        self._deployment: Deployment | None = None
        self._swap_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.last_swap: dict[str, Any] = {}
        self.started_at = time.time()
        # request ids: a random per-process prefix and a counter (no syscall per request)
        self._rid_prefix = uuid.uuid4().hex[:16]
        self._rid_counter = itertools.count(1)
        self._applied_digest: str | None = None
        first = load_spec(spec)
        pl = first.prediction_log
        self.predlog: PredictionLogger | None = None
        if prediction_log and pl.enabled:
            self.predlog = PredictionLogger(
                uri, sample_rate=pl.sample_rate, max_buffer_rows=pl.max_buffer_rows, flush_rows=pl.flush_rows,
                flush_interval_s=pl.flush_interval_s, on_drop=self.metrics.predlog_dropped.inc,
            )
            try:
                self.predlog.prepare()
            except Exception:  # the first flush reports it
                log.debug("prediction log not prepared", exc_info=True)
        if self.spec_path is not None:
            self._applied_digest = self._file_digest()
        self.swap(first)
        self.app = self._build_starlette()
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        if watch and self.spec_path is not None:
            self._watcher = threading.Thread(
                target=self._watch, args=(watch_interval_s,), name="yard-spec-watch", daemon=True
            )
            self._watcher.start()

    def __repr__(self) -> str:
        dep = self._deployment
        return f"ModelServer(endpoint={dep.endpoint if dep else None!r}, admin={'on' if self._admin_token else 'off'})"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":  # shutdown flushes the prediction log and stops the threads
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await asyncio.to_thread(self.close)
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http":
            if self._loop is None:
                self._loop = asyncio.get_running_loop()
            if scope["method"] == "POST":
                route = _predict_route(scope["path"])
                if route is not None:  # the hot path skips Starlette's router and middleware
                    api, params = route
                    response = await self._serve(_RawRequest(scope, receive, params), api)
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

    def swap(self, spec: DeploymentSpec | str | os.PathLike[str] | dict[str, Any]) -> Deployment:
        """Load and warm ``spec``'s models, then send new requests to them (thread-safe).

        Raises :class:`SwapError` (the old spec keeps serving) when the spec is invalid or a
        model fails to load.
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
                reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ModelyardError) else str(exc)
                self.last_swap = {"ok": False, "error": reason, "at_ms": int(time.time() * 1000)}
                self.metrics.swaps.labels("failed").inc()
                log.error("spec swap failed, keeping the current spec: %s", reason)
                raise SwapError(f"The new spec was not applied: {reason}") from exc
            new.predlog = self.predlog
            old, self._deployment = self._deployment, new
            if self.predlog is not None:
                self.predlog.sample_rate = new_spec.prediction_log.sample_rate
            self.last_swap = {
                "ok": True, "error": None, "at_ms": int(time.time() * 1000),
                "seconds": round(time.perf_counter() - t0, 3),
                "models": {slot: f"{rt.name}/{rt.version}" for slot, rt in new.runtimes.items()},
            }
            self.metrics.swaps.labels("ok").inc()
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

    def _watch(self, interval: float) -> None:
        while not self._watch_stop.wait(interval):
            digest = self._file_digest()
            if digest is None or digest == self._applied_digest:
                continue
            self._applied_digest = digest
            try:
                assert self.spec_path is not None
                self.swap(self.spec_path)
            except SwapError:
                pass  # recorded in last_swap, shown on /health/ready

    def _persist(self, text: str) -> None:
        assert self.spec_path is not None
        tmp = self.spec_path.with_name(f".{self.spec_path.name}.{uuid.uuid4().hex[:8]}.tmp")
        tmp.write_text(text)
        self._applied_digest = hashlib.sha256(text.encode()).hexdigest()
        os.replace(tmp, self.spec_path)

    def close(self) -> None:
        """Stop watching, flush the prediction log, stop the predict threads."""
        self._watch_stop.set()
        if self.predlog is not None:
            self.predlog.close()
        dep, self._deployment = self._deployment, None
        if dep is not None:
            dep.close()

    # -- request plumbing --------------------------------------------------------------------------
    def _enter(self, name: str | None) -> Deployment:
        dep = self._deployment
        if dep is None:
            raise HTTPProblem(503, "not_ready", "No deployment is loaded yet; see /health/ready.")
        if name is not None and name != dep.endpoint and name not in dep.model_names:
            raise HTTPProblem(
                404, "unknown_model",
                f"No model named {name!r} is served here; this server serves {dep.endpoint!r}."
                + did_you_mean(name, [dep.endpoint]),
            )
        dep.in_flight += 1
        return dep

    async def _read_body(self, request: Any, dep: Deployment) -> bytes:
        limit = dep.spec.limits.max_body_bytes
        cl = request.headers.get("content-length")
        if cl is not None:
            try:
                if int(cl) > limit:
                    raise HTTPProblem(413, "body_too_large", f"The body has {int(cl)} bytes; the limit is {limit}.")
            except ValueError:
                raise HTTPProblem(400, "bad_header", f"Content-Length {cl!r} is not a number.") from None
        if type(request) is _RawRequest:
            return await request.read(limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPProblem(413, "body_too_large", f"The body is larger than the limit of {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _check_type(request: Any, *, csv_ok: bool = False) -> str:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("", _JSON, "application/x-www-form-urlencoded") or ctype.endswith("+json"):
            return "json"
        if csv_ok and ctype == "text/csv":
            return "csv"
        accepted = "application/json" + (" or text/csv" if csv_ok else "")
        raise HTTPProblem(415, "unsupported_media_type", f"Content-Type {ctype!r} is not supported; send {accepted}.")

    def _respond(self, status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
        return _JSONResponse(dumps(body), status, headers)

    def _problem(self, p: HTTPProblem, rid: str) -> Any:
        body: dict[str, Any] = {"error": p.message, "code": p.code, "request_id": rid}
        if p.problems:
            body["problems"] = p.problems
        return self._respond(p.status, body, {"x-request-id": rid, **p.headers})

    def _finish(self, api: str, rid: str, t0: float, status: int, answer: Answer | None, dep: Deployment | None) -> None:
        m = self.metrics
        if answer is not None:
            if answer.runtime is not None:
                model, version = answer.runtime.name, str(answer.runtime.version)
            else:
                model, version = (dep.primary.name if dep else ""), "constant"
        else:
            model, version = (dep.endpoint if dep else ""), ""
        key = (model, version, api, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                m.requests.labels(model, version, api, str(status)), m.request_latency.labels(model, api)
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - t0)

    async def _serve(self, request: Any, api: str) -> Any:
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
            dep = self._enter(params.get("name"))
            kind = self._check_type(request, csv_ok=api == "invocations")
            body = await self._read_body(request, dep)
            version = params.get("version")
            if version is not None:
                try:
                    version = int(version)
                except ValueError:
                    raise HTTPProblem(404, "unknown_version", f"Version {version!r} is not a number.") from None
            v2_id = None
            obj: Any = None
            if kind == "csv":
                payload = _csv_payload(body)
            else:
                obj = loads(body)
                if api == "native":
                    payload, body_version = decode_native(obj, dep.columns)
                    version = body_version if body_version is not None else version
                elif api == "invocations":
                    payload = decode_mlflow(obj, dep.columns)
                else:
                    payload, v2_id = decode_v2(obj, dep.columns)
            if _wants_proba(request, obj if kind == "json" else None, api):
                payload.options = {"proba": True}
            if payload.n > dep.spec.limits.max_rows:
                raise HTTPProblem(413, "too_many_rows", f"The request has {payload.n} rows; the limit is {dep.spec.limits.max_rows}.")
            answer = await dep.answer(payload, version=version, headers=request.headers, request_id=rid)
            latency_ms = (time.perf_counter() - t0) * 1000
            self._log_prediction(rid, dep, payload, answer, latency_ms)
            return self._render(api, answer, rid, v2_id, bool(payload.options))
        except HTTPProblem as p:
            status = p.status
            if status == 429:
                m.rejected.labels(dep.endpoint if dep else "").inc()
            return self._problem(p, rid)
        except RecursionError:  # a value nested too deep for some library on the way
            status = 400
            return self._problem(HTTPProblem(400, "too_deep", "The request nests values too deeply."), rid)
        except Exception as exc:  # a bug: answer it, keep the worker alive, log it
            log.exception("unexpected error answering %s", rid)
            status = 503
            return self._problem(HTTPProblem(503, "internal_error", f"The server failed: {type(exc).__name__}: {exc}"), rid)
        finally:
            if dep is not None:
                dep.leave()
            m.in_flight.dec()
            self._finish(api, rid, t0, status, answer, dep)

    def _log_prediction(self, rid: str, dep: Deployment, payload: Payload, answer: Answer, latency_ms: float) -> None:
        pl = self.predlog
        if pl is None or not pl.sampled():
            return
        from modelyard.serving._routing import logged_inputs

        rt = answer.runtime or dep.primary
        inputs = logged_inputs(answer.payload or payload, rt.inputs.dtypes)
        output = answer.output
        if payload.options and answer.runtime is not None:  # probabilities: log the most likely class
            import numpy as np

            probs = np.asarray(output)
            if probs.ndim == 2 and rt.classes is not None and probs.shape[1] == len(rt.classes):
                output = np.asarray(rt.classes)[probs.argmax(axis=1)]
        pl.log(rid, rt.name, rt.version, inputs, output, latency_ms, answer.fallback, sample=False)

    def _render(self, api: str, answer: Answer, rid: str, v2_id: Any, proba: bool = False) -> Any:
        rt = answer.runtime
        classes = rt.classes if proba and rt is not None else None
        version = rt.version if rt is not None else None
        headers = {"x-request-id": rid}
        if version is not None:
            headers["x-model-version"] = str(version)
        if answer.fallback:
            headers["x-fallback"] = answer.reason or "true"
        if api == "native":
            body: dict[str, Any] = {
                "model": rt.name if rt is not None else self._deployment.endpoint if self._deployment else None,
                "version": version,
                "request_id": rid,
                "predictions": to_jsonable(answer.output),
                "fallback": answer.fallback,
            }
            if answer.fallback:
                body["fallback_reason"] = answer.reason
            if classes is not None:
                body["classes"] = classes
            return self._respond(200, body, headers)
        if api == "invocations":
            inv: dict[str, Any] = {"predictions": to_jsonable(answer.output)}
            if classes is not None:
                inv["classes"] = classes
            return self._respond(200, inv, headers)
        import numpy as np

        out = answer.output if rt is not None else np.asarray(answer.output)
        body = {
            "model_name": rt.name if rt is not None else (self._deployment.endpoint if self._deployment else ""),
            "model_version": str(version) if version is not None else "constant",
            "id": v2_id if v2_id is not None else rid,
            "outputs": v2_outputs(out, "probabilities" if proba else "predict"),
        }
        if classes is not None:
            body["outputs"][0]["parameters"] = {"classes": classes}
        if answer.fallback:
            body["parameters"] = {"fallback": True, "fallback_reason": answer.reason}
        return self._respond(200, body, headers)

    # -- routes ------------------------------------------------------------------------------------
    def _build_starlette(self) -> Any:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
        from starlette.routing import Route

        async def native(request: Any) -> Any:
            return await self._serve(request, "native")

        async def invocations(request: Any) -> Any:
            return await self._serve(request, "invocations")

        async def v2_infer(request: Any) -> Any:
            return await self._serve(request, "v2")

        def guarded(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
            """Every route answers; an exception is never re-raised into the server (which would
            drop the connection after the answer)."""

            async def run(request: Any) -> Any:
                try:
                    return await handler(request)
                except HTTPProblem as p:
                    return self._problem(p, "")
                except RecursionError:
                    return self._problem(HTTPProblem(400, "too_deep", "The request nests values too deeply."), "")
                except HTTPException:
                    raise
                except Exception as exc:
                    log.exception("unexpected error on %s", request.url.path)
                    return self._problem(HTTPProblem(503, "internal_error",
                                                     f"The server failed: {type(exc).__name__}: {exc}"), "")

            return run

        def route(path: str, handler: Callable[[Any], Any], methods: list[str]) -> Any:
            return Route(path, guarded(handler), methods=methods)

        routes = [
            route("/v1/models/{name}/predict", native, methods=["POST"]),
            route("/v1/models/{name}/versions/{version}/predict", native, methods=["POST"]),
            route("/v1/models/{name}/feedback", self._feedback, methods=["POST"]),
            route("/v1/models", self._models, methods=["GET"]),
            route("/v1/models/{name}", self._model, methods=["GET"]),
            route("/invocations", invocations, methods=["POST"]),
            route("/ping", self._live, methods=["GET"]),
            route("/health", self._ready, methods=["GET"]),
            route("/health/live", self._live, methods=["GET"]),
            route("/health/ready", self._ready, methods=["GET"]),
            route("/v2", self._v2_server, methods=["GET"]),
            route("/v2/health/live", self._v2_live, methods=["GET"]),
            route("/v2/health/ready", self._v2_ready, methods=["GET"]),
            route("/v2/models/{name}", self._v2_model, methods=["GET"]),
            route("/v2/models/{name}/versions/{version}", self._v2_model, methods=["GET"]),
            route("/v2/models/{name}/ready", self._v2_model_ready, methods=["GET"]),
            route("/v2/models/{name}/versions/{version}/ready", self._v2_model_ready, methods=["GET"]),
            route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
            route("/v2/models/{name}/versions/{version}/infer", v2_infer, methods=["POST"]),
            route("/metrics", self._metrics, methods=["GET"]),
            route("/openapi.json", self._openapi, methods=["GET"]),
            route("/admin/spec", self._admin_spec, methods=["GET", "PUT", "POST"]),
        ]

        async def http_error(request: Any, exc: Any) -> Any:
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
            msg = {
                404: f"No route {request.url.path!r}; see /openapi.json for the endpoints.",
                405: f"{request.method} is not allowed on {request.url.path!r}.",
            }.get(exc.status_code, str(exc.detail))
            return self._respond(exc.status_code, {"error": msg, "code": code}, dict(exc.headers or {}))

        async def any_error(request: Any, exc: Exception) -> Any:
            log.exception("unexpected error on %s", request.url.path)
            return self._respond(503, {"error": f"The server failed: {type(exc).__name__}: {exc}", "code": "internal_error"})

        return Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: any_error})

    async def _feedback(self, request: Any) -> Any:
        from modelyard.serving._routing import feedback

        return await feedback(self, request)

    async def _live(self, request: Any) -> Any:
        return self._respond(200, {"status": "alive"})

    def _readiness(self) -> tuple[bool, dict[str, Any]]:
        dep = self._deployment
        if dep is None:
            return False, {"status": "not_ready", "reason": self.last_swap.get("error") or "loading", "last_swap": self.last_swap}
        ok = all(rt.warmed for rt in dep.all_runtimes())
        body = {"status": "ready" if ok else "warming", **dep.describe(), "last_swap": self.last_swap}
        return ok, body

    async def _ready(self, request: Any) -> Any:
        ok, body = self._readiness()
        return self._respond(200 if ok else 503, body)

    async def _models(self, request: Any) -> Any:
        dep = self._deployment
        return self._respond(200, {"models": [dep.describe()] if dep else []})

    async def _model(self, request: Any) -> Any:
        try:
            dep = self._enter(request.path_params["name"])
        except HTTPProblem as p:
            return self._problem(p, "")
        dep.leave()
        return self._respond(200, dep.describe())

    async def _v2_server(self, request: Any) -> Any:
        from modelyard._version import __version__

        return self._respond(200, {"name": "modelyard", "version": __version__, "extensions": []})

    async def _v2_live(self, request: Any) -> Any:
        return self._respond(200, {"live": True})

    async def _v2_ready(self, request: Any) -> Any:
        ok, _ = self._readiness()
        return self._respond(200 if ok else 503, {"ready": ok})

    def _v2_lookup(self, request: Any) -> tuple[Deployment, Any]:
        dep = self._enter(request.path_params["name"])
        dep.leave()
        version = request.path_params.get("version")
        rt = dep.primary
        if version is not None:
            try:
                rt = dep.runtime_for(int(version))
            except ValueError:
                raise HTTPProblem(404, "unknown_version", f"Version {version!r} is not a number.") from None
        return dep, rt

    async def _v2_model(self, request: Any) -> Any:
        try:
            dep, rt = self._v2_lookup(request)
        except HTTPProblem as p:
            return self._respond(p.status, {"error": p.message})
        sig = getattr(rt.model, "signature", None)
        inputs = [
            {"name": s.name, "datatype": _v2_type(str(getattr(s, "dtype", ""))), "shape": [-1]}
            for s in (getattr(sig, "inputs", None) or [])
        ]
        return self._respond(200, {
            "name": dep.endpoint,
            "versions": [str(v) for v in sorted(dep.by_version)],
            "platform": f"modelyard-{getattr(rt.model, 'flavor', 'model')}",
            "inputs": inputs,
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
        })

    async def _v2_model_ready(self, request: Any) -> Any:
        try:
            _, rt = self._v2_lookup(request)
        except HTTPProblem as p:
            return self._respond(p.status, {"error": p.message})
        return self._respond(200 if rt.warmed else 503, {"name": rt.name, "ready": rt.warmed})

    async def _metrics(self, request: Any) -> Any:
        from starlette.responses import Response

        dep = self._deployment
        if dep is not None:
            for rt in dep.all_runtimes():
                rt.metrics.queue_depth  # noqa: B018 - gauges are updated on the fly
        data, ctype = await asyncio.to_thread(self.metrics.render)
        return Response(data, media_type=ctype.split(";")[0], headers={"content-type": ctype})

    async def _openapi(self, request: Any) -> Any:
        from modelyard._version import __version__
        from modelyard.serving._openapi import openapi_document

        dep = self._deployment
        endpoint = dep.endpoint if dep else "{name}"
        sig = getattr(dep.primary.model, "signature", None) if dep else None
        return self._respond(200, openapi_document(endpoint, sig, __version__))

    def _authorized(self, request: Any) -> None:
        if not self._admin_token:
            raise HTTPProblem(
                403, "admin_disabled",
                f"The admin API is off. Start the server with {_ADMIN_ENV} set (or admin_token=...) to enable it.",
            )
        got = request.headers.get("authorization", "")
        token = got[7:] if got.lower().startswith("bearer ") else ""
        if not token or not hmac.compare_digest(token.encode(), self._admin_token.encode()):
            raise HTTPProblem(401, "unauthorized", "Send 'Authorization: Bearer <token>' with the admin token.",
                              headers={"www-authenticate": "Bearer"})

    async def _admin_spec(self, request: Any) -> Any:
        from starlette.concurrency import run_in_threadpool

        try:
            self._authorized(request)
            if request.method == "GET":
                spec = self.spec
                return self._respond(200, {"spec": spec.model_dump(mode="json") if spec else None,
                                           "last_swap": self.last_swap})
            dep = self._deployment
            limit = dep.spec.limits.max_body_bytes if dep else 10 * 1024 * 1024
            body = await request.body()
            if len(body) > limit:
                raise HTTPProblem(413, "body_too_large", f"The spec is larger than {limit} bytes.")
            try:
                text = body.decode()
                new_spec = load_spec(text)
            except (UnicodeDecodeError, ModelyardError) as exc:
                raise HTTPProblem(422, "invalid_spec", str(exc)) from None
            try:
                await run_in_threadpool(self.swap, new_spec)
            except SwapError as exc:
                raise HTTPProblem(422, "swap_failed", str(exc)) from None
            if self.persist_swaps and self.spec_path is not None:
                await run_in_threadpool(self._persist, new_spec.to_yaml())
            return self._respond(200, {"status": "swapped", "last_swap": self.last_swap})
        except HTTPProblem as p:
            return self._problem(p, "")


def _predict_route(path: str) -> tuple[str, dict[str, str]] | None:
    """``(api, path params)`` for the predict endpoints, else None (Starlette routes the rest)."""
    if path == "/invocations":
        return "invocations", {}
    for prefix, suffix, api in (("/v1/models/", "/predict", "native"), ("/v2/models/", "/infer", "v2")):
        if path.startswith(prefix) and path.endswith(suffix):
            parts = path[len(prefix) : len(path) - len(suffix)].split("/")
            if len(parts) == 1 and parts[0]:
                return api, {"name": parts[0]}
            if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
                return api, {"name": parts[0], "version": parts[2]}
            return None
    return None


class _RawRequest:
    """The little of a Starlette Request that ``_serve`` uses, straight from the ASGI scope."""

    __slots__ = ("_receive", "headers", "path_params", "query")

    def __init__(self, scope: Any, receive: Any, params: dict[str, str]) -> None:
        self._receive = receive
        self.query: bytes = scope.get("query_string", b"")
        # Every header, lower-cased: traffic policies read their own (sticky keys, preview, A/B arms).
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.path_params = params

    async def read(self, limit: int) -> bytes:
        """The whole body (at most ``limit`` bytes); one ``receive`` when it came in one message."""
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body = message.get("body", b"")
            if len(body) > limit:
                raise HTTPProblem(413, "body_too_large", f"The body is larger than the limit of {limit} bytes.")
            return body
        if message["type"] == "http.disconnect":
            raise HTTPProblem(400, "client_disconnected", "The client disconnected before sending the body.")
        chunks = [message.get("body", b"")]
        size = len(chunks[0])
        if size > limit:
            raise HTTPProblem(413, "body_too_large", f"The body is larger than the limit of {limit} bytes.")
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPProblem(413, "body_too_large", f"The body is larger than the limit of {limit} bytes.")
            chunks.append(chunk)
        return b"".join(chunks)

    async def stream(self) -> Any:
        while True:
            message = await self._receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    yield body
                if not message.get("more_body", False):
                    return
            elif message["type"] == "http.disconnect":
                raise HTTPProblem(400, "client_disconnected", "The client disconnected before sending the body.")


class _JSONResponse:
    """A JSON response sent as two ASGI messages (what Starlette's Response does, minus its
    header machinery on the hot path). Usable wherever Starlette expects a response."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status
        self.headers = headers

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        if self.headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


_TRUE = ("true", "1", "yes")


def _wants_proba(request: Any, obj: Any, api: str) -> bool:
    """Whether a request asks for class probabilities: ``?proba=true``, ``"params": {"proba": true}``
    (our API and /invocations) or, in V2, the named output ``probabilities``."""
    from urllib.parse import parse_qs

    raw = request.query if type(request) is _RawRequest else request.url.query.encode()
    if raw and b"proba" in raw:
        values = parse_qs(raw.decode("latin-1")).get("proba", [])
        if values:
            if values[-1].lower() not in (*_TRUE, "false", "0", "no"):
                raise HTTPProblem(400, "bad_format", f"?proba must be true or false. Got {values[-1][:40]!r} instead.")
            return values[-1].lower() in _TRUE
    if not isinstance(obj, dict):
        return False
    if api == "v2":
        outputs = obj.get("outputs")
        if outputs is None:
            return False
        if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
            raise HTTPProblem(400, "bad_format", "'outputs' must be a list of {'name': ...}; the outputs are "
                              "'predict' and 'probabilities'.")
        names = {o["name"] for o in outputs}
        unknown = names - {"predict", "probabilities"}
        if unknown:
            name = sorted(unknown)[0]
            raise HTTPProblem(400, "bad_format", f"Unknown output {name[:80]!r}; the outputs are 'predict' and "
                              "'probabilities'." + did_you_mean(name, ["predict", "probabilities"]))
        return "probabilities" in names
    params = obj.get("params")
    if params is None:
        return False
    if not isinstance(params, dict) or not isinstance(params.get("proba", False), bool):
        raise HTTPProblem(400, "bad_format", '\'params\' must be an object like {"proba": true}.')
    return bool(params.get("proba", False))


def _v2_type(dtype: str) -> str:
    d = dtype.lower()
    if "bool" in d:
        return "BOOL"
    if "int" in d:
        return "INT64"
    if "float" in d or "double" in d:
        return "FP64"
    return "BYTES"


def _csv_payload(body: bytes) -> Payload:
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:
        raise HTTPProblem(400, "malformed_csv", f"The CSV body does not parse: {exc}") from None
    if not len(frame):
        raise HTTPProblem(400, "no_rows", "The CSV body has a header but no rows.")
    # an empty cell is a missing value: None, as JSON null would be (NaN is refused as a value)
    cols = {str(c): frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns}
    payload = Payload(cols, len(frame))
    payload.source = "csv"
    return payload


def build_app(
    spec: DeploymentSpec | str | os.PathLike[str] | dict[str, Any],
    *,
    uri: str | None = None,
    admin_token: str | None = None,
    watch: bool = False,
    loader: Callable[[str], Any] | None = None,
    prediction_log: bool = True,
) -> ModelServer:
    """Build the ASGI model server for ``spec`` (a spec, a dict, YAML/JSON text or a file path).

    Loads and warms every model before returning (raises :class:`SwapError` when one fails).
    ``watch=True`` swaps when the spec file changes; ``admin_token`` (or
    ``YARD_SERVE_ADMIN_TOKEN``) enables ``PUT /admin/spec``.
    """
    return ModelServer(spec, uri=uri, admin_token=admin_token, watch=watch, loader=loader,
                       prediction_log=prediction_log)
