"""Service operations that run in this process or on a modelyard server, and who may call them.

A service method decorated with :func:`op` is one operation of the HTTP API. On a workspace whose
URI is a folder, SQLite or PostgreSQL it runs here; on an ``http(s)://`` workspace the same call is
sent to the server (``POST /api/v1/<service>/<operation>``), which runs the same method on its own
store. So a feature is written once and never knows which backend it is on::

    @service("tracking")
    class TrackingService:
        @op("writer", on=("run", "run_id"))
        def log_params(self, run_id: str, values: Mapping[str, Any]) -> None: ...

Arguments and results cross the wire as JSON validated by pydantic from the method's type hints, so
the server answers a bad body with 422 naming the field, and the OpenAPI document describes what
the server really accepts. Roles (``reader < writer < maintainer < admin``) are checked by the
server before the method runs; a method that needs more than its declared role for some inputs
(moving a protected alias) calls :func:`require` itself, which does nothing in a local process.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from modelyard.errors import PermissionDeniedError, UsageError

__all__ = [
    "ROLES",
    "OpSpec",
    "Principal",
    "Transport",
    "current_idempotency_key",
    "current_principal",
    "idempotency_key",
    "op",
    "operations",
    "require",
    "role_at_least",
    "service",
]

#: Roles from least to most privileged; each includes the ones before it.
ROLES: tuple[str, ...] = ("reader", "writer", "maintainer", "admin")

#: Kinds of things a role can be granted on (besides globally).
SCOPES: tuple[str, ...] = ("experiment", "model", "dataset")

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


def role_at_least(have: str | None, need: str) -> bool:
    """True when role ``have`` includes role ``need``."""
    if have is None:
        return False
    return ROLES.index(have) >= ROLES.index(need)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user with a global role and grants on single experiments, models, datasets.

    ``grants`` maps ``(kind, name)`` to a role; a grant raises the user's role on that one thing
    (it never lowers the global role).
    """

    name: str
    role: str
    grants: dict[tuple[str, str], str] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    token_id: str | None = None

    def role_on(self, kind: str | None = None, name: str | None = None) -> str:
        """The user's effective role on one thing (or globally)."""
        best = self.role
        if kind is not None and name is not None:
            granted = self.grants.get((kind, name))
            if granted is not None and ROLES.index(granted) > ROLES.index(best):
                best = granted
        return best

    def can(self, need: str, kind: str | None = None, name: str | None = None) -> bool:
        return role_at_least(self.role_on(kind, name), need)

    def __repr__(self) -> str:  # never the token
        return f"Principal({self.name!r}, role={self.role!r})"


#: The caller of the operation being served (None in a local process: everything is allowed).
current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "yard_principal", default=None
)


def require(need: str, kind: str | None = None, name: str | None = None, *, why: str = "") -> None:
    """Refuse (403) unless the caller holds ``need`` globally or on ``kind`` ``name``.

    Does nothing in a local process (no principal): the store's own credentials are the boundary.
    """
    who = current_principal.get()
    if who is None or who.can(need, kind, name):
        return
    on = f" on {kind} {name!r}" if kind and name else ""
    raise PermissionDeniedError(
        f"{who.name} has role {who.role_on(kind, name)!r}{on}; {why or 'this'} needs role {need!r}{on}. "
        f"An admin can grant it: yard grants add {who.name} "
        + (f"--{kind} {name} " if kind and name else "")
        + f"--role {need}"
    )


@dataclass(frozen=True)
class OpSpec:
    """One operation of a service: its name, the role it needs and on what, and the method."""

    service: str
    name: str
    role: str
    #: ``(kind, argument)``: the role is checked on the thing this argument names.
    on: tuple[str, str] | None
    fn: Callable[..., Any]
    #: Reads only: served as GET-safe (retried freely by clients).
    read_only: bool

    @property
    def path(self) -> str:
        return f"/api/v1/{self.service}/{self.name.replace('_', '-')}"

    def hints(self) -> dict[str, Any]:
        """Resolved type hints of the method (arguments and ``return``)."""
        return _hints(self.fn)

    def parameters(self) -> list[inspect.Parameter]:
        return [p for p in inspect.signature(self.fn).parameters.values() if p.name != "self"]


@functools.cache
def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    return typing.get_type_hints(fn)


_SERVICES: dict[str, type] = {}


def service(name: str) -> Callable[[C], C]:
    """Class decorator: the class's :func:`op` methods are operations of service ``name``."""

    def deco(cls: C) -> C:
        cls._rpc_service = name  # type: ignore[attr-defined]
        _SERVICES[name] = cls
        return cls

    return deco


def operations(cls: type) -> list[OpSpec]:
    """The operations a service class declares (in definition order, inherited ones included)."""
    name = getattr(cls, "_rpc_service", None)
    if name is None:
        raise UsageError(f"{cls.__name__} is not a service (decorate it with @service(name)).")
    seen: dict[str, OpSpec] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            meta = getattr(value, "__yard_op__", None)
            if meta is not None:
                role, on, read_only = meta
                seen[attr] = OpSpec(name, attr, role, on, getattr(value, "__wrapped__", value), read_only)
    return list(seen.values())


#: The Idempotency-Key the next remote call is sent with (None: a fresh one per call).
_idempotency: contextvars.ContextVar[str | None] = contextvars.ContextVar("yard_idempotency", default=None)


@contextlib.contextmanager
def idempotency_key(key: str) -> Iterator[None]:
    """Send the remote calls made inside the block with ``key`` as their Idempotency-Key, so a
    batch retried later (after its answer was lost) is applied once. No effect on local stores."""
    token = _idempotency.set(key)
    try:
        yield
    finally:
        _idempotency.reset(token)


def current_idempotency_key() -> str | None:
    return _idempotency.get()


class Transport(Protocol):
    """What a remote workspace offers the operations: one call to the server."""

    def call(self, spec: OpSpec, args: dict[str, Any]) -> Any: ...


def op(
    role: str = "reader", *, on: tuple[str, str] | None = None, read_only: bool | None = None
) -> Callable[[F], F]:
    """Mark a service method as an API operation needing ``role`` (on the thing argument ``on[1]``
    names, of kind ``on[0]``; several arguments space-separated, the role then needed on each thing
    they name, e.g. every run of a batch: ``"rows.0 latest.0"``). ``read_only`` defaults to
    ``role == "reader"``."""
    if role not in ROLES:
        raise UsageError(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
    if on is not None and on[0] not in (*SCOPES, "run", "rollout"):
        raise UsageError(f"Unknown scope kind {on[0]!r}.")
    ro = role == "reader" if read_only is None else read_only

    def deco(fn: F) -> F:
        sig = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            remote: Transport | None = getattr(getattr(self, "ws", None), "remote", None)
            if remote is None:
                return fn(self, *args, **kwargs)
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            values = dict(bound.arguments)
            values.pop("self", None)
            spec = OpSpec(type(self)._rpc_service, fn.__name__, role, on, fn, ro)
            return remote.call(spec, values)

        wrapper.__yard_op__ = (role, on, ro)  # type: ignore[attr-defined]
        return typing.cast(F, wrapper)

    return deco
