"""The UI's routes under ``/ui`` (``/`` redirects there), mounted into the server's FastAPI app.

Each page resolves its session first (a missing one redirects to the login form), calls services
through :class:`~modelyard.webui._calls.Caller` as that user, and renders a template. Errors become an
HTML page with the API's status code (403 for a missing role, 404 for an unknown name), never a 500 for
bad input. Every response carries a strict Content-Security-Policy: only this server's script, no
frames, no third-party anything.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from modelyard import errors
from modelyard.ui import render_page
from modelyard.webui._calls import Caller
from modelyard.webui._session import COOKIE, LOGIN_COOKIE, LoginNeeded, Session, check_token, csrf_ok
from modelyard.webui._session import session_for as _session_for

if TYPE_CHECKING:
    from modelyard.server._app import _Authenticator

__all__ = ["PREFIX", "Page", "mount"]

PREFIX = "/ui"
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_STATIC = {"yard.js": "text/javascript; charset=utf-8"}


class Page:
    """What a page handler gets: the request, the session, a service caller and the workspace."""

    def __init__(self, request: Request, session: Session, auth: _Authenticator, runs: Any) -> None:
        self.request, self.session, self.auth = request, session, auth
        self.ws = auth.ws
        self.call = Caller(auth.ws, session.principal, runs)

    def render(self, template: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        html = render_page(
            f"web/{template}",
            session=self.session,
            auth_mode=self.auth.settings.auth,
            prefix=PREFIX,
            q=quote,
            **ctx,
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)


def _status(exc: BaseException) -> int:
    from modelyard.server._app import status_for

    return status_for(exc)


def mount(app: FastAPI, auth: _Authenticator) -> None:
    """Add the UI's routes to the server's ``app`` (``auth``: the server's authenticator)."""
    from modelyard.webui import _pages

    runs = app.state.yard.runs
    settings = auth.settings

    def error_page(exc: BaseException, session: Session | None) -> HTMLResponse:
        status = _status(exc)
        html = render_page(
            "web/error.html.j2",
            title=f"{status} · modelyard",
            session=session,
            auth_mode=settings.auth,
            prefix=PREFIX,
            q=quote,
            status=status,
            kind=type(exc).__name__,
            message=str(exc) if isinstance(exc, errors.ModelyardError) else "Internal error; see the log.",
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def handle(request: Request, fn: Callable[[Page], Response], *, post: bool = False) -> Response:
        session: Session | None = None
        try:
            session = _session_for(request, auth)
            if post:
                form = request.state.form
                if not csrf_ok(session, form.get("csrf")):
                    raise errors.PermissionDeniedError(
                        "The form's CSRF token is missing or stale; reload the page and try again."
                    )
            return fn(Page(request, session, auth, runs))
        except LoginNeeded:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PREFIX}/login?next={quote(target)}", status_code=303)
        except errors.ModelyardError as exc:
            return error_page(exc, session)

    def page(path: str) -> Callable[[Callable[[Page], Response]], Callable[[Page], Response]]:
        def deco(fn: Callable[[Page], Response]) -> Callable[[Page], Response]:
            def endpoint(request: Request) -> Response:
                return handle(request, fn)

            endpoint.__name__ = f"ui_{fn.__name__}"
            app.add_api_route(PREFIX + path, endpoint, methods=["GET"], include_in_schema=False)
            return fn

        return deco

    def action(path: str) -> Callable[[Callable[[Page], Response]], Callable[[Page], Response]]:
        def deco(fn: Callable[[Page], Response]) -> Callable[[Page], Response]:
            async def endpoint(request: Request) -> Response:
                import anyio

                request.state.form = dict(await request.form())
                return await anyio.to_thread.run_sync(lambda: handle(request, fn, post=True))

            endpoint.__name__ = f"ui_{fn.__name__}"
            app.add_api_route(PREFIX + path, endpoint, methods=["POST"], include_in_schema=False)
            return fn

        return deco

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.get(PREFIX + "/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            return Response("not found", status_code=404, media_type="text/plain")
        body = resources.files("modelyard.ui").joinpath("static", name).read_bytes()
        return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=300"})

    @app.get(PREFIX + "/login", include_in_schema=False)
    def login_form(request: Request, next: str = "") -> Response:
        return _login_page(request, next, None)

    def _login_page(request: Request, nxt: str, problem: str | None, status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(24)
        html = render_page(
            "web/login.html.j2",
            title="Log in · modelyard",
            session=None,
            auth_mode=settings.auth,
            prefix=PREFIX,
            q=quote,
            csrf=nonce,
            next=_safe_next(nxt),
            problem=problem,
        )
        resp = HTMLResponse(html, status_code=status, headers=HEADERS)
        resp.set_cookie(
            LOGIN_COOKIE, nonce, httponly=True, samesite="strict", path=PREFIX, secure=_https(request)
        )
        return resp

    @app.post(PREFIX + "/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        import anyio

        form = await request.form()
        nxt = _safe_next(str(form.get("next") or ""))
        sent, kept = str(form.get("csrf") or ""), request.cookies.get(LOGIN_COOKIE, "")
        if not kept or not secrets.compare_digest(sent, kept):
            return _login_page(request, nxt, "The login form expired; try again.", 403)
        if settings.auth != "token":
            return RedirectResponse(nxt, status_code=303)
        token = str(form.get("token") or "").strip()
        if not token:
            return _login_page(request, nxt, "Paste an API token (yard tokens create).", 400)
        try:
            await anyio.to_thread.run_sync(check_token, request, auth, token)
        except errors.AuthenticationError as exc:
            status = 429 if type(exc).__name__ == "TooManyAttempts" else 401
            return _login_page(request, nxt, str(exc), status)
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path=PREFIX, secure=_https(request))
        resp.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return resp

    @action("/logout")
    def logout(p: Page) -> Response:
        resp = RedirectResponse(f"{PREFIX}/login", status_code=303)
        resp.delete_cookie(COOKIE, path=PREFIX)
        return resp

    _pages.register(page, action)


def _https(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(nxt: str) -> str:
    """Only a path of this UI (never another site: no scheme, no ``//host``, no backslash)."""
    if nxt.startswith(PREFIX + "/") and not nxt.startswith("//") and "\\" not in nxt and "\n" not in nxt:
        return nxt
    return PREFIX + "/"
