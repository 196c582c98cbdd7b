"""The deployment spec: what a server loads and how it answers, declared as data.

A spec is a pydantic model, written as YAML (or JSON) on disk or built from CLI flags::

    endpoint: churn-clf               # URL name; default: the primary model's name
    models:                           # slots: a name for each model version to load
      primary: churn-clf@production
    traffic: {kind: single, model: primary}
    fallback: {model: churn-clf/2}    # or {constant: 0}
    batching: {max_batch_size: 1024, max_latency_ms: 5, max_queue_rows: 4096}
    timeout_ms: 2000
    breaker: {error_rate: 0.5, window: 20, min_requests: 10, open_s: 5, half_open_probes: 3}
    limits: {max_body_bytes: 10485760}
    prediction_log: {sample_rate: 1.0}

``traffic`` is a tagged union on ``kind``: :data:`TRAFFIC_POLICIES` maps each kind to its
spec class and its router (``_traffic.py``). Today the only kind is ``single``; a rollout
adds its kinds to that table and to :data:`TrafficSpec`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from modelyard._yaml import read_yaml_text
from modelyard.errors import InvalidArgumentError, ModelyardError

__all__ = [
    "BatchingSpec",
    "BreakerSpec",
    "DeploymentSpec",
    "FallbackSpec",
    "LimitsSpec",
    "ModelSlot",
    "PredictionLogSpec",
    "SingleTraffic",
    "SwapError",
    "TrafficSpec",
    "load_spec",
    "parse_model_ref",
    "spec_from_flags",
]


class SwapError(ModelyardError):
    """Raised when a new spec cannot be loaded; the server keeps serving the old one."""


def parse_model_ref(ref: str) -> tuple[str, str]:
    """Split ``name@alias`` / ``name/3`` / ``name`` into ``(name, selector)``; check the shape."""
    text = ref.strip()
    if "@" in text:
        name, _, sel = text.partition("@")
        sel = "@" + sel
    elif "/" in text:
        name, _, sel = text.rpartition("/")
        if not sel.isdigit():
            raise InvalidArgumentError(
                f"The model reference {ref!r} has a version {sel!r} that is not a number. "
                "Use 'name/3', 'name@alias' (e.g. 'churn-clf@production') or 'name@latest'."
            )
    else:
        name, sel = text, "@latest"
    if not name or sel in ("@", ""):
        raise InvalidArgumentError(
            f"The model reference {ref!r} is incomplete. Use 'name/3', 'name@alias' or 'name@latest'."
        )
    return name, sel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSlot(_Strict):
    """One model version to load: a registry reference and how many warm-up predictions to run."""

    ref: str
    warmup: int = Field(default=3, ge=0, le=1000)

    @field_validator("ref")
    @classmethod
    def _check_ref(cls, v: str) -> str:
        parse_model_ref(v)
        return v.strip()

    @property
    def model_name(self) -> str:
        return parse_model_ref(self.ref)[0]


class SingleTraffic(_Strict):
    """All traffic goes to one slot."""

    kind: Literal["single"] = "single"
    model: str = "primary"

    def slots(self) -> list[str]:
        """The model slots this policy sends traffic to."""
        return [self.model]


from modelyard.serving._policy_spec import ABTraffic, BlueGreenTraffic, CanaryTraffic, ShadowTraffic  # noqa: E402

#: The tagged union of traffic policies (discriminated by ``kind``). Add new policies here
#: and in ``_traffic.ROUTERS``.
TrafficSpec = Annotated[
    SingleTraffic | CanaryTraffic | BlueGreenTraffic | ShadowTraffic | ABTraffic, Field(discriminator="kind")
]


class FallbackSpec(_Strict):
    """Who answers when the primary fails, times out or its breaker is open.

    Exactly one of ``model`` (a registry reference, loaded and warmed like the others) or
    ``constant`` (a value returned for every row).
    """

    model: str | None = None
    constant: Any = None
    warmup: int = Field(default=3, ge=0, le=1000)

    @model_validator(mode="after")
    def _one(self) -> FallbackSpec:
        if (self.model is None) == (self.constant is None):
            raise ValueError(
                "a fallback needs exactly one of 'model' (a model reference) or 'constant' (a value)"
            )
        if self.model is not None:
            parse_model_ref(self.model)
        return self


class BatchingSpec(_Strict):
    """Adaptive batching: merge concurrent requests into one predict call."""

    enabled: bool = True
    max_batch_size: int = Field(default=1024, ge=1, le=100_000)
    max_latency_ms: float = Field(default=5.0, ge=0, le=10_000)
    max_queue_rows: int = Field(default=4096, ge=1)


class BreakerSpec(_Strict):
    """Circuit breaker: open after ``error_rate`` of the last ``window`` requests failed."""

    enabled: bool = True
    error_rate: float = Field(default=0.5, gt=0, le=1)
    window: int = Field(default=20, ge=1, le=10_000)
    min_requests: int = Field(default=10, ge=1)
    open_s: float = Field(default=5.0, gt=0)
    half_open_probes: int = Field(default=3, ge=1)


class LimitsSpec(_Strict):
    """Request limits."""

    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=64)
    max_rows: int = Field(default=100_000, ge=1)
    # connection limits, read when the server starts (a swap does not change them)
    header_timeout_s: float = Field(default=10.0, gt=0)  # from a request's first byte to its last header
    body_timeout_s: float = Field(default=30.0, gt=0)  # from the headers to the last body byte
    keepalive_s: float = Field(default=30.0, gt=0)  # an idle keep-alive connection is closed after this
    max_connections: int = Field(default=1000, ge=1)  # per worker; requests beyond it answer 503


class PredictionLogSpec(_Strict):
    """Sampling of inputs and outputs into the prediction log (read by monitoring)."""

    enabled: bool = True
    sample_rate: float = Field(default=1.0, ge=0, le=1)
    max_buffer_rows: int = Field(default=100_000, ge=1)
    flush_rows: int = Field(default=20_000, ge=1)
    flush_interval_s: float = Field(default=5.0, gt=0)


class DeploymentSpec(_Strict):
    """A declarative deployment: models, traffic policy, batching, timeout, fallback, logging."""

    endpoint: str | None = None
    models: dict[str, ModelSlot]
    traffic: TrafficSpec = Field(default_factory=SingleTraffic)
    fallback: FallbackSpec | None = None
    batching: BatchingSpec = Field(default_factory=BatchingSpec)
    timeout_ms: float = Field(default=2000.0, gt=0)
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    prediction_log: PredictionLogSpec = Field(default_factory=PredictionLogSpec)
    #: Load pyfunc (cloudpickle) models, which runs code from the store: only for a trusted store.
    allow_pickle: bool = False

    @field_validator("models", mode="before")
    @classmethod
    def _slots(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ({"ref": s} if isinstance(s, str) else s) for k, s in v.items()}
        return v

    @model_validator(mode="after")
    def _check(self) -> DeploymentSpec:
        if not self.models:
            raise ValueError("'models' needs at least one slot, e.g. models: {primary: churn-clf@production}")
        for slot in self.traffic.slots():
            if slot not in self.models:
                raise ValueError(
                    f"traffic sends requests to model slot {slot!r}, which is not in 'models' "
                    f"(slots: {sorted(self.models)})"
                )
        return self

    @property
    def endpoint_name(self) -> str:
        """The name in the URL: ``endpoint``, else the model name of the first traffic slot."""
        return self.endpoint or self.models[self.traffic.slots()[0]].model_name

    def to_yaml(self) -> str:
        import yaml

        data = self.model_dump(mode="json", exclude_defaults=True)
        if "traffic" in data:  # `kind` is the tag of the union: never left out as a default
            data["traffic"] = {"kind": self.traffic.kind, **data["traffic"]}
        return yaml.safe_dump(data, sort_keys=False)


def _explain(exc: ValidationError, source: str) -> InvalidArgumentError:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(spec)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return InvalidArgumentError(f"The deployment spec {source} is not valid:\n" + "\n".join(lines))


def load_spec(source: str | os.PathLike[str] | dict[str, Any] | DeploymentSpec) -> DeploymentSpec:
    """A :class:`DeploymentSpec` from a YAML/JSON file path, YAML/JSON text, a dict or a spec."""
    if isinstance(source, DeploymentSpec):
        return source
    where = "given as a dict"
    data: Any = source
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        path = Path(text)
        if "\n" not in text and len(text) < 4096 and path.suffix.lower() in (".yaml", ".yml", ".json"):
            if not path.is_file():
                raise InvalidArgumentError(f"The deployment spec file {text!r} does not exist.")
            where = f"in {text!r}"
            text = read_yaml_text(path, what="deployment spec")
        else:
            where = "given as text"
        data = _parse_text(text, where)
    if not isinstance(data, dict):
        raise InvalidArgumentError(
            f"The deployment spec {where} must be a mapping with a 'models' key. Got "
            f"{type(data).__name__} instead."
        )
    try:
        return DeploymentSpec.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc, where) from None


def _parse_text(text: str, where: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            pass
    import yaml

    from modelyard._yaml import load_yaml

    try:
        return load_yaml(text, what=f"deployment spec {where}")
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(f"The deployment spec {where} is not valid YAML or JSON: {exc}") from None


def spec_from_flags(
    ref: str,
    *,
    fallback: str | None = None,
    timeout_ms: float | None = None,
    max_batch_size: int | None = None,
    max_latency_ms: float | None = None,
    sample_rate: float | None = None,
    batching: bool = True,
    allow_pickle: bool = False,
) -> DeploymentSpec:
    """The spec ``yard serve REF [--fallback ...]`` describes."""
    data: dict[str, Any] = {"models": {"primary": ref}, "allow_pickle": allow_pickle}
    if fallback is not None:
        data["fallback"] = _fallback_flag(fallback)
    if timeout_ms is not None:
        data["timeout_ms"] = timeout_ms
    b: dict[str, Any] = {"enabled": batching}
    if max_batch_size is not None:
        b["max_batch_size"] = max_batch_size
    if max_latency_ms is not None:
        b["max_latency_ms"] = max_latency_ms
    data["batching"] = b
    if sample_rate is not None:
        data["prediction_log"] = {"sample_rate": sample_rate}
    return load_spec(data)


def _fallback_flag(value: str) -> dict[str, Any]:
    """``--fallback churn-clf/2`` is a model; ``--fallback const:0`` or ``const:"no"`` a constant."""
    if value.startswith(("const:", "constant:")):
        raw = value.split(":", 1)[1]
        try:
            return {"constant": json.loads(raw)}
        except json.JSONDecodeError:
            return {"constant": raw}
    return {"model": value}
