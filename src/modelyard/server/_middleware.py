"""Authentication, body-size limits and request metrics, before any route runs.

It runs before routing and body parsing, so a caller without a valid token gets 401 (never a 422 about
a body it should not have been able to send), and an oversized body is refused before it is read.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse

from modelyard import errors
from modelyard.server._metrics import ServerMetrics

if TYPE_CHECKING:
    from modelyard.server._app import ServerSettings
    from modelyard.server._auth import _Authenticator

__all__ = ["AuthMiddleware"]

from collections.abc import MutableMapping

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

#: Paths anyone may read: the handshake, health, metrics, the API document.
_OPEN = frozenset(
    {"/api/v1/version", "/health/live", "/health/ready", "/metrics", "/api/v1/openapi.json", "/api/v1/docs"}
)


def _ui(path: str) -> bool:
    return path == "/" or path == "/ui" or path.startswith("/ui/")


class AuthMiddleware:
    def __init__(
        self, app: Any, *, authenticator: _Authenticator, settings: ServerSettings, metrics: ServerMetrics
    ) -> None:
        self.app = app
        self.auth = authenticator
        self.settings = settings
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from modelyard.server._auth import TooManyAttempts
        from modelyard.server._errors import api_headers, error_response

        started = time.perf_counter()
        status_seen = {"status": 500}

        async def send_counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_seen["status"] = message["status"]
            await send(message)

        path: str = scope.get("path", "")
        try:
            # the web UI (``/`` and ``/ui/...``) authenticates its own pages (session cookie, login form)
            if path not in _OPEN and not path.startswith("/api/v1/docs") and not _ui(path):
                request = Request(scope)
                if path.startswith("/api/v1/") and not path.startswith(
                    ("/api/v1/blobs/", "/api/v1/uploads/")
                ):
                    length = request.headers.get("content-length")
                    if length is not None and length.isdigit() and int(length) > self.settings.max_body:
                        too_big = errors.InvalidArgumentError(
                            f"The request body is {int(length)} bytes; this server takes at most "
                            f"{self.settings.max_body} (YARD_SERVER_MAX_BODY). Send smaller batches."
                        )
                        await error_response(too_big, 413)(scope, receive, send_counted)
                        return
                try:
                    principal = await anyio.to_thread.run_sync(self.auth.principal, request)
                except TooManyAttempts as exc:
                    self.metrics.auth_failures.inc()
                    resp = JSONResponse(
                        {"error": {"type": "AuthenticationError", "message": str(exc)}},
                        status_code=429,
                        headers={**api_headers(), "Retry-After": str(max(1, int(exc.wait + 0.999)))},
                    )
                    await resp(scope, receive, send_counted)
                    return
                except errors.AuthenticationError:
                    self.metrics.auth_failures.inc()
                    raise
                scope.setdefault("state", {})["principal"] = principal
            await self.app(scope, receive, send_counted)
        except errors.ModelyardError as exc:
            resp = error_response(exc)
            if isinstance(exc, errors.AuthenticationError):
                resp.headers["WWW-Authenticate"] = 'Bearer realm="modelyard"'
            await resp(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or ("other" if path.startswith("/api/") else path)
            if len(template) > 120:
                template = "other"
            self.metrics.requests.labels(
                template, scope.get("method", "?"), f"{status_seen['status'] // 100}xx"
            ).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - started)
