"""Routers of the rollout traffic policies, and the per-version signals a rollout analyses.

A router's ``choose(payload, headers)`` picks the runtime that answers a request; ``after(...)``
runs once the answer is known (the shadow router mirrors the request there, the A/B router
remembers which arm answered which request id). :class:`RoutingMetrics` counts, per model
version *chosen by the router* (not the one that finally answered: a fallback answer counts
against the version that failed), the outcome and the latency of each request, the shadow
comparisons and the A/B outcomes reported through ``POST /v1/models/{name}/feedback``. They are
Prometheus families on the server's registry, so ``/metrics`` carries them (merged over
workers) and the rollout controller, or a Prometheus server, reads windows of them.

Sticky assignment hashes ``salt:key`` with BLAKE2b (8 bytes) into [0, 100): the same key reaches
the same slot on every worker and after every restart while the weights do not change.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
from bisect import bisect_right
from collections import OrderedDict
from typing import Any

from modelyard.serving._predlog import TypedColumns

__all__ = [
    "ABRouter",
    "BlueGreenRouter",
    "CanaryRouter",
    "RoutingMetrics",
    "ShadowRouter",
    "WeightedChoice",
    "bucket",
    "feedback",
    "observe",
]

log = logging.getLogger("modelyard.serving")

#: Finer than the request-latency buckets: p99 thresholds of tens of milliseconds need them.
LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    0.75,
    1.0,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)
_CODE_OUTCOME = {
    "invalid_input": "invalid",
    "timeout": "timeout",
    "model_error": "error",
    "circuit_open": "circuit_open",
    "overloaded": "rejected",
}


class RoutingMetrics:
    """Per-version routed outcomes, latency, shadow comparisons and A/B feedback."""

    def __init__(self, registry: Any, multiprocess: bool = False) -> None:
        from modelyard.serving._metrics import CountAndTime, counter, gauge, histogram

        r = registry
        mv = ("model", "version")
        arm = (*mv, "arm", "outcome")
        self.requests = counter(
            r,
            "yard_serving_routed_requests",
            "Requests by the version the router chose, and their outcome "
            "(ok, error, timeout, circuit_open, invalid, rejected).",
            *mv,
            "outcome",
        )
        self.fallbacks = counter(
            r,
            "yard_serving_routed_fallbacks",
            "Requests routed to a version and answered by the fallback.",
            *mv,
        )
        self.latency = histogram(
            r,
            "yard_serving_routed_latency_seconds",
            "Latency of requests by the version the router chose.",
            LATENCY_BUCKETS,
            *mv,
        )
        self.shadow = counter(
            r,
            "yard_serving_shadow_comparisons",
            "Mirrored requests by shadow version and result (agree, disagree, error, dropped).",
            *mv,
            "result",
        )
        self.shadow_distance = counter(
            r,
            "yard_serving_shadow_distance",
            "Sum over compared requests of the mean absolute difference "
            "(share of differing labels) between shadow and primary outputs.",
            *mv,
        )
        self.ab_assignments = counter(
            r, "yard_serving_ab_assignments", "Requests assigned to each A/B arm.", *mv, "arm"
        )
        self.ab_count = counter(r, "yard_serving_ab_outcome_count", "Outcomes reported per A/B arm.", *arm)
        self.ab_sum = gauge(
            r,
            "yard_serving_ab_outcome_sum",
            "Sum of outcome values per A/B arm.",
            "sum" if multiprocess else None,
            *arm,
        )
        self.ab_sumsq = counter(
            r, "yard_serving_ab_outcome_sumsq", "Sum of squared outcome values per A/B arm.", *arm
        )
        #: per request: routed requests by (model, version, outcome) and latency by (model, version)
        self.routed = CountAndTime(
            self.requests,
            self.latency,
            lambda k: (k[0], str(k[1]), k[2]),
            lambda k: (k[0], str(k[1])),
        )


def observe(metrics: RoutingMetrics, rt: Any, answer: Any, code: str | None, seconds: float) -> None:
    """Count one request routed to ``rt``: ``answer`` when it was answered, else the problem ``code``."""
    if answer is None:
        outcome = _CODE_OUTCOME.get(code or "", "error")
    elif answer.fallback:
        outcome = answer.reason or "error"
        metrics.fallbacks.labels(rt.name, str(rt.version)).inc()
    else:
        outcome = "ok"
    metrics.routed((rt.name, rt.version, outcome), None if outcome == "invalid" else seconds)


def bucket(key: str, salt: str = "") -> float:
    """A stable position in [0, 100) for ``key``."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100.0


class WeightedChoice:
    """Slots by percentage: ``pick(u)`` for ``u`` in [0, 100) (zero-weight slots never picked)."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.slots = list(weights)
        cum, total = [], 0.0
        for w in weights.values():
            total += w
            cum.append(total)
        self.cum = cum

    def pick(self, u: float) -> str:
        i = bisect_right(self.cum, u)
        return self.slots[min(i, len(self.slots) - 1)]

    def random(self) -> str:
        return self.pick(random.random() * 100.0)


class _Router:
    def after(self, dep: Any, rt: Any, payload: Any, answer: Any, request_id: str | None) -> None:
        """Called once ``answer`` (from ``rt``) is known; nothing by default."""


class CanaryRouter(_Router):
    """Weighted choice per request; sticky by a hash of ``sticky_header`` when the request has it."""

    def __init__(self, policy: Any, runtimes: dict[str, Any]) -> None:
        self.policy = policy
        self.runtimes = runtimes
        self.choice = WeightedChoice(policy.weights)

    def choose(self, payload: Any, headers: Any = None) -> Any:
        key = (
            headers.get(self.policy.sticky_header)
            if headers is not None and self.policy.sticky_header
            else None
        )
        slot = self.choice.pick(bucket(key, self.policy.salt)) if key else self.choice.random()
        return self.runtimes[slot]


class BlueGreenRouter(_Router):
    """``active`` unless the request carries the preview header (any value but 0/false/no)."""

    def __init__(self, policy: Any, runtimes: dict[str, Any]) -> None:
        self.policy = policy
        self.active = runtimes[policy.active]
        self.preview = runtimes[policy.preview]

    def choose(self, payload: Any, headers: Any = None) -> Any:
        if headers is not None:
            v = headers.get(self.policy.preview_header)
            if v is not None and v.strip().lower() not in ("", "0", "false", "no"):
                return self.preview
        return self.active


class ShadowRouter(_Router):
    """The primary answers; a share of requests is mirrored to the shadow after the answer."""

    def __init__(self, policy: Any, runtimes: dict[str, Any]) -> None:
        self.policy = policy
        self.primary = runtimes[policy.primary]
        self.shadow = runtimes[policy.shadow]
        self.pending = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def choose(self, payload: Any, headers: Any = None) -> Any:
        return self.primary

    def after(self, dep: Any, rt: Any, payload: Any, answer: Any, request_id: str | None) -> None:
        if answer is None or answer.fallback or rt is not self.primary or self.shadow is self.primary:
            return
        p = self.policy
        if p.percent < 100 and random.random() * 100 >= p.percent:
            return
        m = dep.metrics.routing
        labels = (self.shadow.name, str(self.shadow.version))
        if self.pending >= p.max_pending:
            m.shadow.labels(*labels, "dropped").inc()
            return
        self.pending += 1
        task = asyncio.get_running_loop().create_task(
            self._mirror(dep, payload, answer.output, request_id, labels)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mirror(
        self, dep: Any, payload: Any, primary_out: Any, request_id: str | None, labels: tuple[str, str]
    ) -> None:
        import time

        m = dep.metrics.routing
        t0 = time.perf_counter()
        try:
            payload = self.shadow.inputs.check(payload)
            out = await self.shadow.predict(payload)  # TimeoutError past the deployment's timeout
        except BaseException as exc:  # a shadow failure is data, never an error of the request
            code = (
                "timeout"
                if isinstance(exc, TimeoutError)
                else ("invalid_input" if getattr(exc, "status", 500) < 500 else "model_error")
            )
            m.requests.labels(*labels, _CODE_OUTCOME[code]).inc()
            m.latency.labels(*labels).observe(time.perf_counter() - t0)
            m.shadow.labels(*labels, "error").inc()
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        finally:
            self.pending -= 1
        m.requests.labels(*labels, "ok").inc()
        m.latency.labels(*labels).observe(time.perf_counter() - t0)
        try:
            agree, distance = compare_outputs(primary_out, out, self.policy.tolerance)
        except Exception:
            log.debug("shadow comparison failed", exc_info=True)
            agree, distance = False, 1.0
        m.shadow.labels(*labels, "agree" if agree else "disagree").inc()
        m.shadow_distance.labels(*labels).inc(distance)
        pl = getattr(dep, "predlog", None)
        if pl is not None and pl.sampled():
            pl.log(
                f"{request_id or ''}:shadow",
                self.shadow.name,
                self.shadow.version,
                logged_inputs(payload, self.shadow.inputs.dtypes),
                out,
                (time.perf_counter() - t0) * 1000,
                False,
                sample=False,
            )


def compare_outputs(a: Any, b: Any, tolerance: float) -> tuple[bool, float]:
    """Whether two outputs agree (numbers within ``tolerance``, labels equal) and their distance
    (mean absolute difference for numbers, share of differing rows otherwise)."""
    import numpy as np

    x = np.asarray(a.to_numpy() if hasattr(a, "to_numpy") else a)
    y = np.asarray(b.to_numpy() if hasattr(b, "to_numpy") else b)
    if x.shape != y.shape:
        return False, 1.0
    if x.dtype.kind in "fiub" and y.dtype.kind in "fiub":
        diff = np.abs(x.astype(float) - y.astype(float))
        if not diff.size:
            return True, 0.0
        d = float(np.nanmean(diff))
        return bool(np.all(diff <= tolerance)), d if math.isfinite(d) else 1.0
    ne = x.astype(str) != y.astype(str)
    return not bool(ne.any()), float(ne.mean()) if ne.size else 0.0


class ABRouter(_Router):
    """Sticky arms by a hash of ``key_header``; remembers recent request ids for feedback."""

    MAX_REMEMBERED = 100_000

    def __init__(self, policy: Any, runtimes: dict[str, Any]) -> None:
        self.policy = policy
        self.runtimes = runtimes
        self.choice = WeightedChoice(policy.arms)
        self.by_request: OrderedDict[str, str] = OrderedDict()
        self._last: dict[int, str] = {}

    def arm_for_key(self, key: str) -> str:
        return self.choice.pick(bucket(key, self.policy.salt))

    def choose(self, payload: Any, headers: Any = None) -> Any:
        key = headers.get(self.policy.key_header) if headers is not None else None
        slot = self.arm_for_key(key) if key else self.choice.random()
        self._last[id(payload)] = slot
        return self.runtimes[slot]

    def after(self, dep: Any, rt: Any, payload: Any, answer: Any, request_id: str | None) -> None:
        slot = self._last.pop(id(payload), None)
        if slot is None:
            return
        dep.metrics.routing.ab_assignments.labels(rt.name, str(rt.version), slot).inc()
        if request_id:
            self.by_request[request_id] = slot
            if len(self.by_request) > self.MAX_REMEMBERED:
                self.by_request.popitem(last=False)


def logged_inputs(payload: Any, dtypes: dict[str, str]) -> Any:
    """What the prediction log records of a checked payload: the fast path's typed matrix, or
    the signature's columns typed by the signature (``dtypes``)."""
    if payload.matrix is not None:
        return payload.matrix
    return TypedColumns(payload.columns, dtypes) if dtypes else payload.columns


async def feedback(server: Any, request: Any) -> Any:
    """``POST /v1/models/{name}/feedback``: outcomes of an A/B test.

    Body: ``{"key": "u1", "outcome": "conversion", "value": 1}`` (or ``"request_id"`` instead of
    ``"key"``), or ``{"feedback": [...]}`` for several. The arm is the one the key hashes to (or
    the one that answered the request id, remembered for the last 100,000 requests).
    """
    from modelyard.serving._codec import HTTPProblem, loads
    from modelyard.serving._http import problem, read_body, respond

    dep = None
    try:
        dep = server.enter(request.path_params.get("name"))
        body = loads(await read_body(request, dep.spec.limits.max_body_bytes))
        router = dep.router
        if not isinstance(router, ABRouter):
            raise HTTPProblem(
                409,
                "no_ab_test",
                f"No A/B test runs on {dep.endpoint!r} (traffic kind "
                f"{dep.spec.traffic.kind!r}); feedback is accepted while traffic.kind is 'ab'.",
            )
        items = body.get("feedback") if isinstance(body, dict) and "feedback" in body else [body]
        if not isinstance(items, list) or not items:
            raise HTTPProblem(
                400, "bad_format", "Send {'key': ..., 'outcome': ..., 'value': ...} or {'feedback': [...]}."
            )
        m = dep.metrics.routing
        parsed: list[tuple[str, str, float]] = []
        unmatched = 0
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise HTTPProblem(
                    400, "bad_format", f"feedback[{i}] must be an object with 'key' or 'request_id'."
                )
            value = item.get("value", 1)
            if isinstance(value, bool):
                value = float(value)
            try:
                finite = isinstance(value, (int, float)) and math.isfinite(float(value))
            except OverflowError:  # an integer beyond the float range
                finite = False
            if not finite:
                raise HTTPProblem(
                    400,
                    "bad_value",
                    f"feedback[{i}].value must be a finite number (0/1 for "
                    f"conversions). Got {str(value)[:40]!r} instead.",
                )
            outcome = str(item.get("outcome", "outcome"))[:64]
            slot: str | None
            if item.get("key") is not None:
                slot = router.arm_for_key(str(item["key"]))
            elif item.get("request_id") is not None:
                slot = router.by_request.get(str(item["request_id"]))
                if slot is None:
                    unmatched += 1
                    continue
            else:
                raise HTTPProblem(
                    400,
                    "bad_format",
                    f"feedback[{i}] needs 'key' (the {router.policy.key_header} value) or 'request_id'.",
                )
            parsed.append((slot, outcome, float(value)))
        arms: dict[str, int] = {}
        for slot, outcome, value in parsed:
            rt = dep.runtimes[slot]
            labels = (rt.name, str(rt.version), slot, outcome)
            m.ab_count.labels(*labels).inc()
            m.ab_sum.labels(*labels).inc(value)
            m.ab_sumsq.labels(*labels).inc(value * value)
            arms[slot] = arms.get(slot, 0) + 1
        return respond(200, {"accepted": len(parsed), "unmatched": unmatched, "arms": arms})
    except HTTPProblem as p:
        return problem(p, "")
    finally:
        if dep is not None:
            dep.leave()
