"""``yard server``: the HTTP API over every service, with users, tokens and roles.

Routes are generated from the services' operations (:mod:`modelyard._rpc`), so the API, the
Python client and the OpenAPI document (``/api/v1/openapi.json``, browsable at ``/api/v1/docs``)
are one table. Every route under ``/api/v1`` but the version handshake needs a bearer token (or,
in trusted-header mode, the user a proxy names); the role each operation needs is checked before
it runs, and each mutating call is recorded under the caller's name.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Connection

from modelyard import errors
from modelyard._remote import API_VERSION, codec
from modelyard._rpc import OpSpec, Principal, current_principal, operations
from modelyard._shared import now_ms
from modelyard._version import __version__
from modelyard._workspace import Workspace
from modelyard.server._access import ObjectNames
from modelyard.server._access import scopes as _scopes
from modelyard.server._auth import AUTH_MODES, TooManyAttempts, _Authenticator
from modelyard.server._errors import (
    api_headers,
    error_response,
    install_error_handlers,
    op_responses,
    status_for,
)
from modelyard.server._schema import idempotency_keys
from modelyard.server._users import AuthService
from modelyard.store._store import before_write

__all__ = ["AUTH_MODES", "ServerSettings", "TooManyAttempts", "create_app", "service_classes", "status_for"]

log = logging.getLogger("modelyard.server")

# the web UI door imports these from here: _Authenticator, _scopes, status_for, TooManyAttempts
_ = (_Authenticator, error_response)


@dataclass
class ServerSettings:
    """How a server runs (the CLI's flags; ``YARD_SERVER_*`` for worker processes)."""

    uri: str | None = None
    blob_uri: str | None = None
    auth: str = "token"
    #: Header an authenticating proxy sets to the user's name (auth mode ``header``).
    user_header: str = "X-Forwarded-User"
    #: Largest JSON body of an operation (bytes).
    max_body: int = 256 << 20
    #: Largest blob upload (bytes).
    max_upload: int = 1 << 40
    cors_origins: list[str] = field(default_factory=list)
    #: Failed authentications allowed per client address before 429, refilled one per ``refill_s``.
    failed_auth_burst: int = 20
    failed_auth_refill_s: float = 3.0
    #: With an S3 blob location: hand clients short-lived presigned URLs (they still never hold keys).
    presign: bool = False
    presign_expires_s: int = 300

    @classmethod
    def from_env(cls) -> ServerSettings:
        env = os.environ
        return cls(
            uri=env.get("YARD_URI") or None,
            blob_uri=env.get("YARD_BLOB_URI") or None,
            auth=env.get("YARD_SERVER_AUTH", "token"),
            user_header=env.get("YARD_SERVER_USER_HEADER", "X-Forwarded-User"),
            max_body=int(env.get("YARD_SERVER_MAX_BODY", str(256 << 20))),
            max_upload=int(env.get("YARD_SERVER_MAX_UPLOAD", str(1 << 40))),
            cors_origins=[o for o in env.get("YARD_SERVER_CORS", "").split(",") if o],
            presign=env.get("YARD_SERVER_PRESIGN", "") == "1",
        )

    def to_env(self) -> dict[str, str]:
        out = {
            "YARD_SERVER_AUTH": self.auth,
            "YARD_SERVER_USER_HEADER": self.user_header,
            "YARD_SERVER_MAX_BODY": str(self.max_body),
            "YARD_SERVER_MAX_UPLOAD": str(self.max_upload),
            "YARD_SERVER_CORS": ",".join(self.cors_origins),
            "YARD_SERVER_PRESIGN": "1" if self.presign else "",
        }
        if self.uri:
            out["YARD_URI"] = self.uri
        if self.blob_uri:
            out["YARD_BLOB_URI"] = self.blob_uri
        return out


def service_classes() -> list[type]:
    """Every service whose operations the server offers."""
    from modelyard.tracking._service import TrackingService

    classes: list[type] = [TrackingService, AuthService]
    for mod, name in (
        ("modelyard.registry._service", "RegistryService"),
        ("modelyard.data._service", "DataService"),
        ("modelyard.evaluation._service", "EvaluationService"),
        ("modelyard.rollout._service", "RolloutService"),
        ("modelyard.monitoring._store", "MonitoringService"),
        ("modelyard.pipelines._recorder", "RecorderService"),
        ("modelyard.serving._predlog_store", "PredictionLogService"),
        ("modelyard.automation._service", "AutomationService"),
    ):
        import importlib

        cls = getattr(importlib.import_module(mod), name, None)
        if cls is not None and getattr(cls, "_rpc_service", None):
            classes.append(cls)
    return classes


def _idempotency_hash(user: str, key: str) -> str:
    return hashlib.sha256(f"{user}\0{key}".encode()).hexdigest()


def _make_endpoint(app_state: _State, cls: type, spec: OpSpec) -> Callable[..., Response]:
    c = codec(spec)
    names = [p.name for p in spec.parameters()]
    # an operation marked store.one_transaction: its answer is known before it runs, and is recorded
    # with its Idempotency-Key in its own write transaction (no second write after it)
    one_tx = getattr(spec.fn, "__yard_one_transaction__", False) and spec.hints().get("return") is type(None)
    known_answer = c.dump_result(None) if one_tx else None

    def endpoint(request: Request, body: Any) -> Response:
        principal: Principal = request.state.principal
        for kind, target in _scopes(spec, body, app_state.runs):
            if not principal.can(spec.role, kind, target):
                on = f" on {kind} {target!r}" if kind and target else ""
                raise errors.PermissionDeniedError(
                    f"{spec.service}.{spec.name} needs role {spec.role!r}{on}; {principal.name} has "
                    f"{principal.role_on(kind, target)!r}{on}."
                )
        key = request.headers.get("Idempotency-Key") if not spec.read_only else None
        hashed = _idempotency_hash(principal.name, key[:200]) if key else None
        if hashed is not None:
            done = app_state.replay(hashed)
            if done is not None:
                return done
        token = current_principal.set(principal)
        hook_token = (
            before_write.set(app_state.key_recorder(hashed, principal.name, spec, known_answer))
            if hashed
            else None
        )
        try:
            svc = cls(app_state.ws)
            result = spec.fn(svc, **{n: getattr(body, n) for n in names})
            payload = c.dump_result(result)
            status = 200
        except BaseException as exc:
            if hashed is not None:
                app_state.remember(hashed, status_for(exc), error_response(exc).body)
            raise
        finally:
            current_principal.reset(token)
            if hook_token is not None:
                before_write.reset(hook_token)
        if hashed is not None and known_answer is None:
            app_state.remember(hashed, status, payload)
        return Response(payload, media_type="application/json", headers=api_headers())

    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter(
            "body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Annotated[c.args_model, Body()]
        ),
    ]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"{spec.service}_{spec.name}"
    endpoint.__doc__ = inspect.getdoc(spec.fn) or f"{spec.service}.{spec.name}"
    return endpoint


class _State:
    def __init__(self, ws: Workspace) -> None:
        from modelyard.server._metrics import ServerMetrics

        self.ws = ws
        self.runs = ObjectNames(ws)
        self.metrics = ServerMetrics()

    def replay(self, hashed: str) -> Response | None:
        with self.ws.store.read() as conn:
            row = conn.execute(
                sa.select(idempotency_keys.c.status, idempotency_keys.c.response).where(
                    idempotency_keys.c.key == hashed
                )
            ).first()
        if row is None:
            return None
        if row[0] is None:
            return JSONResponse(
                {
                    "error": {
                        "type": "ConflictError",
                        "message": "This request is still being processed; retry.",
                    }
                },
                status_code=409,
                headers={**api_headers(), "X-Yard-Idempotency": "in-progress"},
            )
        return Response(
            bytes(row[1] or b""),
            status_code=int(row[0]),
            media_type="application/json",
            headers={**api_headers(), "X-Yard-Idempotency": "replayed"},
        )

    def key_recorder(
        self, hashed: str, user: str, spec: OpSpec, answer: bytes | None = None
    ) -> Callable[[Connection], None]:
        """Inserts the key in the call's first write transaction: "in progress" (status NULL), or
        with ``answer`` (status 200) when the operation writes once and its answer is known."""

        def record(conn: Connection) -> None:
            try:
                with conn.begin_nested():
                    conn.execute(
                        idempotency_keys.insert().values(
                            key=hashed,
                            user_name=user,
                            operation=f"{spec.service}.{spec.name}",
                            created_at=now_ms(),
                            status=200 if answer is not None else None,
                            response=answer,
                        )
                    )
            except sa.exc.IntegrityError as exc:
                raise errors.ConflictError(
                    "A request with this Idempotency-Key was already applied or is running; "
                    "retry to get its answer."
                ) from exc

        return record

    def remember(self, hashed: str, status: int, body: bytes | memoryview) -> None:
        try:
            self.ws.store.write(
                lambda conn: conn.execute(
                    idempotency_keys.update()
                    .where(idempotency_keys.c.key == hashed)
                    .values(status=status, response=bytes(body))
                )
            )
        except Exception:  # the effect is stored; a retry then answers "in progress" until it expires
            log.warning("could not record the answer of an idempotent request", exc_info=True)


def create_app(
    settings: ServerSettings | None = None,
    *,
    workspace: Workspace | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The server's ASGI app over ``settings.uri`` (or an opened ``workspace``)."""
    settings = settings or ServerSettings()
    if settings.auth not in AUTH_MODES:
        raise errors.ConfigError(
            f"Unknown auth mode {settings.auth!r}; choose one of {', '.join(AUTH_MODES)}."
        )
    ws = workspace or Workspace(settings.uri, blob_uri=settings.blob_uri)
    if ws.remote is not None:
        raise errors.ConfigError(
            "A modelyard server cannot serve another server's store; give it a database URI."
        )
    ws.open()
    ws.store.refresh_statistics()  # PostgreSQL planner statistics stale after a bulk load: see there
    state = _State(ws)
    auth = _Authenticator(ws, settings, clock)
    from modelyard.server._blobs import can_presign

    presigning = settings.presign and can_presign(ws)
    if settings.presign and not presigning:
        raise errors.ConfigError(
            f"--presign-blobs needs an S3 blob location (s3://...); this server's blobs are at {ws.blobs!r}."
        )
    admin_token = os.environ.get("YARD_ADMIN_TOKEN", "").strip()
    if admin_token and settings.auth == "token":
        auth.auth.bootstrap_admin(admin_token)

    app = FastAPI(
        title="modelyard",
        version=__version__,
        description="The modelyard team server: tracking, data, registry, evaluation, rollouts, monitoring.",
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.yard = state
    app.state.settings = settings

    from modelyard.server._blobs import blob_routes
    from modelyard.server._middleware import AuthMiddleware

    install_error_handlers(app)

    @app.get("/api/v1/version", tags=["server"])
    def version() -> dict[str, Any]:
        """The server's API and modelyard versions (no token needed)."""
        return {"api": API_VERSION, "version": __version__, "auth": settings.auth, "presign": presigning}

    @app.get("/health/live", tags=["server"])
    def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "alive"}

    @app.get("/health/ready", tags=["server"], responses={503: {"description": "The store does not answer."}})
    def ready() -> Response:
        """The metadata store answers."""
        try:
            with ws.store.read() as conn:
                conn.execute(sa.text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "not ready", "reason": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", tags=["server"], include_in_schema=False)
    def metrics() -> Response:
        """Requests, latency and refused logins; with ``--workers N`` every worker's, merged."""
        from modelyard._prometheus import render

        text, content_type = render(state.metrics.registry)
        return Response(text, media_type=content_type)

    for cls in service_classes():
        for spec in operations(cls):
            endpoint = _make_endpoint(state, cls, spec)
            summary = (inspect.getdoc(spec.fn) or "").split("\n", 1)[0] or None
            app.add_api_route(
                spec.path,
                endpoint,
                methods=["POST"],
                name=f"{spec.service}.{spec.name}",
                summary=summary,
                tags=[spec.service],
                response_model=codec(spec).result_model,
                responses=op_responses(spec),
            )
    blob_routes(app, state, settings)
    from modelyard.webui import mount as mount_ui

    mount_ui(app, auth)  # the web UI at / (its pages check the same roles as these routes)
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "HEAD"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        )
    app.add_middleware(AuthMiddleware, authenticator=auth, settings=settings, metrics=state.metrics)
    from modelyard.automation import start_in_server

    start_in_server(app, ws)  # the automation scheduler, from startup to shutdown (YARD_AUTOMATE=off: none)
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process started by ``yard server --workers N`` (settings from env).

    With several workers each writes its metric values to the server's ``PROMETHEUS_MULTIPROC_DIR``
    (``/metrics`` merges them) and marks itself dead there when it stops."""
    from modelyard import _prometheus

    _prometheus.use_multiprocess_values()
    app = create_app(ServerSettings.from_env())
    if _prometheus.multiprocess_dir() is not None:
        inner = app.router.lifespan_context

        @contextlib.asynccontextmanager
        async def lifespan(a: Any) -> AsyncIterator[Any]:
            try:
                async with inner(a) as value:
                    yield value
            finally:
                _prometheus.worker_exited()

        app.router.lifespan_context = lifespan
    return app
