"""Who is calling: bearer tokens (rate-limited failures per address), a trusted proxy's header, or
nobody checked (``--auth none``, loopback only)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import Request

from modelyard import errors
from modelyard._rpc import Principal
from modelyard._workspace import Workspace
from modelyard.server._users import AuthService

if TYPE_CHECKING:
    from modelyard.server._app import ServerSettings

__all__ = ["AUTH_MODES", "TooManyAttempts"]

AUTH_MODES = ("token", "header", "none")


class _FailedAuth:
    """Failed authentications per client address: a bucket of ``burst`` tries refilled one per
    ``refill_s`` (monotonic clock, injectable)."""

    def __init__(self, burst: int, refill_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.burst, self.refill_s, self.clock = burst, refill_s, clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, addr: str) -> float:
        level, at = self._tokens.get(addr, (float(self.burst), self.clock()))
        return min(float(self.burst), level + (self.clock() - at) / self.refill_s)

    def blocked(self, addr: str) -> float:
        """Seconds to wait before ``addr`` may try again (0: it may)."""
        with self._lock:
            level = self._level(addr)
            return 0.0 if level >= 1 else (1 - level) * self.refill_s

    def failed(self, addr: str) -> None:
        with self._lock:
            self._tokens[addr] = (max(0.0, self._level(addr) - 1), self.clock())


class _Authenticator:
    def __init__(self, ws: Workspace, settings: ServerSettings, clock: Callable[[], float]) -> None:
        self.ws, self.settings = ws, settings
        self.auth = AuthService(ws)
        self.failures = _FailedAuth(settings.failed_auth_burst, settings.failed_auth_refill_s, clock)

    def principal(self, request: Request) -> Principal:
        mode = self.settings.auth
        if mode == "none":
            name = request.headers.get("X-Yard-User") or "anonymous"
            return Principal(name=name[:100], role="admin")
        if mode == "header":
            name = request.headers.get(self.settings.user_header, "").strip()
            if not name:
                raise errors.AuthenticationError(
                    f"No {self.settings.user_header} header: this server trusts its proxy to name the user."
                )
            return self.auth.principal_for_user(name[:100])
        addr = request.client.host if request.client else "?"
        wait = self.failures.blocked(addr)
        if wait > 0:
            raise TooManyAttempts(wait)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if not header:
            raise errors.AuthenticationError(
                "This server needs a token: set YARD_TOKEN or run `yard login URL` "
                "(send it as 'Authorization: Bearer <token>')."
            )
        if scheme.lower() != "bearer" or not token.strip():
            self.failures.failed(addr)
            raise errors.AuthenticationError("Send the token as 'Authorization: Bearer <token>'.")
        try:
            return self.auth.authenticate(token.strip())
        except errors.AuthenticationError:
            self.failures.failed(addr)
            raise


class TooManyAttempts(errors.AuthenticationError):
    """Too many failed logins from one address (answered 429 with Retry-After)."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"Too many failed logins from this address; try again in {wait:.0f} s.")
        self.wait = wait
