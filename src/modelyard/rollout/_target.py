"""Where a rollout's traffic lives: a model server reached over HTTP, or one in this process.

A target reads and swaps the server's deployment spec and scrapes its ``/metrics``:

* :class:`HttpTarget` — ``GET``/``PUT /admin/spec`` with the admin token (``YARD_SERVE_ADMIN_TOKEN``,
  never stored) and ``GET /metrics``. With ``yard serve --workers N`` the ``PUT`` answers once
  every worker serves the new spec (its answer lists each worker's applied spec digest).
* :class:`LocalTarget` — a :class:`~modelyard.serving.ModelServer` object (tests, notebooks,
  the quickstart).
* :class:`~modelyard.rollout._kube.KubernetesTarget` — a deployment on Kubernetes: its spec
  ConfigMap through the API server, its metrics from Prometheus (``k8s://NAMESPACE/NAME?prometheus=URL``).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from modelyard.errors import ConfigError, InvalidArgumentError, ModelyardError

__all__ = ["HttpTarget", "LocalTarget", "Target", "TargetError", "target_from"]


class TargetError(ModelyardError):
    """Raised when the model server cannot be read or refuses a spec."""


class Target(Protocol):
    def spec(self) -> dict[str, Any]: ...
    def versions(self) -> dict[str, int]: ...
    def apply(self, spec: dict[str, Any]) -> None: ...
    def scrape(self) -> str: ...
    def describe(self) -> dict[str, Any]: ...


class HttpTarget:
    """A model server at ``url`` (its admin API must be on)."""

    def __init__(
        self, url: str, token: str | None = None, *, timeout: float = 10.0, swap_timeout: float = 300.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError(f"The server URL {url!r} must start with http:// or https://.")
        self.url = url.rstrip("/")
        self._token = token if token is not None else os.environ.get("YARD_SERVE_ADMIN_TOKEN")
        self.timeout = timeout
        self.swap_timeout = swap_timeout

    def __repr__(self) -> str:
        return f"HttpTarget({self.url!r}, token={'set' if self._token else 'unset'})"

    def _headers(self) -> dict[str, str]:
        if not self._token:
            raise ConfigError(
                f"Set YARD_SERVE_ADMIN_TOKEN to the admin token of the server at {self.url} (the "
                f"server must be "
                "started with the same variable) so the rollout can change its traffic."
            )
        return {"authorization": f"Bearer {self._token}"}

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        import httpx

        try:
            r = httpx.request(method, self.url + path, **kw)
        except httpx.HTTPError as exc:
            raise TargetError(
                f"The model server at {self.url} did not answer {method} {path}: {type(exc).__name__}: {exc}"
            ) from None
        if r.status_code >= 400:
            try:
                msg = r.json().get("error") or r.text
            except ValueError:
                msg = r.text
            raise TargetError(
                f"The model server at {self.url} answered {r.status_code} to {method} {path}: {msg}"
            )
        return r

    def spec(self) -> dict[str, Any]:
        spec: dict[str, Any] | None = (
            self._call("GET", "/admin/spec", headers=self._headers(), timeout=self.timeout).json().get("spec")
        )
        if not spec:
            raise TargetError(f"The model server at {self.url} has no deployment loaded.")
        return spec

    def versions(self) -> dict[str, int]:
        import httpx

        try:
            body = httpx.get(self.url + "/health/ready", timeout=self.timeout).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TargetError(f"The model server at {self.url} did not answer /health/ready: {exc}") from None
        return {slot: int(m["version"]) for slot, m in (body.get("models") or {}).items()}

    def apply(self, spec: dict[str, Any]) -> None:
        """Swap the server to ``spec``; returns once every worker serves it. The server answers
        200 only then (a worker that cannot load it, a later swap or a timeout are errors); the
        per-worker state in the answer is checked too, so a step's metrics baseline is never
        taken while a worker still answers with the old traffic."""
        import json

        r = self._call(
            "PUT",
            "/admin/spec",
            headers={**self._headers(), "content-type": "application/json"},
            content=json.dumps(spec),
            timeout=self.swap_timeout,
        )
        try:
            body = r.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("status") != "swapped":
            raise TargetError(f"The model server at {self.url} did not confirm the swap: {r.text[:300]}")
        workers = body.get("workers")
        if workers is not None:  # several workers: each must report the new spec's digest
            behind = [w for w in workers if w.get("digest") != body.get("digest") or not w.get("ok")]
            if behind or not workers:
                raise TargetError(
                    f"The model server at {self.url} answered 'swapped' but these workers do not serve "
                    f"the new spec: {behind}"
                )

    def scrape(self) -> str:
        text: str = self._call("GET", "/metrics", timeout=self.timeout).text
        return text

    def describe(self) -> dict[str, Any]:
        return {"url": self.url}


class LocalTarget:
    """A :class:`~modelyard.serving.ModelServer` in this process."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def __repr__(self) -> str:
        return f"LocalTarget({self.server!r})"

    def spec(self) -> dict[str, Any]:
        spec = self.server.spec
        if spec is None:
            raise TargetError("The model server has no deployment loaded.")
        dumped: dict[str, Any] = spec.model_dump(mode="json")
        return dumped

    def versions(self) -> dict[str, int]:
        dep = self.server.deployment
        return {slot: rt.version for slot, rt in dep.runtimes.items()} if dep else {}

    def apply(self, spec: dict[str, Any]) -> None:
        from modelyard.serving import SwapError

        try:
            self.server.swap(spec)
        except SwapError as exc:
            raise TargetError(str(exc)) from None

    def scrape(self) -> str:
        data, _ = self.server.metrics.render()
        text: str = data.decode()
        return text

    def describe(self) -> dict[str, Any]:
        return {"local": True}


def target_from(stored: dict[str, Any], given: Any = None) -> Any:
    """The target to drive: ``given`` (a target, a server object or a URL) else the stored one."""
    if given is not None:
        if isinstance(given, str):
            if given.startswith("k8s://"):
                from modelyard.rollout._kube import KubernetesTarget

                return KubernetesTarget.from_url(given)
            return HttpTarget(given)
        if hasattr(given, "apply") and hasattr(given, "scrape"):
            return given
        if hasattr(given, "swap") and hasattr(given, "metrics"):
            return LocalTarget(given)
        raise InvalidArgumentError(
            f"A rollout target must be a server URL, a ModelServer or a target. Got {given!r}."
        )
    if stored.get("url"):
        return HttpTarget(stored["url"])
    if stored.get("kubernetes"):
        from modelyard.rollout._kube import KubernetesTarget

        return KubernetesTarget.from_description(stored["kubernetes"])
    raise ConfigError(
        "This rollout drives a model server inside another process (started with a ModelServer object); "
        "pass the same server as target= to act on it."
    )
