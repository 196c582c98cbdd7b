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
    │   └── FilterSyntaxError    a search filter does not parse; points at the token
    ├── ConflictError            the call contradicts what is stored (param changed, run ended)
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
        └── SignatureError       model input does not match the model's signature (.problems)

Feature errors in the tree, defined beside their feature::

    ModelyardError
    ├── InvalidArgumentError
    │   └── PolicyError          evaluation._policy: a gate policy file is not valid
    ├── AuthenticationError
    │   ├── TooManyAttempts      server._app: too many failed logins from one address (429)
    │   └── LoginNeeded          webui._session: no session cookie; the page redirects to the login form
    ├── ConflictError
    │   ├── RolloutStateError    rollout._state: the action does not fit the rollout's state
    │   └── RevisionConflict     rollout._writes: the rollout changed since it was read
    ├── ValidationFailed
    │   └── GateFailed           evaluation._gates: a model version failed its gates (.report)
    ├── SwapError                serving._app: a new deployment spec was not applied (old one serves)
    ├── ImageBuildError          deploy._build: no container builder can run, or the build failed
    └── TargetError              rollout._target: the model server cannot be read or refuses a spec

    UsageError(RuntimeError)     the API was used in the wrong order (programmer error)

Outside the tree on purpose (never reach a caller)::

    HTTPProblem(Exception)       serving._codec: an HTTP error answer on its way out of the model
                                 server, turned into a 4xx JSON response where it is caught
    _DamagedManifest(Exception)  _maintenance: private, caught in its module by ``yard doctor``

``tests/test_errors_tree.py`` checks that every exception class of modelyard is drawn here.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "AlreadyExistsError",
    "ApiVersionError",
    "AuthenticationError",
    "BlobError",
    "BlobNotFoundError",
    "ConfigError",
    "ConflictError",
    "FilterSyntaxError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidKeyError",
    "ModelyardError",
    "NotFoundError",
    "PermissionDeniedError",
    "SchemaVersionError",
    "SerializationError",
    "ServerError",
    "SignatureError",
    "StepFailedError",
    "StoreError",
    "UsageError",
    "ValidationFailed",
    "did_you_mean",
    "invalid_param",
]


class ModelyardError(Exception):
    """Base of every operational modelyard error."""

    #: Exit code the CLI uses when this error reaches it.
    exit_code: int = 1


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


class ConflictError(ModelyardError):
    """Raised when a call contradicts what is already stored (a param changed, a run ended)."""


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

    def __init__(
        self, message: str, *, step: str = "", traceback: str = "", run_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.step = step
        self.traceback = traceback
        self.run_id = run_id


class ValidationFailed(ModelyardError):
    """Raised when data or a model does not pass its checks; carries the report."""

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class SignatureError(ValidationFailed):
    """Raised when model input does not match the model's signature; ``problems`` lists every one."""

    def __init__(self, problems: list[str], *, model: str | None = None) -> None:
        self.problems = list(problems)
        who = f"for model {model} " if model else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(
            f"The input {who}does not match its signature ({n} problem{'s' if n != 1 else ''}):\n{lines}",
            report=self.problems,
        )


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
