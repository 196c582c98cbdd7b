"""Service operations called from a page as its user: the role check of the HTTP API, then the method."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from modelyard import errors
from modelyard._rpc import OpSpec, Principal, current_principal, operations
from modelyard._workspace import Workspace

__all__ = ["Caller"]


class Caller:
    """Calls ``@op`` methods of service classes on ``ws`` as ``principal`` (refused as the API refuses)."""

    def __init__(self, ws: Workspace, principal: Principal, runs: Any) -> None:
        self.ws, self.principal, self.runs = ws, principal, runs

    def __call__(
        self,
        cls: type,
        name: str,
        /,
        *,
        need: tuple[str, str | None, str | None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``cls(ws).name(**kwargs)`` as the page's user. ``need`` (role, kind, name) is the role
        the page asks for (it may ask more than the operation: moving an alias from the page is for
        maintainers); a declared operation's own role is checked as well."""
        from modelyard.server._app import _scopes

        if need is not None:
            role, kind, target = need
            self._require(f"{cls.__name__}.{name}", role, kind, target)
            return self._as_user(getattr(cls(self.ws), name), kwargs)
        spec = _spec(cls, name)
        body = SimpleNamespace(**{p.name: kwargs.get(p.name) for p in spec.parameters()})
        for kind, target in _scopes(spec, body, self.runs):
            self._require(f"{spec.service}.{spec.name}", spec.role, kind, target)
        return self._as_user(lambda **kw: spec.fn(cls(self.ws), **kw), kwargs)

    def _require(self, what: str, role: str, kind: str | None, target: str | None) -> None:
        """Refuse (as the API does) unless the user has ``role`` on ``kind`` ``target``."""
        if not self.principal.can(role, kind, target):
            on = f" on {kind} {target!r}" if kind and target else ""
            raise errors.PermissionDeniedError(
                f"{what} needs role {role!r}{on}; {self.principal.name} has "
                f"{self.principal.role_on(kind, target)!r}{on}."
            )

    def _as_user(self, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """``fn(**kwargs)`` with the page's user as the calling principal."""
        token = current_principal.set(self.principal)
        try:
            return fn(**kwargs)
        finally:
            current_principal.reset(token)


_SPECS: dict[tuple[type, str], OpSpec] = {}


def _is_op(cls: type, name: str) -> bool:
    if getattr(cls, "_rpc_service", None) is None:
        return False
    try:
        _spec(cls, name)
    except errors.UsageError:
        return False
    return True


def _spec(cls: type, name: str) -> OpSpec:
    if not _SPECS.get((cls, name)):
        for spec in operations(cls):
            _SPECS[(cls, spec.name)] = spec
    try:
        return _SPECS[(cls, name)]
    except KeyError:
        raise errors.UsageError(f"{cls.__name__}.{name} is not a service operation.") from None
