"""The server's error answers: the status of each error class, the JSON envelope every error is
sent in, and the handlers that turn what a route raises (validation, store limits, the unexpected)
into it. The client (:class:`modelyard._remote.RemoteClient`) raises the same class again."""

from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from modelyard import errors
from modelyard._remote import API_HEADER, API_VERSION
from modelyard._rpc import OpSpec
from modelyard._version import __version__

__all__ = ["api_headers", "error_response", "install_error_handlers", "op_responses", "status_for"]

log = logging.getLogger("modelyard.server")

_STATUS: list[tuple[type[BaseException], int]] = [
    (errors.AuthenticationError, 401),
    (errors.PermissionDeniedError, 403),
    (errors.NotFoundError, 404),
    (errors.AlreadyExistsError, 409),
    (errors.ConflictError, 409),
    (errors.IntegrityError, 400),
    (errors.InvalidArgumentError, 400),
    (errors.ValidationFailed, 422),
    (errors.SerializationError, 400),
    (errors.ConfigError, 400),
    (errors.UsageError, 400),
    (errors.StoreError, 503),
    (errors.ServerError, 502),
]


def status_for(exc: BaseException) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400 if isinstance(exc, errors.ModelyardError) else 500


def error_response(exc: BaseException, status: int | None = None) -> JSONResponse:
    """The error envelope: ``{"error": {"type", "class", "message", "details"}}``. ``type`` is the most
    specific class of :mod:`modelyard.errors` the error is, the one the client raises again
    (:func:`modelyard.errors.from_wire`), with the attributes its class sends (``details``: a
    GateFailed's report, a RevisionConflict's rollout id)."""
    status = status or status_for(exc)
    error: dict[str, Any] = {"type": errors.wire_name(exc), "class": type(exc).__name__, "message": str(exc)}
    try:
        details = errors.wire_details(exc)
        if details:
            json.dumps(details)  # what cannot be sent is left out, never a 500
            error["details"] = details
    except (TypeError, ValueError):
        log.warning("could not send the details of %s", type(exc).__name__, exc_info=True)
    return JSONResponse({"error": error}, status_code=status, headers=api_headers())


def api_headers() -> dict[str, str]:
    return {API_HEADER: str(API_VERSION), "X-Yard-Version": __version__}


def install_error_handlers(app: FastAPI) -> None:
    """Every error a route raises answers in the envelope, 4xx for bad input, never a traceback."""

    @app.exception_handler(errors.ModelyardError)
    async def _yard_error(request: Request, exc: errors.ModelyardError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(errors.UsageError)
    async def _usage_error(request: Request, exc: errors.UsageError) -> JSONResponse:
        return error_response(exc, 400)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors()[:20]:
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            problems.append(f"{loc or 'body'}: {e.get('msg')}")
        message = "The request body is not valid: " + "; ".join(problems)
        return JSONResponse(
            {"error": {"type": "InvalidArgumentError", "message": message, "fields": problems}},
            status_code=422,
            headers=api_headers(),
        )

    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "AuthenticationError", 403: "PermissionDeniedError", 404: "NotFoundError"}.get(
            exc.status_code, "InvalidArgumentError"
        )
        return JSONResponse(
            {"error": {"type": kind, "message": str(exc.detail)}},
            status_code=exc.status_code,
            headers={**api_headers(), **(exc.headers or {})},
        )

    @app.exception_handler(ValidationError)
    async def _invalid_value(request: Request, exc: ValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())) or 'value'}: {e.get('msg')}"
            for e in exc.errors()[:20]
        ]
        return JSONResponse(
            {
                "error": {
                    "type": "InvalidArgumentError",
                    "message": "A value is not valid: " + "; ".join(problems),
                }
            },
            status_code=422,
            headers=api_headers(),
        )

    @app.exception_handler(OverflowError)
    async def _too_large(request: Request, exc: OverflowError) -> JSONResponse:
        return error_response(
            errors.InvalidArgumentError(f"A number is out of range for the store: {exc}."), 400
        )

    @app.exception_handler(sa.exc.DataError)
    async def _bad_data(request: Request, exc: sa.exc.DataError) -> JSONResponse:
        detail = " ".join(str(exc.orig).split())[:300]
        return error_response(errors.InvalidArgumentError(f"The store refused a value: {detail}."), 400)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error in %s %s", request.method, request.url.path)
        return JSONResponse(
            {
                "error": {
                    "type": "ServerError",
                    "message": f"Internal error ({type(exc).__name__}); see the server log.",
                }
            },
            status_code=500,
            headers=api_headers(),
        )


def op_responses(spec: OpSpec) -> dict[int | str, dict[str, Any]]:
    err = {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "message"],
                            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                        }
                    },
                }
            }
        }
    }
    return {
        200: {"description": 'The operation\'s result, as {"result": ...}.'},
        400: {"description": "A value is not acceptable.", **err},
        401: {"description": "No valid token.", **err},
        403: {"description": f"The caller lacks role {spec.role!r}.", **err},
        404: {"description": "Something named does not exist.", **err},
        409: {"description": "Conflicts with what is stored.", **err},
        422: {"description": "The body does not validate (fields named).", **err},
    }
