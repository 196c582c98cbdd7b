"""Traffic policies beyond ``single``: canary, blue-green, shadow and A/B (the rollout feature).

Each is a member of the spec's ``traffic`` union (discriminated by ``kind``) and has a router in
``_routing.py``. The first slot a policy names is its *primary*: the stable version whose
signature the endpoint advertises.

    traffic: {kind: canary, weights: {stable: 95, canary: 5}, sticky_header: X-User-Id}
    traffic: {kind: blue_green, active: blue, preview: green, preview_header: X-Yard-Preview}
    traffic: {kind: shadow, primary: stable, shadow: candidate, percent: 100}
    traffic: {kind: ab, arms: {control: 50, treatment: 50}, key_header: X-User-Id}
"""

from __future__ import annotations

import math
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ABTraffic", "BlueGreenTraffic", "CanaryTraffic", "ShadowTraffic", "check_weights"]

_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")


class _Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_weights(weights: dict[str, float], what: str) -> dict[str, float]:
    """Percentages per slot: each in [0, 100], adding up to 100."""
    if not weights:
        raise ValueError(f"{what} needs at least one slot with a weight, e.g. {{stable: 95, canary: 5}}")
    for slot, w in weights.items():
        if (
            not isinstance(w, (int, float))
            or isinstance(w, bool)
            or not math.isfinite(w)
            or not 0 <= w <= 100
        ):
            raise ValueError(
                f"the {what} of slot {slot!r} must be a percentage from 0 to 100. Got {w!r} instead"
            )
    total = sum(weights.values())
    if abs(total - 100) > 1e-6:
        terms = " + ".join(f"{w:g}" for w in weights.values())
        raise ValueError(f"{what} must add up to 100 (percent); got {terms} = {total:g}")
    return weights


def _check_header(v: str | None) -> str | None:
    if v is not None and not _HEADER.match(v):
        raise ValueError(f"{v!r} is not a valid HTTP header name")
    return v.lower() if v is not None else None


class CanaryTraffic(_Policy):
    """A weighted split: each request picks a slot with probability ``weight/100``. With
    ``sticky_header`` a request carrying that header is routed by a hash of its value, so one key
    always reaches the same slot while the weights stay the same."""

    kind: Literal["canary"] = "canary"
    weights: dict[str, float]
    sticky_header: str | None = None
    salt: str = ""

    @field_validator("weights")
    @classmethod
    def _w(cls, v: dict[str, float]) -> dict[str, float]:
        return check_weights(v, "canary weights")

    _h = field_validator("sticky_header")(classmethod(lambda cls, v: _check_header(v)))

    def slots(self) -> list[str]:
        return list(self.weights)


class BlueGreenTraffic(_Policy):
    """Everything goes to ``active``; requests with ``preview_header`` set reach ``preview``.
    Switching is one spec swap that exchanges the two."""

    kind: Literal["blue_green"] = "blue_green"
    active: str
    preview: str
    preview_header: str = "x-yard-preview"

    _h = field_validator("preview_header")(classmethod(lambda cls, v: _check_header(v)))

    def slots(self) -> list[str]:
        return [self.active, self.preview]


class ShadowTraffic(_Policy):
    """``primary`` answers; ``percent`` of requests are mirrored to ``shadow`` after the answer
    is sent. The shadow's outputs are compared with the primary's (agreement within
    ``tolerance``, mean absolute distance) and never returned. At most ``max_pending`` mirrored
    requests wait; more are dropped (counted), so the shadow never slows the primary."""

    kind: Literal["shadow"] = "shadow"
    primary: str
    shadow: str
    percent: float = Field(default=100.0, gt=0, le=100)
    tolerance: float = Field(default=1e-6, ge=0)
    max_pending: int = Field(default=64, ge=1, le=100_000)

    def slots(self) -> list[str]:
        return [self.primary, self.shadow]


class ABTraffic(_Policy):
    """An A/B test: a request's arm is a hash of its ``key_header`` value (sticky per key);
    the first arm is the control. Outcomes arrive at ``POST /v1/models/{name}/feedback``.
    Requests without the header are split by the weights at random (not sticky)."""

    kind: Literal["ab"] = "ab"
    arms: dict[str, float]
    key_header: str = "x-user-id"
    salt: str = ""

    @field_validator("arms")
    @classmethod
    def _w(cls, v: dict[str, float]) -> dict[str, float]:
        check_weights(v, "A/B arm weights")
        if len(v) < 2:
            raise ValueError("an A/B test needs two arms, e.g. arms: {control: 50, treatment: 50}")
        return v

    _h = field_validator("key_header")(classmethod(lambda cls, v: _check_header(v)))

    def slots(self) -> list[str]:
        return list(self.arms)
