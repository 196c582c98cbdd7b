"""Routers: the run-time side of a spec's traffic policy.

:data:`ROUTERS` maps a policy ``kind`` to a router class built from the policy spec and the
slot → runtime table. A router's ``choose(payload, headers)`` returns the runtime that answers a request
(pinning a version bypasses it). The rollout feature adds its kinds (canary, blue_green,
shadow, ab) here and in ``_spec.TrafficSpec``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ROUTERS", "SingleRouter", "make_router"]


class SingleRouter:
    """Every request goes to the one slot of a ``single`` policy."""

    def __init__(self, policy: Any, runtimes: dict[str, Any]) -> None:
        self.policy = policy
        self.runtime = runtimes[policy.model]

    def choose(self, payload: Any, headers: Any = None) -> Any:
        return self.runtime

    def after(self, dep: Any, rt: Any, payload: Any, answer: Any, request_id: str | None) -> None:
        """Called once the answer is known (shadow mirroring, A/B bookkeeping); nothing here."""


from modelyard.serving._routing import ABRouter, BlueGreenRouter, CanaryRouter, ShadowRouter  # noqa: E402

#: Traffic policy kind → router class.
ROUTERS: dict[str, type] = {
    "single": SingleRouter,
    "canary": CanaryRouter,
    "blue_green": BlueGreenRouter,
    "shadow": ShadowRouter,
    "ab": ABRouter,
}


def make_router(policy: Any, runtimes: dict[str, Any]) -> Any:
    """The router for ``policy`` (a traffic spec) over the loaded ``runtimes``."""
    try:
        cls = ROUTERS[policy.kind]
    except KeyError:
        raise ValueError(
            f"No router for traffic policy kind {policy.kind!r}; known: {sorted(ROUTERS)}"
        ) from None
    return cls(policy, runtimes)
