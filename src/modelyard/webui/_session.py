"""Who is looking at a page: the session cookie (token mode), the proxy's header, or nobody (``--auth none``).

Token mode: the login form takes an API token, checks it like the API does (failed attempts count
against the same per-address budget) and sets it as an ``HttpOnly; SameSite=Strict`` cookie scoped
to ``/ui``. Every POST form carries a CSRF token: an HMAC of the session (the API token, or the user
name in header/none mode under a per-process secret), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from typing import TYPE_CHECKING

from starlette.requests import Request

from modelyard import errors
from modelyard._rpc import Principal

if TYPE_CHECKING:
    from modelyard.server._app import _Authenticator

__all__ = ["COOKIE", "LOGIN_COOKIE", "Session", "csrf_ok", "session_for"]

COOKIE = "yard_session"
LOGIN_COOKIE = "yard_login"
#: Signs CSRF tokens in header/none mode (token mode keys them on the session's token itself).
_SECRET = (os.environ.get("YARD_UI_SECRET") or secrets.token_hex(32)).encode()


class Session:
    """The logged-in user of one request and the CSRF token its forms carry."""

    def __init__(self, principal: Principal, key: str) -> None:
        self.principal = principal
        self.csrf = hmac.new(key.encode(), b"yard-ui-csrf", hashlib.sha256).hexdigest()

    def can(self, role: str, kind: str | None = None, name: str | None = None) -> bool:
        return self.principal.can(role, kind, name)


class LoginNeeded(errors.AuthenticationError):
    """No session: the page redirects to the login form."""


def session_for(request: Request, auth: _Authenticator) -> Session:
    """The request's session, or LoginNeeded / AuthenticationError."""
    mode = auth.settings.auth
    if mode == "none":
        name = (request.headers.get("X-Yard-User") or "anonymous")[:100]
        return Session(Principal(name=name, role="admin"), _SECRET.decode() + name)
    if mode == "header":
        name = request.headers.get(auth.settings.user_header, "").strip()[:100]
        if not name:
            raise errors.AuthenticationError(
                f"No {auth.settings.user_header} header: this server trusts its proxy to name the user."
            )
        return Session(auth.auth.principal_for_user(name), _SECRET.decode() + name)
    token = request.cookies.get(COOKIE, "").strip()
    if not token:
        raise LoginNeeded("Log in with an API token.")
    return Session(check_token(request, auth, token), token)


def check_token(request: Request, auth: _Authenticator, token: str) -> Principal:
    """The token's user; a wrong token counts as a failed login of the client's address."""
    from modelyard.server._app import TooManyAttempts

    addr = request.client.host if request.client else "?"
    wait = auth.failures.blocked(addr)
    if wait > 0:
        raise TooManyAttempts(wait)
    try:
        return auth.auth.authenticate(token)
    except errors.AuthenticationError:
        auth.failures.failed(addr)
        raise


def csrf_ok(session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf, sent or "")
