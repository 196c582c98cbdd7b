"""Service operations called from a page as its user: the role check of the HTTP API, then the method."""

from __future__ import annotations

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

    def __call__(self, cls: type, name: str, **kwargs: Any) -> Any:
        from modelyard.server._app import _scopes

        spec = _spec(cls, name)
        body = SimpleNamespace(**{p.name: kwargs.get(p.name) for p in spec.parameters()})
        for kind, target in _scopes(spec, body, self.runs):
            if not self.principal.can(spec.role, kind, target):
                on = f" on {kind} {target!r}" if kind and target else ""
                raise errors.PermissionDeniedError(
                    f"{spec.service}.{spec.name} needs role {spec.role!r}{on}; {self.principal.name} has "
                    f"{self.principal.role_on(kind, target)!r}{on}."
                )
        token = current_principal.set(self.principal)
        try:
            return spec.fn(cls(self.ws), **kwargs)
        finally:
            current_principal.reset(token)


_SPECS: dict[tuple[type, str], OpSpec] = {}


def _spec(cls: type, name: str) -> OpSpec:
    if not _SPECS.get((cls, name)):
        for spec in operations(cls):
            _SPECS[(cls, spec.name)] = spec
    try:
        return _SPECS[(cls, name)]
    except KeyError:
        raise errors.UsageError(f"{cls.__name__}.{name} is not a service operation.") from None
