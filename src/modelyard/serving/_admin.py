"""The admin routes: ``GET /admin/spec`` (the current spec) and ``PUT /admin/spec`` (swap to a
new one), behind ``Authorization: Bearer <token>``. Off unless the server has a token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelyardError
from modelyard.serving._codec import HTTPProblem
from modelyard.serving._http import JSONResponse, problem, respond
from modelyard.serving._spec import SwapError, load_spec

if TYPE_CHECKING:
    from modelyard.serving._app import ModelServer

__all__ = ["ADMIN_ENV", "admin_get_spec", "admin_put_spec", "authorize"]

#: The environment variable holding the admin token.
ADMIN_ENV = "YARD_SERVE_ADMIN_TOKEN"
_DEFAULT_LIMIT = 10 * 1024 * 1024


def authorize(server: ModelServer, request: Any) -> None:
    """Raise 403 when the admin API is off, 401 unless the request carries the token."""
    if not server.admin_enabled:
        raise HTTPProblem(
            403,
            "admin_disabled",
            f"The admin API is off. Start the server with {ADMIN_ENV} set (or admin_token=...) to enable it.",
        )
    got = request.headers.get("authorization", "")
    token = got[7:] if got.lower().startswith("bearer ") else ""
    if not token or not server.token_matches(token):
        raise HTTPProblem(
            401,
            "unauthorized",
            "Send 'Authorization: Bearer <token>' with the admin token.",
            headers={"www-authenticate": "Bearer"},
        )


async def admin_get_spec(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /admin/spec``: the spec being served and the last swap's outcome."""
    try:
        authorize(server, request)
    except HTTPProblem as p:
        return problem(p, "")
    spec = server.spec
    return respond(
        200, {"spec": spec.model_dump(mode="json") if spec else None, "last_swap": server.last_swap}
    )


async def admin_put_spec(server: ModelServer, request: Any) -> JSONResponse:
    """``PUT /admin/spec`` (YAML or JSON body): load and warm the new spec, then switch to it.
    A spec that does not load is a 422 and the old spec keeps serving."""
    from starlette.concurrency import run_in_threadpool

    try:
        authorize(server, request)
        dep = server.deployment
        limit = dep.spec.limits.max_body_bytes if dep else _DEFAULT_LIMIT
        body = await request.body()
        if len(body) > limit:
            raise HTTPProblem(413, "body_too_large", f"The spec is larger than {limit} bytes.")
        try:
            new_spec = load_spec(body.decode())
        except (UnicodeDecodeError, ModelyardError) as exc:
            raise HTTPProblem(422, "invalid_spec", str(exc)) from None
        try:
            await run_in_threadpool(server.swap, new_spec)
        except SwapError as exc:
            raise HTTPProblem(422, "swap_failed", str(exc)) from None
        if server.persist_swaps and server.spec_path is not None:
            await run_in_threadpool(server.persist_spec, new_spec.to_yaml())
        return respond(200, {"status": "swapped", "last_swap": server.last_swap})
    except HTTPProblem as p:
        return problem(p, "")
