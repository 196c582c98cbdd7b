"""What a rollout does: strategy, steps, windows, success conditions, webhooks (validated).

A step is judged on sample counts, not on time: it passes once every check has ``min_requests``
samples (and passed) and it ran for at least ``interval_s``; a step still short of samples waits
for them up to ``max_wait_s`` more before it is inconclusive (and pauses for a human).

Units are explicit: durations are strings with a unit (``500ms``, ``30s``, ``2m``, ``1h``) or
seconds as numbers; rates are fractions (``0.01``) or percentages (``"1%"``); latency in ms.

Webhooks are references, never URLs: ``env:NAME`` (an environment variable of the process that
drives the rollout) or ``file:PATH`` (a file holding the URL). The config is stored with the
rollout and printed by ``yard rollout status --json``, and a Slack/Teams webhook URL carries its
token in the path, so a literal URL is refused; the reference is resolved at each delivery.
"""

from __future__ import annotations

import math
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from modelyard._redact import is_reference, redact_webhook, resolve_secret
from modelyard._shared import parse_duration_s
from modelyard.errors import InvalidArgumentError

__all__ = [
    "STRATEGIES",
    "PromQuery",
    "RolloutConfig",
    "Step",
    "load_config",
    "parse_rate",
    "plan_steps",
    "webhook_url",
]

STRATEGIES = ("canary", "blue_green", "shadow", "ab")


def parse_rate(value: Any, what: str) -> float:
    """A fraction in [0, 1] from ``0.01`` or ``"1%"``; refuses ``5`` (a percentage without ``%``)."""
    text = str(value).strip()
    try:
        rate = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(
            f"{what} must be a fraction like 0.01 or a percentage like 1%. Got {value!r} instead"
        ) from None
    if not math.isfinite(rate) or not 0 <= rate <= 1:
        hint = f" (did you mean {rate:g}%?)" if 1 < rate <= 100 and not text.endswith("%") else ""
        raise ValueError(
            f"{what} must be a fraction from 0 to 1 (0.01 is 1%) or a percentage like 1%. "
            f"Got {value!r} instead{hint}"
        )
    return rate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PromQuery(_Strict):
    """A metric read from a Prometheus server by PromQL, checked against ``max`` and/or ``min``.

    ``query`` may use ``$model``, ``$stable`` and ``$candidate`` (filled in) and should return
    one sample (its first sample is used)."""

    name: str
    url: str
    query: str
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _bounds(self) -> PromQuery:
        if self.max is None and self.min is None:
            raise ValueError(
                f"the Prometheus metric {self.name!r} needs 'max' or 'min' to be checked against"
            )
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the Prometheus URL {self.url!r} must start with http:// or https://")
        return self


class RolloutConfig(_Strict):
    """Every knob of a rollout (see ``yard rollout start --help``)."""

    strategy: Literal["canary", "blue_green", "shadow", "ab"] = "canary"
    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0])
    interval_s: float = 120.0
    max_wait_s: float = 600.0
    preview_analysis_s: float | None = None
    duration_s: float | None = None
    tick_s: float | None = None
    min_requests: int = Field(default=100, ge=1)
    max_error_rate: float | None = 0.01
    max_p99_ms: float | None = None
    max_fallback_rate: float | None = None
    max_drift: float | None = None
    min_agreement: float | None = None
    shadow_percent: float = Field(default=100.0, gt=0, le=100)
    split: float = Field(default=50.0, gt=0, lt=100)
    sticky_header: str | None = None
    preview_header: str = "x-yard-preview"
    outcome: str = "conversion"
    outcome_kind: Literal["binary", "continuous"] = "binary"
    goal: Literal["increase", "decrease"] = "increase"
    min_samples: int = Field(default=1000, ge=2)
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    auto_promote: bool | None = None
    webhooks: list[str] = Field(default_factory=list)
    prometheus: list[PromQuery] = Field(default_factory=list)

    @field_validator("interval_s", "max_wait_s", "preview_analysis_s", "duration_s", "tick_s", mode="before")
    @classmethod
    def _durations(cls, v: Any, info: Any) -> Any:
        return (
            None
            if v is None
            else parse_duration_s(v, what=info.field_name.removesuffix("_s").replace("_", "-"))
        )

    @field_validator("max_error_rate", "max_fallback_rate", "min_agreement", mode="before")
    @classmethod
    def _rates(cls, v: Any, info: Any) -> Any:
        return None if v is None else parse_rate(v, info.field_name.replace("_", "-"))

    @field_validator("max_p99_ms")
    @classmethod
    def _p99(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v < 1):
            raise ValueError(
                f"max-p99-ms is in milliseconds and must be at least 1 (e.g. 50). Got {v!r} instead"
                + (f" (did you mean {v * 1000:g} ms?)" if 0 < v < 1 else "")
            )
        return v

    @field_validator("max_drift")
    @classmethod
    def _drift(cls, v: float | None) -> float | None:
        if v is not None and (not math.isfinite(v) or v <= 0):
            raise ValueError(
                f"max-drift is a population stability index (PSI; 0.1 small, 0.25 large) and must be "
                f"positive. Got {v!r} instead"
            )
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("steps needs at least one percentage, e.g. 5,25,50,100")
        bad = [w for w in v if not math.isfinite(w) or not 0 < w <= 100]
        if bad or any(b <= a for a, b in pairwise(v)):
            raise ValueError(
                "steps must be percentages of traffic for the candidate, increasing, above 0 and at "
                f"most 100 (e.g. 5,25,50,100). Got {','.join(f'{w:g}' for w in v)} instead"
            )
        return v

    @field_validator("webhooks")
    @classmethod
    def _hooks(cls, v: list[str], info: ValidationInfo) -> list[str]:
        new = bool(info.context and info.context.get("new"))
        out = []
        for ref in v:
            if ref.startswith(("http://", "https://")):
                if new:
                    raise ValueError(
                        f"the webhook {redact_webhook(ref)} is a URL, which would be stored in "
                        f"plain text with the "
                        "rollout (a Slack or Teams webhook URL holds its token); put it in an "
                        "environment variable "
                        "or a file and pass env:NAME or file:PATH instead, e.g. --webhook "
                        "env:SLACK_WEBHOOK_URL"
                    )
                # stored by an older modelyard: still delivered, never shown (see Rollout.to_dict)
            elif not is_reference(ref) or not ref.partition(":")[2]:
                raise ValueError(
                    f"the webhook {redact_webhook(ref)!r} must be env:NAME (an environment variable "
                    "holding the URL) or file:PATH (a file holding it)"
                )
            elif new and ref.startswith("file:"):  # the driver may run elsewhere: store where the file is
                ref = "file:" + str(Path(ref[5:]).expanduser().resolve())
            out.append(ref)
        return out

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, [redact_webhook(w) for w in value] if name == "webhooks" else value

    @property
    def promote_automatically(self) -> bool:
        return self.auto_promote if self.auto_promote is not None else self.strategy != "shadow"

    @property
    def tick(self) -> float:
        """Seconds between two analyses: a tenth of the shortest window, from 50 ms to 5 s."""
        if self.tick_s is not None:
            return self.tick_s
        windows = [w for w in (self.interval_s, self.preview_analysis_s, self.duration_s) if w]
        return min(5.0, max(0.05, min(windows) / 10))


def load_config(**kwargs: Any) -> RolloutConfig:
    """A :class:`RolloutConfig` from keyword arguments; errors name each bad field."""
    try:
        return RolloutConfig.model_validate(kwargs, context={"new": True})
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(config)"
            msg = err["msg"].removeprefix("Value error, ").removesuffix(".")
            lines.append(msg if err["type"] == "value_error" else f"{loc}: {msg}")
        raise InvalidArgumentError("The rollout is not valid: " + "; ".join(lines) + ".") from None


def webhook_url(ref: str) -> str:
    """The URL a webhook reference stands for now (a URL stored by an older version as is)."""
    url = ref if ref.startswith(("http://", "https://")) else resolve_secret(ref, what="webhook")
    if not url.startswith(("http://", "https://")):
        raise InvalidArgumentError(f"The webhook {ref!r} does not hold an http:// or https:// URL.")
    return url


class Step(_Strict):
    """One step of a rollout: its name, traffic policy (over slots ``stable``/``candidate``) and window."""

    name: str
    traffic: dict[str, Any]
    window_s: float
    candidate_share: float


def plan_steps(cfg: RolloutConfig) -> list[Step]:
    """The steps ``cfg`` describes."""
    if cfg.strategy == "canary":
        out = []
        for w in cfg.steps:
            traffic: dict[str, Any] = {"kind": "canary", "weights": {"stable": 100 - w, "candidate": w}}
            if cfg.sticky_header:
                traffic["sticky_header"] = cfg.sticky_header
            out.append(
                Step(name=f"canary {w:g}%", traffic=traffic, window_s=cfg.interval_s, candidate_share=w)
            )
        return out
    if cfg.strategy == "blue_green":
        preview = {
            "kind": "blue_green",
            "active": "stable",
            "preview": "candidate",
            "preview_header": cfg.preview_header,
        }
        switch = {
            "kind": "blue_green",
            "active": "candidate",
            "preview": "stable",
            "preview_header": cfg.preview_header,
        }
        return [
            Step(
                name="preview",
                traffic=preview,
                window_s=cfg.preview_analysis_s or cfg.interval_s,
                candidate_share=0,
            ),
            Step(name="switch", traffic=switch, window_s=cfg.interval_s, candidate_share=100),
        ]
    if cfg.strategy == "shadow":
        shadow = {"kind": "shadow", "primary": "stable", "shadow": "candidate", "percent": cfg.shadow_percent}
        return [
            Step(
                name=f"shadow {cfg.shadow_percent:g}%",
                traffic=shadow,
                window_s=cfg.duration_s or cfg.interval_s,
                candidate_share=0,
            )
        ]
    ab: dict[str, Any] = {"kind": "ab", "arms": {"stable": 100 - cfg.split, "candidate": cfg.split}}
    if cfg.sticky_header:
        ab["key_header"] = cfg.sticky_header
    return [
        Step(
            name=f"A/B {100 - cfg.split:g}/{cfg.split:g}",
            traffic=ab,
            window_s=cfg.duration_s or cfg.interval_s,
            candidate_share=cfg.split,
        )
    ]
