"""The registry's names and records: model and alias name rules, ``name/version`` and
``name@alias`` references (``parse_ref``), and the ``ModelVersion``, ``RegisteredModel`` and
``AuditEntry`` records the service returns.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelyard.errors import InvalidArgumentError
from modelyard.registry._signature import Signature

__all__ = ["AuditEntry", "ModelRef", "ModelVersion", "RegisteredModel", "parse_ref"]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,199}$")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,99}$")
#: Aliases computed by the registry, never stored.
RESERVED_ALIASES = frozenset({"latest"})

#: Extension point ``"registry.alias_move"`` (:mod:`modelyard._hooks`): functions called before an
#: alias moves, ``fn(name, alias, version, *, force, reason, uri) -> dict | None``; the dict is merged
#: into the audit row, an exception refuses the move. The evaluation feature guards protected aliases.
ALIAS_MOVE = "registry.alias_move"
#: Extension point ``"registry.alias_protected"``: ``fn(name, alias, *, uri) -> bool``, True when the
#: alias is protected; on a server moving, rolling back or deleting it then needs maintainer on the model.
ALIAS_PROTECTED = "registry.alias_protected"
STATUSES = ("ready", "archived")


def _iso(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds") if ms else None


def check_model_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgumentError(
            f"The model name {name!r} is not valid: use 1-200 letters, digits, '.', '_' or '-', "
            "starting with a "
            "letter or digit (for example 'churn-clf')."
        )
    return name


def check_alias(alias: object) -> str:
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias):
        raise InvalidArgumentError(
            f"The alias {alias!r} is not valid: use a letter then letters, digits, '_' or '-' (for example "
            "'production')."
        )
    if alias in RESERVED_ALIASES:
        raise InvalidArgumentError(
            f"The alias {alias!r} is reserved: it always means the newest ready version."
        )
    return alias


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: ``name/3``, ``name@alias``, ``name`` (latest) or ``runs:/ID/path``."""

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None
    path: str | None = None

    def __str__(self) -> str:
        if self.run_id:
            return f"runs:/{self.run_id}/{self.path}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return f"{self.name}@{self.alias or 'latest'}"


def parse_ref(ref: str) -> ModelRef:
    """Parse ``churn-clf@production``, ``churn-clf/3``, ``churn-clf@latest``, ``churn-clf`` or
    ``runs:/ID/model``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidArgumentError(
            f"A model reference must be a string like 'churn-clf@production', 'churn-clf/3' or "
            f"'runs:/RUN_ID/model'. Got {ref!r} instead."
        )
    ref = ref.strip()
    if ref.startswith("models:/"):
        ref = ref[len("models:/") :]
    if ref.startswith("runs:/"):
        rest = ref[len("runs:/") :].strip("/")
        run_id, _, path = rest.partition("/")
        if not run_id:
            raise InvalidArgumentError(f"The reference {ref!r} names no run; use 'runs:/RUN_ID/model'.")
        return ModelRef(run_id=run_id, path=path or "model")
    if "@" in ref:
        name, _, alias = ref.partition("@")
        return ModelRef(name=check_model_name(name), alias=alias or "latest")
    if "/" in ref:
        name, _, version = ref.rpartition("/")
        try:
            v = int(version)
            if v < 1:
                raise ValueError
        except ValueError:
            raise InvalidArgumentError(
                f"The version in {ref!r} must be a whole number from 1. Use 'name/3' or 'name@alias'."
            ) from None
        return ModelRef(name=check_model_name(name), version=v)
    return ModelRef(name=check_model_name(ref), alias="latest")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    flavor: str
    status: str
    run_id: str | None
    manifest_digest: str
    size: int
    created_at: int
    created_by: str | None
    modelyard_version: str
    description: str | None = None
    aliases: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    requirements: dict[str, str] = field(default_factory=dict)
    signature: Signature | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["signature"] = self.signature.to_dict() if self.signature else None
        d["created"] = _iso(self.created_at)
        return d


@dataclass(frozen=True)
class RegisteredModel:
    """A named model with its description, tags, newest version and aliases."""

    name: str
    description: str | None
    tags: dict[str, str]
    latest_version: int | None
    versions: int
    aliases: dict[str, int]
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created"] = _iso(self.created_at)
        d["updated"] = _iso(self.updated_at)
        return d


@dataclass(frozen=True)
class AuditEntry:
    """One row of a model's append-only audit log."""

    id: int
    name: str
    version: int | None
    action: str
    detail: dict[str, Any]
    reason: str | None
    actor: str | None
    at: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["when"] = _iso(self.at)
        return d


def _loads(text: str | None, default: Any) -> Any:
    return json.loads(text) if text else default


def _check_version(version: object) -> int:
    try:
        if isinstance(version, bool) or int(version) != version or int(version) < 1:  # type: ignore[call-overload]
            raise ValueError
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"The 'version' parameter of set_alias must be a whole number from 1. Got {version!r} instead."
        ) from None
    return int(version)  # type: ignore[call-overload]
