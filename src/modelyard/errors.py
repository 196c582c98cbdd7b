"""The modelyard exception hierarchy.

Every operational error raised by modelyard derives from :class:`ModelyardError` and its
message names what is wrong and how to fix it. Programmer misuse of the API (calling a
method in the wrong lifecycle state) derives from :class:`UsageError`, a ``RuntimeError``
outside the operational tree, so ``except ModelyardError`` never hides a bug::

    ModelyardError
    ├── ConfigError              the store URI or a setting cannot be used
    ├── StoreError               the metadata store failed or is out of date
    │   └── SchemaVersionError   the store was written by a newer modelyard
    ├── NotFoundError            an experiment, run, model, dataset... does not exist
    ├── AlreadyExistsError       a name that must be unique is taken
    ├── InvalidArgumentError     a value given by the user is not acceptable (also ValueError)
    │   ├── InvalidKeyError      a param/metric/tag/artifact key is malformed
    │   ├── FilterSyntaxError    a search filter does not parse; points at the token
    │   ├── PolicyError          a gate policy is not valid (.problems: file:line: key: message)
    │   ├── AutomationError      automation.AutomationError: an automations.yaml entry (file:line: ...)
    │   └── CronError            automation.CronError: a cron expression or time zone is not valid
    ├── ConflictError            the call contradicts what is stored (param changed, run ended)
    │   ├── RolloutStateError    the action does not fit the rollout's state
    │   └── RevisionConflict     the rollout changed since it was read (.rollout_id)
    ├── AuthenticationError      a server cannot tell who is calling (no/wrong/expired token): 401
    ├── PermissionDeniedError    the caller lacks the role an action needs (names the role): 403
    ├── ServerError              a modelyard server cannot be reached or answered unexpectedly
    │   └── ApiVersionError      client and server speak incompatible API versions (names both)
    ├── BlobError                the blob store failed
    │   ├── BlobNotFoundError    a digest is referenced but its blob is missing
    │   └── IntegrityError       a blob's bytes do not match its digest (tampering, corruption)
    ├── SerializationError       an object cannot be saved or loaded safely
    ├── StepFailedError          a pipeline step raised; names the step, carries its traceback
    └── ValidationFailed         data or a model did not pass its checks
        ├── SignatureError       model input does not match the model's signature (.problems)
        └── GateFailed           a model version failed its gates (.report: the GateReport)

The classes above are the ones a modelyard server's answer can name: the client re-raises the class
the server raised (``from_wire``), chosen only from this module's ``__all__``, never by any other name.
A feature re-exports the ones it raises (``modelyard.evaluation.GateFailed`` is this ``GateFailed``).

Feature errors in the tree, defined beside their feature (they never cross a server's API)::

    ModelyardError
    ├── AuthenticationError
    │   ├── TooManyAttempts      server._auth: too many failed logins from one address (429)
    │   └── LoginNeeded          webui._session: no session cookie; the page redirects to the login form
    ├── SwapError                serving._app: a new deployment spec was not applied (old one serves)
    ├── ImageBuildError          deploy._builder: no container builder can run, or the build failed
    └── TargetError              rollout._target: the model server cannot be read or refuses a spec

    UsageError(RuntimeError)     the API was used in the wrong order (programmer error)

Outside the tree on purpose (never reach a caller)::

    HTTPProblem(Exception)       serving._codec: an HTTP error answer on its way out of the model
                                 server, turned into a 4xx JSON response where it is caught
    _DamagedManifest(Exception)  _maintenance: private, caught in its module by ``yard doctor``
    StepFailed(Exception)        automation._steps: a step's outcome that stops an automation run,
                                 caught by the engine and recorded as the run's failure

``tests/test_errors_tree.py`` checks that every exception class of modelyard is drawn here.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from typing import Any

__all__ = [
    "AlreadyExistsError",
    "ApiVersionError",
    "AuthenticationError",
    "BlobError",
    "BlobNotFoundError",
    "ConfigError",
    "ConflictError",
    "FilterSyntaxError",
    "GateFailed",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "ModelyardError",
    "NotFoundError",
    "PermissionDeniedError",
    "PolicyError",
    "RevisionConflict",
    "RolloutStateError",
    "SchemaVersionError",
    "SerializationError",
    "ServerError",
    "SignatureError",
    "StepFailedError",
    "StoreError",
    "UsageError",
    "ValidationFailed",
    "did_you_mean",
    "from_wire",
    "invalid_param",
    "wire_details",
    "wire_name",
]


class ModelyardError(Exception):
    """Base of every operational modelyard error."""

    #: Exit code the CLI uses when this error reaches it.
    exit_code: int = 1
    #: Attributes a server sends with the error (JSON) and its client sets again (``from_wire``).
    _wire_attrs: tuple[str, ...] = ()

    @classmethod
    def _from_wire_value(cls, attr: str, value: Any) -> Any:
        """An attribute's value as the client keeps it (the JSON value itself by default)."""
        return value


class ConfigError(ModelyardError):
    """Raised when the store URI or a setting cannot be used."""


class StoreError(ModelyardError):
    """Raised when the metadata store fails (connection, locking, migration)."""


class SchemaVersionError(StoreError):
    """Raised when the store's schema is newer than this modelyard understands."""


class NotFoundError(ModelyardError, LookupError):
    """Raised when a named experiment, run, model, version or dataset does not exist."""


class AlreadyExistsError(ModelyardError):
    """Raised when creating something whose name must be unique and is already taken."""


class InvalidArgumentError(ModelyardError, ValueError):
    """Raised when a value given by the user is not acceptable."""


class InvalidKeyError(InvalidArgumentError):
    """Raised when a param, metric, tag or artifact key is malformed."""


class FilterSyntaxError(InvalidArgumentError):
    """Raised when a search filter does not parse; ``position`` is the offending offset."""

    _wire_attrs: tuple[str, ...] = ("text", "position")

    def __init__(self, message: str, *, text: str = "", position: int = 0) -> None:
        self.text = text
        self.position = position
        if text:
            shown, at = text, position
            if len(text) > 120:  # a window around the offending token, not a whole generated filter
                start = max(0, position - 60)
                shown = text[start : position + 60]
                at = position - start
                if start:
                    shown, at = "..." + shown, at + 3
                if position + 60 < len(text):
                    shown += "..."
            message = f"{message}\n  {shown}\n  {' ' * at}^"
        super().__init__(message)


class PolicyError(InvalidArgumentError):
    """Raised when a gate policy file is not valid; ``problems`` lists ``file:line: key: message``."""

    _wire_attrs: tuple[str, ...] = ("problems",)

    def __init__(self, problems: list[str], source: str) -> None:
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        n = len(problems)
        super().__init__(f"The gate policy {source} has {n} problem{'s' if n != 1 else ''}:\n{lines}")


class ConflictError(ModelyardError):
    """Raised when a call contradicts what is already stored (a param changed, a run ended)."""


class RolloutStateError(ConflictError):
    """Raised when an action does not apply to a rollout in its current state."""


class RevisionConflict(ConflictError):
    """Raised when a rollout changed since it was read (the controller re-reads it and carries on)."""

    MESSAGE = "changed while this action ran"
    _wire_attrs: tuple[str, ...] = ("rollout_id",)

    def __init__(self, rollout_id: int) -> None:
        super().__init__(
            f"Rollout {rollout_id} {self.MESSAGE}; read it again (yard rollout status) and retry."
        )
        self.rollout_id = rollout_id


class AuthenticationError(ModelyardError):
    """Raised when a server cannot tell who is calling (no token, a wrong, expired or revoked one): 401."""


class PermissionDeniedError(ModelyardError):
    """Raised when the caller is known but lacks the role an action needs: 403, naming the role."""


class ServerError(ModelyardError):
    """Raised when a modelyard server cannot be reached or answers something unexpected."""


class ApiVersionError(ServerError):
    """Raised when the client and the server speak incompatible API versions (both are named)."""


class BlobError(ModelyardError):
    """Raised when the blob store fails to read or write."""


class BlobNotFoundError(BlobError, NotFoundError):
    """Raised when a referenced blob is missing from the blob store."""


class IntegrityError(BlobError):
    """Raised when a blob's bytes do not hash to its digest (corruption or tampering)."""


class SerializationError(ModelyardError):
    """Raised when an object cannot be saved or loaded safely."""


class StepFailedError(ModelyardError):
    """Raised when a pipeline step fails; ``step`` names it and ``traceback`` is its traceback."""

    _wire_attrs: tuple[str, ...] = ("step", "traceback", "run_id")

    def __init__(
        self, message: str, *, step: str = "", traceback: str = "", run_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.step = step
        self.traceback = traceback
        self.run_id = run_id


class ValidationFailed(ModelyardError):
    """Raised when data or a model does not pass its checks; carries the report."""

    _wire_attrs: tuple[str, ...] = ("report",)

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class SignatureError(ValidationFailed):
    """Raised when model input does not match the model's signature; ``problems`` lists every one."""

    _wire_attrs: tuple[str, ...] = ("report", "problems")

    def __init__(self, problems: list[str], *, model: str | None = None) -> None:
        self.problems = list(problems)
        who = f"for model {model} " if model else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"The input {who}does not match its signature ({n} problem{'s' if n != 1 else ''}):\n{lines}",
            report=self.problems,
        )


class GateFailed(ValidationFailed):
    """Raised when a model fails one or more gates; ``report`` is the evaluation feature's
    ``GateReport`` (on a server's client: rebuilt from the report the server sent)."""

    report: Any

    def __init__(self, message: str, report: Any) -> None:
        super().__init__(message, report)

    @classmethod
    def _from_wire_value(cls, attr: str, value: Any) -> Any:
        if attr == "report" and isinstance(value, dict):
            from modelyard import _hooks

            for rebuild in _hooks.load("errors.gate_report"):
                return rebuild(value)
        return value


class UsageError(RuntimeError):
    """Raised when the API is called in the wrong order or state (a programmer error)."""


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """Return `` Did you mean 'x'?`` for the closest candidate, or an empty string."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def invalid_param(param: str, caller: str, accepted: str, value: object) -> InvalidArgumentError:
    """Build the one message template for bad arguments.

    ``The 'x' parameter of f must be <accepted>. Got 'y' instead.``
    """
    return InvalidArgumentError(
        f"The {param!r} parameter of {caller} must be {accepted}. Got {value!r} instead."
    )


# -- errors over a server's API ----------------------------------------------------------------------


@functools.cache
def _wire_classes() -> dict[str, type[ModelyardError]]:
    """The allow-list: the ModelyardError classes this module defines and exports, by name."""
    out: dict[str, type[ModelyardError]] = {}
    for name in __all__:
        cls = globals().get(name)
        if isinstance(cls, type) and issubclass(cls, ModelyardError) and cls.__module__ == __name__:
            out[name] = cls
    return out


def wire_name(exc: BaseException) -> str:
    """The most specific class of this module ``exc`` is (what a server names in its answer)."""
    allowed = _wire_classes()
    for klass in type(exc).__mro__:
        if allowed.get(klass.__name__) is klass:
            return klass.__name__
    return "ModelyardError"


def wire_details(exc: BaseException) -> dict[str, Any]:
    """The attributes of ``exc`` its class sends along (``_wire_attrs``), as JSON-able values:
    an object with ``to_dict()`` as that dict, floats made JSON-safe, anything else as text."""
    from modelyard._json import strict_json

    out: dict[str, Any] = {}
    for cls in type(exc).__mro__:
        for attr in getattr(cls, "_wire_attrs", ()):
            if attr in out or not hasattr(exc, attr):
                continue
            value = getattr(exc, attr)
            to_dict = getattr(value, "to_dict", None)
            if callable(to_dict):
                value = to_dict()
            out[attr] = strict_json(value, str_keys=True, stringify=True)
    return out


def from_wire(name: object, message: str, details: object = None) -> ModelyardError | None:
    """The error a server's answer names, rebuilt: ``name`` must be one of this module's exported
    ModelyardError classes (anything else: None, and the caller picks by HTTP status). The message is
    the server's; the class's ``_wire_attrs`` are set from ``details`` (absent ones: None). No
    constructor runs: the server already built the message."""
    cls = _wire_classes().get(name) if isinstance(name, str) else None
    if cls is None:
        return None
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    sent = details if isinstance(details, dict) else {}
    for klass in reversed(cls.__mro__):
        for attr in getattr(klass, "_wire_attrs", ()):
            setattr(exc, attr, cls._from_wire_value(attr, sent.get(attr)))
    return exc
