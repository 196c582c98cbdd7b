"""The admin routes: ``GET /admin/spec`` (the current spec) and ``PUT /admin/spec`` (swap to a
new one), behind ``Authorization: Bearer <token>``. Off unless the server has a token."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.errors import ModelyardError
from modelyard.serving._codec import HTTPProblem
from modelyard.serving._http import JSONResponse, problem, respond
from modelyard.serving._spec import DeploymentSpec, SwapError, load_spec

if TYPE_CHECKING:
    from modelyard.serving._app import ModelServer

__all__ = ["ADMIN_ENV", "admin_get_spec", "admin_put_spec", "authorize"]

#: The environment variable holding the admin token.
ADMIN_ENV = "YARD_SERVE_ADMIN_TOKEN"
_DEFAULT_LIMIT = 10 * 1024 * 1024
#: How long ``PUT /admin/spec`` waits for the other workers to apply a spec (loading and warming
#: the models); under the rollout target's own timeout for the answer (300 s).
_WAIT_S = 240.0


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


def _workers_view(server: ModelServer) -> dict[str, Any]:
    """With sibling workers: the spec file's digest and each live worker's applied digest."""
    board = server.board
    if board is None or server.spec_path is None:
        return {}
    try:
        _, digest, _ = server.read_spec_file()
    except OSError:
        digest = None
    return {"digest": digest, "workers": board.states()}


async def admin_get_spec(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /admin/spec``: the spec being served and the last swap's outcome (with several
    workers, also each worker's applied spec digest)."""
    from starlette.concurrency import run_in_threadpool

    try:
        authorize(server, request)
    except HTTPProblem as p:
        return problem(p, "")
    spec = server.spec
    body = {"spec": spec.model_dump(mode="json") if spec else None, "last_swap": server.last_swap}
    body.update(await run_in_threadpool(_workers_view, server))
    return respond(200, body)


def _swap_everywhere(server: ModelServer, new_spec: DeploymentSpec) -> tuple[int, dict[str, Any]]:
    """Swap this worker, write the spec file, wait until every worker applied it:
    ``(status, body)``. One worker: the swap alone. A worker that cannot load the spec puts
    every worker back on the old spec (503); another swap replacing this one is a 409; workers
    still loading after ``_WAIT_S`` a 504 (with each worker's state)."""
    board = server.board
    with server.admin_lock:
        if board is None or server.spec_path is None:
            server.swap(new_spec, reason="admin")
            if server.persist_swaps and server.spec_path is not None:
                server.persist_spec(new_spec.to_yaml())
            return 200, {"status": "swapped", "last_swap": server.last_swap}
        old = server.spec
        server.swap(new_spec, reason=None)  # counted below, once, when every worker answered
        digest = server.persist_spec(new_spec.to_yaml())
        board.report(digest, True)
        result = board.wait(digest, lambda: _current_digest(server), _WAIT_S)
        swaps = server.metrics.swaps
        if result.outcome == "applied":
            swaps.labels("ok", "admin").inc()
            return 200, {
                "status": "swapped",
                "last_swap": server.last_swap,
                "digest": digest,
                "workers": result.workers,
            }
        if result.outcome == "superseded":
            swaps.labels("superseded", "admin").inc()
            return 409, _swap_problem(
                "swap_superseded",
                "Another spec swap replaced this one before every worker applied it; "
                "GET /admin/spec shows the spec being served.",
                result.workers,
            )
        if result.outcome == "failed":
            swaps.labels("failed", "admin").inc()
            errors = sorted({str(w.get("error")) for w in result.workers if w.get("digest") == digest})
            if old is not None:  # put every worker back on the old spec
                server.swap(old, reason=None)
                back = server.persist_spec(old.to_yaml())
                board.report(back, True)
                result = board.wait(back, lambda: _current_digest(server), _WAIT_S)
            return 503, _swap_problem(
                "swap_failed_on_worker",
                f"A worker could not apply the new spec, so every worker is back on the old one: "
                f"{'; '.join(errors)}",
                result.workers,
            )
        swaps.labels("timeout", "admin").inc()
        return 504, _swap_problem(
            "swap_pending",
            f"Not every worker applied the new spec within {_WAIT_S:g} s; 'workers' shows each one's state.",
            result.workers,
        )


def _current_digest(server: ModelServer) -> str | None:
    try:
        return server.read_spec_file()[1]
    except OSError:
        return None


def _swap_problem(code: str, message: str, workers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"error": message, "code": code, "request_id": "", "workers": workers}


async def admin_put_spec(server: ModelServer, request: Any) -> JSONResponse:
    """``PUT /admin/spec`` (YAML or JSON body): load and warm the new spec, then switch to it.
    With several workers the answer comes once every worker serves the new spec. A spec that
    does not load is a 422 and the old spec keeps serving."""
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
            status, answer = await run_in_threadpool(_swap_everywhere, server, new_spec)
        except SwapError as exc:
            if server.board is not None:  # one worker: swap() counted it
                server.metrics.swaps.labels("failed", "admin").inc()
            raise HTTPProblem(422, "swap_failed", str(exc)) from None
        return respond(status, answer)
    except HTTPProblem as p:
        return problem(p, "")
