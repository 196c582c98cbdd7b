"""The deployment that routes requests between loaded model versions.

A :class:`ModelRuntime` (:mod:`modelyard.serving._model_runtime`) is one warmed model version
with its own predict thread, batcher and circuit breaker. A :class:`Deployment` is everything
one spec loaded: the runtimes of its slots, the fallback and the router. The server swaps whole
deployments; a request holds the deployment it started on until it is answered, so in-flight
requests finish on the old one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, overload

from modelyard.errors import ValidationFailed
from modelyard.serving._codec import HTTPProblem, Payload
from modelyard.serving._metrics import ServingMetrics
from modelyard.serving._model_runtime import ModelRuntime
from modelyard.serving._routing import observe
from modelyard.serving._spec import DeploymentSpec, ModelSlot
from modelyard.serving._traffic import make_router

__all__ = ["Answer", "Deployment", "ModelRuntime", "load_deployment"]

log = logging.getLogger("modelyard.serving")

Loader = Callable[[str], Any]


def _is_input_error(exc: BaseException) -> bool:
    return isinstance(exc, ValidationFailed)


def input_problem(exc: BaseException) -> HTTPProblem:
    problems = [str(p) for p in (getattr(exc, "problems", None) or [])]
    head = str(exc).split("\n")[0].rstrip(":") or "The input does not match the model signature"
    return HTTPProblem(422, "invalid_input", f"{head}; see 'problems'.", problems=problems or [str(exc)])


async def predict_on(rt: ModelRuntime, payload: Payload) -> tuple[Any, str | None, BaseException | None]:
    """``(output, None, None)``, or ``(None, "timeout" | "error", exception)`` when ``rt`` did not
    answer within the deployment's timeout (its batcher's deadline) or raised; a 4xx (input the
    model refused, a full queue) raises."""
    try:
        return await rt.predict(payload), None, None
    except HTTPProblem:
        raise
    except TimeoutError:
        return None, "timeout", None
    except Exception as exc:
        if _is_input_error(exc):
            raise input_problem(exc) from None
        return None, "error", exc


@dataclass
class Answer:
    """What answered a request."""

    output: Any
    runtime: ModelRuntime | None
    fallback: bool = False
    reason: str | None = None
    payload: Payload | None = None  # what the model received (signature columns), for the prediction log

    @property
    def name(self) -> str | None:
        return self.runtime.name if self.runtime else None

    @property
    def version(self) -> int | None:
        return self.runtime.version if self.runtime else None


class Deployment:
    """Everything one spec loaded; answers requests with routing, timeout, breaker and fallback."""

    def __init__(
        self,
        spec: DeploymentSpec,
        runtimes: dict[str, ModelRuntime],
        fallback: ModelRuntime | None,
        metrics: ServingMetrics,
    ) -> None:
        self.spec = spec
        self.endpoint = spec.endpoint_name
        self.runtimes = runtimes
        self.fallback_runtime = fallback
        self.metrics = metrics
        self.router = make_router(spec.traffic, runtimes)
        self.timeout = spec.timeout_ms / 1000.0
        self.loaded_at = time.time()
        self.in_flight = 0
        self.retired = False
        self._closed = False
        self.predlog: Any = None  # set by the server: shadow answers go to the prediction log
        self.by_version: dict[int, ModelRuntime] = {}
        for rt in [*runtimes.values(), *([fallback] if fallback else [])]:
            self.by_version.setdefault(rt.version, rt)
        primary = runtimes[spec.traffic.slots()[0]]
        self.primary = primary
        self.columns = primary.columns
        self.model_names = {rt.name for rt in self.by_version.values()}

    def all_runtimes(self) -> list[ModelRuntime]:
        return list(
            {
                id(r): r
                for r in [
                    *self.runtimes.values(),
                    *([self.fallback_runtime] if self.fallback_runtime else []),
                ]
            }.values()
        )

    @overload
    def runtime_for(self, version: int) -> ModelRuntime: ...
    @overload
    def runtime_for(self, version: None) -> None: ...
    @overload
    def runtime_for(self, version: int | None) -> ModelRuntime | None: ...
    def runtime_for(self, version: int | None) -> ModelRuntime | None:
        """The loaded runtime of ``version`` (404 when it is not loaded); None for no version."""
        if version is None:
            return None
        rt = self.by_version.get(version)
        if rt is None:
            raise HTTPProblem(
                404,
                "unknown_version",
                f"Version {version} of {self.endpoint!r} is not loaded on this server. "
                f"Loaded versions: {sorted(self.by_version)}.",
            )
        return rt

    async def answer(
        self,
        payload: Payload,
        *,
        version: int | None = None,
        headers: Any = None,
        request_id: str | None = None,
    ) -> Answer:
        """Predict ``payload`` (on ``version`` when pinned, else where the traffic policy routes it,
        by the request ``headers``), falling back when the model fails."""
        pinned = self.runtime_for(version)
        rt = pinned or self.router.choose(payload, headers)
        t0 = time.perf_counter()
        answer: Answer | None = None
        code: str | None = None
        try:
            answer = await self._answer_on(rt, payload)
            return answer
        except HTTPProblem as p:  # a 4xx (but 429) is the client's: outcome "invalid", not a model error
            code = "invalid_input" if 400 <= p.status < 500 and p.status != 429 else p.code
            raise
        finally:  # per-version signals for rollouts; shadow mirroring starts after the answer
            observe(self.metrics.routing, rt, answer, code, time.perf_counter() - t0)
            if pinned is None:
                self.router.after(self, rt, payload, answer, request_id)

    async def _answer_on(self, rt: ModelRuntime, payload: Payload) -> Answer:
        mine = rt.inputs.check(payload)  # a 422 here never reaches the breaker or the fallback
        if payload.options and not rt.has_proba:
            raise HTTPProblem(
                422,
                "no_probabilities",
                f"Model {rt.name}/{rt.version} "
                f"({getattr(rt.model, 'flavor', 'model')}) has no class probabilities (predict_proba); "
                "ask without 'proba'.",
            )
        if not rt.breaker.allow():
            return await self._fallback(payload, rt, "circuit_open", checked=mine)
        out, failed, exc = await predict_on(rt, mine)  # the batcher bounds the wait by the timeout
        rt.breaker.record(failed is None)
        if failed is not None:
            return await self._fallback(payload, rt, failed, exc, checked=mine)
        return Answer(out, rt, payload=mine)

    async def _fallback(
        self,
        payload: Payload,
        primary: ModelRuntime,
        reason: str,
        exc: BaseException | None = None,
        *,
        checked: Payload | None = None,
    ) -> Answer:
        fb = self.spec.fallback
        if fb is None or (
            payload.options
            and (fb.constant is not None or not self.fallback_runtime or not self.fallback_runtime.has_proba)
        ):
            raise self._failure(primary, reason, exc)
        self.metrics.fallbacks.labels(primary.name, reason).inc()
        if fb.constant is not None:
            return Answer([fb.constant] * payload.n, None, True, reason, payload=checked)
        rt = self.fallback_runtime
        assert rt is not None
        mine = rt.inputs.check(payload)
        out, failed, exc2 = await predict_on(rt, mine)
        if failed is not None:
            what = "timed out" if failed == "timeout" else f"raised {type(exc2).__name__}: {exc2}"
            raise self._failure(primary, reason, exc, fallback_failed=what)
        return Answer(out, rt, True, reason, payload=mine)

    def _failure(
        self, rt: ModelRuntime, reason: str, exc: BaseException | None, fallback_failed: str | None = None
    ) -> HTTPProblem:
        what = {
            "timeout": f"did not answer within {self.spec.timeout_ms:g} ms",
            "circuit_open": "has its circuit breaker open after too many failures",
            "error": f"raised {type(exc).__name__}: {exc}" if exc else "failed",
        }[reason]
        msg = f"Model {rt.name}/{rt.version} {what}"
        msg += f", and the fallback {fallback_failed}." if fallback_failed else "; no fallback is configured."
        if reason == "timeout":
            return HTTPProblem(504, "timeout", msg)
        headers = (
            {"retry-after": str(max(1, round(self.spec.breaker.open_s)))} if reason == "circuit_open" else {}
        )
        return HTTPProblem(503, "model_error" if reason == "error" else reason, msg, headers=headers)

    # -- lifecycle ------------------------------------------------------------------------------
    def retire(self) -> None:
        """No new requests; close once the in-flight ones are answered."""
        self.retired = True
        if self.in_flight == 0:
            self.close()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.retired and self.in_flight == 0:
            self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for rt in self.all_runtimes():
            rt.close()

    def describe(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "models": {slot: rt.describe() for slot, rt in self.runtimes.items()},
            "fallback": (
                self.fallback_runtime.describe()
                if self.fallback_runtime
                else {"constant": self.spec.fallback.constant}
                if self.spec.fallback
                else None
            ),
            "traffic": self.spec.traffic.model_dump(mode="json"),
        }


def load_deployment(spec: DeploymentSpec, loader: Loader, metrics: ServingMetrics) -> Deployment:
    """Load and warm every model of ``spec`` (in this thread); raise if any fails to load."""
    loaded: dict[str, Any] = {}

    def get(slot: ModelSlot | str) -> Any:
        ref = slot if isinstance(slot, str) else slot.ref
        if ref not in loaded:
            loaded[ref] = loader(ref)
        return loaded[ref]

    runtimes: dict[str, ModelRuntime] = {}
    made: dict[tuple[str, int], ModelRuntime] = {}
    try:
        for name, slot in spec.models.items():
            model = get(slot)
            key = (str(model.name), int(model.version))
            if key not in made:
                made[key] = ModelRuntime(model, spec, metrics, role=name)
                made[key].warm(slot.warmup)
            runtimes[name] = made[key]
        fallback = None
        if spec.fallback is not None and spec.fallback.model is not None:
            model = get(spec.fallback.model)
            key = (str(model.name), int(model.version))
            if key not in made:
                made[key] = ModelRuntime(model, spec, metrics, role="fallback")
                made[key].warm(spec.fallback.warmup)
            fallback = made[key]
    except BaseException:
        for rt in made.values():
            rt.close()
        raise
    return Deployment(spec, runtimes, fallback, metrics)
