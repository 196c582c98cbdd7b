"""The server's one route table, and what is built from it.

Every endpoint is one :class:`Route` row in :data:`ROUTES`. Three things are derived from
that table and from nothing else:

* :class:`FastRouter`: the hot path. Rows with ``api`` set (the predict endpoints) are
  matched straight on the ASGI scope, skipping Starlette's router and middleware;
* :func:`starlette_app`: the Starlette app that answers every other request (and the predict
  rows too, when called through it);
* :func:`modelyard.serving._openapi.openapi_document`: the ``/openapi.json`` paths.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelyard.serving._admin import admin_get_spec, admin_put_spec
from modelyard.serving._codec import HTTPProblem
from modelyard.serving._http import problem, respond
from modelyard.serving._v2 import v2_live, v2_model, v2_model_ready, v2_ready, v2_server

if TYPE_CHECKING:
    from modelyard.serving._app import ModelServer

__all__ = ["PREDICT_APIS", "ROUTES", "FastRouter", "Handler", "Route", "starlette_app"]

log = logging.getLogger("modelyard.serving")

#: A route's handler: ``await handler(server, request)`` returns the response.
Handler = Callable[["ModelServer", Any], Awaitable[Any]]
#: The predict APIs (wire formats) the hot path answers.
PREDICT_APIS = ("native", "invocations", "v2")


@dataclass(frozen=True)
class Route:
    """One endpoint: what answers it and how ``/openapi.json`` documents it."""

    method: str  #: "GET", "POST" or "PUT" (a GET route answers HEAD too)
    path: str  #: a Starlette path template: "/v1/models/{name}/predict"
    handler: Handler
    name: str  #: unique; the OpenAPI operationId
    summary: str
    request: str | None = None  #: the request body's schema (a name in components/schemas)
    response: str | None = None  #: the 200 answer's schema (a name in components/schemas)
    #: documented parameters: "version" (path), "proba" (query), "binary_header" (the V2 binary
    #: extension's Inference-Header-Content-Length header)
    params: tuple[str, ...] = ()
    errors: tuple[tuple[int, str], ...] = ()  #: every other status it answers: (status, description)
    ok: str = "OK"  #: the 200 answer's description
    auth: bool = False  #: needs ``Authorization: Bearer <admin token>``
    api: str | None = None  #: a predict API ("native", "invocations", "v2"): the fast path answers it
    tag: str = "predict"  #: the OpenAPI tag (group)
    error_schema: str = "Error"  #: the schema of the ``errors`` answers' bodies
    status_schemas: tuple[tuple[int, str], ...] = ()  #: (status, schema) where it is not error_schema
    media: str = "application/json"  #: the 200 answer's media type
    request_media: tuple[str, ...] = ()  #: media types of the body besides JSON (a string schema)
    response_media: tuple[str, ...] = ()  #: media types of the 200 answer besides ``media``


# -- the handlers of the core routes (V2 and admin ones live in _v2.py and _admin.py) ---------------
def _predict(api: str) -> Handler:
    async def predict(server: ModelServer, request: Any) -> Any:
        return await server.predict(request, api)

    predict.__name__ = f"predict_{api}"
    return predict


async def _live(server: ModelServer, request: Any) -> Any:
    return respond(200, {"status": "alive"})


async def _ready(server: ModelServer, request: Any) -> Any:
    ok, body = server.readiness()
    return respond(200 if ok else 503, body)


async def _models(server: ModelServer, request: Any) -> Any:
    dep = server.deployment
    return respond(200, {"models": [dep.describe()] if dep else []})


async def _model(server: ModelServer, request: Any) -> Any:
    try:
        dep = server.enter(request.path_params["name"])
    except HTTPProblem as p:
        return problem(p, "")
    dep.leave()
    return respond(200, dep.describe())


async def _feedback(server: ModelServer, request: Any) -> Any:
    from modelyard.serving._routing import feedback

    return await feedback(server, request)


async def _metrics(server: ModelServer, request: Any) -> Any:
    from starlette.responses import Response

    dep = server.deployment
    if dep is not None:
        for rt in dep.all_runtimes():
            rt.metrics.queue_depth  # noqa: B018 - gauges are updated on the fly
    data, ctype = await asyncio.to_thread(server.metrics.render)
    return Response(data, media_type=ctype.split(";")[0], headers={"content-type": ctype})


async def _openapi(server: ModelServer, request: Any) -> Any:
    from modelyard._version import __version__
    from modelyard.serving._openapi import openapi_document

    dep = server.deployment
    endpoint = dep.endpoint if dep else "{name}"
    sig = getattr(dep.primary.model, "signature", None) if dep else None
    max_rows = dep.spec.limits.max_rows if dep else 100_000
    doc = openapi_document(endpoint, sig, __version__, server.routes, max_rows=max_rows)
    return respond(200, doc)


PREDICT_ERRORS = (
    (400, "Malformed JSON, body shape, or nesting deeper than 64 levels"),
    (404, "Unknown model or version"),
    (408, "Headers or body not received within the limits' deadlines"),
    (413, "Body too large"),
    (415, "Unsupported content type"),
    (422, "Input does not match the model signature (every problem listed)"),
    (429, "Queue full; see Retry-After"),
    (503, "Model failed and no fallback answered, or not ready"),
    (504, "Model timed out and no fallback is configured"),
)
_FEEDBACK_ERRORS = (
    (400, "Malformed JSON or feedback items"),
    (404, "Unknown model"),
    (408, "Headers or body not received within the limits' deadlines"),
    (409, "No A/B test runs on this endpoint"),
    (413, "Body too large"),
    (422, "A string that is not valid Unicode"),
    (503, "Not ready"),
)
_MODEL_ERRORS = ((404, "Unknown model or version"), (503, "No deployment is loaded yet"))
_NOT_READY = ((503, "Not ready (same body)"),)
_AUTH_ERRORS = ((401, "No or wrong admin token"), (403, "The admin API is off (no admin token configured)"))
_SWAP_ERRORS = (
    *_AUTH_ERRORS,
    (408, "Headers or body not received within the limits' deadlines"),
    (409, "Another swap replaced this one before every worker applied it"),
    (413, "Spec too large"),
    (422, "Spec invalid or a model failed to load; the old spec keeps serving"),
    (503, "A worker failed to apply the spec: every worker is back on the old spec"),
    (504, "Not every worker applied the spec in time (see 'workers')"),
)
_SWAP_SCHEMAS = ((409, "SwapError"), (503, "SwapError"), (504, "SwapError"))
_SWAP = "Swap to a new deployment spec (YAML or JSON); answers once every worker serves it"
_V = ("version",)


def _admin(method: str, path: str, handler: Handler, name: str, summary: str, **kw: Any) -> Route:
    return Route(method, path, handler, name, summary, tag="admin", auth=True, **kw)


def _swap_route(method: str, name: str, summary: str) -> Route:
    return _admin(
        method,
        "/admin/spec",
        admin_put_spec,
        name,
        summary,
        request="DeploymentSpecInput",
        request_media=("application/yaml",),
        response="Swapped",
        errors=_SWAP_ERRORS,
        status_schemas=_SWAP_SCHEMAS,
        ok="Swapped: every worker serves the new spec",
    )


def _get(path: str, handler: Handler, name: str, summary: str, response: str, **kw: Any) -> Route:
    return Route("GET", path, handler, name, summary, response=response, **kw)


def _health(path: str, handler: Handler, name: str, summary: str, response: str, **kw: Any) -> Route:
    return _get(path, handler, name, summary, response, tag="health", **kw)


def _v2(path: str, handler: Handler, name: str, summary: str, response: str, **kw: Any) -> Route:
    return _get(path, handler, name, summary, response, tag="v2", **{"error_schema": "V2Error", **kw})


#: Every endpoint of the server, in the order of /openapi.json.
ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/v1/models/{name}/predict",
        _predict("native"),
        "predict",
        "Predict (records or columns+data)",
        "PredictRequest",
        "PredictResponse",
        ("proba",),
        PREDICT_ERRORS,
        "Predictions",
        api="native",
    ),
    Route(
        "POST",
        "/v1/models/{name}/versions/{version}/predict",
        _predict("native"),
        "predict_version",
        "Predict on a pinned version",
        "PredictRequest",
        "PredictResponse",
        ("version", "proba"),
        PREDICT_ERRORS,
        "Predictions",
        api="native",
    ),
    Route(
        "POST",
        "/v1/models/{name}/feedback",
        _feedback,
        "feedback",
        "A/B test outcomes (while traffic.kind is 'ab')",
        "Feedback",
        "FeedbackResponse",
        (),
        _FEEDBACK_ERRORS,
        "Accepted",
    ),
    _get("/v1/models", _models, "models", "Served models", "Models", tag="models"),
    _get(
        "/v1/models/{name}",
        _model,
        "model",
        "The served model: versions, breaker state, inputs",
        "Deployment",
        tag="models",
        errors=_MODEL_ERRORS,
    ),
    Route(
        "POST",
        "/invocations",
        _predict("invocations"),
        "invocations",
        "MLflow scoring protocol (dataframe_split, dataframe_records, instances, inputs; text/csv "
        "with a header row)",
        "MLflowRequest",
        "MLflowResponse",
        ("proba",),
        PREDICT_ERRORS,
        "Predictions",
        api="invocations",
        request_media=("text/csv",),
    ),
    Route(
        "POST",
        "/v2/models/{name}/infer",
        _predict("v2"),
        "v2_infer",
        "Open Inference Protocol (V2) infer",
        "V2InferRequest",
        "V2InferResponse",
        ("proba", "binary_header"),
        PREDICT_ERRORS,
        "Predictions",
        api="v2",
        tag="v2",
        request_media=("application/octet-stream",),
        response_media=("application/octet-stream",),
    ),
    Route(
        "POST",
        "/v2/models/{name}/versions/{version}/infer",
        _predict("v2"),
        "v2_infer_version",
        "V2 infer on a pinned version",
        "V2InferRequest",
        "V2InferResponse",
        ("version", "proba", "binary_header"),
        PREDICT_ERRORS,
        "Predictions",
        api="v2",
        tag="v2",
        request_media=("application/octet-stream",),
        response_media=("application/octet-stream",),
    ),
    _v2(
        "/v2/models/{name}",
        v2_model,
        "v2_model",
        "V2 model metadata",
        "V2ModelMetadata",
        errors=_MODEL_ERRORS,
    ),
    _v2(
        "/v2/models/{name}/versions/{version}",
        v2_model,
        "v2_model_version",
        "V2 model metadata of a version",
        "V2ModelMetadata",
        params=_V,
        errors=_MODEL_ERRORS,
    ),
    _v2(
        "/v2/models/{name}/ready",
        v2_model_ready,
        "v2_model_ready",
        "V2 model readiness",
        "V2ModelReady",
        errors=((404, "Unknown model"), (503, "Not warmed yet, or no deployment loaded")),
        status_schemas=((503, "V2NotReady"),),
    ),
    _v2(
        "/v2/models/{name}/versions/{version}/ready",
        v2_model_ready,
        "v2_model_version_ready",
        "V2 readiness of a version",
        "V2ModelReady",
        params=_V,
        errors=((404, "Unknown model or version"), (503, "Not warmed yet, or no deployment loaded")),
        status_schemas=((503, "V2NotReady"),),
    ),
    _v2("/v2", v2_server, "v2_server", "V2 server metadata", "V2ServerMetadata"),
    _v2("/v2/health/live", v2_live, "v2_live", "V2 liveness", "V2Live"),
    _v2(
        "/v2/health/ready",
        v2_ready,
        "v2_ready",
        "V2 readiness",
        "V2Ready",
        errors=_NOT_READY,
        error_schema="V2Ready",
    ),
    _health("/health/live", _live, "live", "Liveness", "Live"),
    _health("/ping", _live, "ping", "Liveness (MLflow/SageMaker name)", "Live"),
    _health(
        "/health",
        _ready,
        "health",
        "Readiness (alias of /health/ready)",
        "Readiness",
        errors=_NOT_READY,
        error_schema="Readiness",
    ),
    _get("/openapi.json", _openapi, "openapi", "This document", "OpenAPI", tag="meta"),
    _health(
        "/health/ready",
        _ready,
        "ready",
        "Readiness: every model of the spec loaded and warmed; last swap error",
        "Readiness",
        errors=_NOT_READY,
        error_schema="Readiness",
    ),
    _get("/metrics", _metrics, "metrics", "Prometheus metrics", "Metrics", tag="meta", media="text/plain"),
    _admin(
        "GET",
        "/admin/spec",
        admin_get_spec,
        "admin_get_spec",
        "Current deployment spec, and each worker's applied spec",
        response="AdminSpec",
        errors=_AUTH_ERRORS,
    ),
    _swap_route("PUT", "admin_put_spec", _SWAP),
    _swap_route("POST", "admin_post_spec", f"{_SWAP}; same as PUT"),
)


class FastRouter:
    """Matches the rows of a route table that have ``api`` set, straight on a request path.

    A ``{param}`` segment matches one non-empty path segment, as in Starlette."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(r for r in routes if r.api is not None)
        self._exact: dict[tuple[str, str], Route] = {}
        self._patterns: dict[str, list[tuple[re.Pattern[str], Route]]] = {}
        for r in self.routes:
            if "{" not in r.path:
                self._exact[(r.method, r.path)] = r
                continue
            regex = "".join(
                f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part)
                for part in re.split(r"(\{[^/{}]+\})", r.path)
            )
            self._patterns.setdefault(r.method, []).append((re.compile(regex + r"\Z"), r))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """``(route, path params)`` of the row answering ``method path``, or None."""
        route = self._exact.get((method, path))
        if route is not None:
            return route, {}
        for pattern, route in self._patterns.get(method, ()):
            m = pattern.match(path)
            if m is not None:
                return route, m.groupdict()
        return None


def _guarded(server: ModelServer, rows: dict[str, Route]) -> Callable[[Any], Awaitable[Any]]:
    """The Starlette endpoint of one path: the row of the request's method answers. Every route
    answers; an exception is never re-raised into the server (which would drop the connection
    after the answer)."""
    from starlette.exceptions import HTTPException

    async def endpoint(request: Any) -> Any:
        route = rows.get(request.method) or rows["GET"]  # HEAD: Starlette allows it on GET routes only
        try:
            return await route.handler(server, request)
        except HTTPProblem as p:
            return problem(p, "")
        except RecursionError:
            return problem(HTTPProblem(400, "too_deep", "The request nests values too deeply."), "")
        except HTTPException:
            raise
        except Exception as exc:
            log.exception("unexpected error on %s", request.url.path)
            return problem(
                HTTPProblem(503, "internal_error", f"The server failed: {type(exc).__name__}: {exc}"), ""
            )

    return endpoint


def starlette_app(server: ModelServer, routes: Sequence[Route]) -> Any:
    """The Starlette app answering ``routes`` for ``server`` (one Starlette route per path)."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.routing import Route as StarletteRoute

    by_path: dict[str, dict[str, Route]] = {}
    for r in routes:
        by_path.setdefault(r.path, {})[r.method] = r
    mounted = [
        StarletteRoute(path, _guarded(server, rows), methods=list(rows), name=next(iter(rows.values())).name)
        for path, rows in by_path.items()
    ]

    async def http_error(request: Any, exc: Any) -> Any:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        msg = {
            404: f"No route {request.url.path!r}; see /openapi.json for the endpoints.",
            405: f"{request.method} is not allowed on {request.url.path!r}.",
        }.get(exc.status_code, str(exc.detail))
        return respond(exc.status_code, {"error": msg, "code": code}, dict(exc.headers or {}))

    async def any_error(request: Any, exc: Exception) -> Any:
        log.exception("unexpected error on %s", request.url.path)
        return respond(
            503, {"error": f"The server failed: {type(exc).__name__}: {exc}", "code": "internal_error"}
        )

    return Starlette(routes=mounted, exception_handlers={HTTPException: http_error, Exception: any_error})
