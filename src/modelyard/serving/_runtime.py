"""Loaded model versions and the deployment that routes requests between them.

A :class:`ModelRuntime` is one warmed model version with its own predict thread, batcher and
circuit breaker. A :class:`Deployment` is everything one spec loaded: the runtimes of its
slots, the fallback and the router. The server swaps whole deployments; a request holds the
deployment it started on until it is answered, so in-flight requests finish on the old one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, overload

from modelyard.errors import ValidationFailed
from modelyard.serving._batching import Batcher
from modelyard.serving._breaker import BreakerState, CircuitBreaker
from modelyard.serving._codec import HTTPProblem, Payload, PredictAndProba
from modelyard.serving._fastpath import NumericFastPath, numeric_fast_path
from modelyard.serving._inputs import InputCheck
from modelyard.serving._metrics import ServingMetrics, observe_many
from modelyard.serving._predlog import MatrixRows
from modelyard.serving._routing import observe
from modelyard.serving._spec import DeploymentSpec, ModelSlot
from modelyard.serving._traffic import make_router
from modelyard.serving._warnings import WarningDedup, bind, install

__all__ = ["Answer", "Deployment", "ModelRuntime", "load_deployment"]

log = logging.getLogger("modelyard.serving")

Loader = Callable[[str], Any]


def _merge(payloads: list[Payload]) -> Any:
    import pandas as pd

    if len(payloads) == 1:
        return pd.DataFrame(payloads[0].columns)
    cols: dict[str, list[Any]] = {c: [] for c in payloads[0].columns}
    for p in payloads:
        for c, vals in p.columns.items():
            cols[c].extend(vals)
    return pd.DataFrame(cols)


def _slice(out: Any, start: int, stop: int) -> Any:
    if hasattr(out, "iloc"):
        return out.iloc[start:stop]
    return out[start:stop]


def _want(payload: Payload) -> str:
    """What a payload asks of the model: "predict", "proba" or "both"."""
    opts = payload.options
    if not opts or not opts.get("proba"):
        return "predict"
    return "both" if opts.get("predict") else "proba"


def _is_input_error(exc: BaseException) -> bool:
    return isinstance(exc, ValidationFailed)


def input_problem(exc: BaseException) -> HTTPProblem:
    problems = [str(p) for p in (getattr(exc, "problems", None) or [])]
    head = str(exc).split("\n")[0].rstrip(":") or "The input does not match the model signature"
    return HTTPProblem(422, "invalid_input", f"{head}; see 'problems'.", problems=problems or [str(exc)])


def signature_columns(model: Any) -> list[str]:
    sig = getattr(model, "signature", None)
    if sig is None:
        return []
    return [getattr(s, "name", str(s)) for s in (getattr(sig, "inputs", None) or [])]


def warmup_frame(model: Any, rows: int) -> Any:
    """Rows to warm a model with: its stored input example, else values built from its signature."""
    import pandas as pd

    example = getattr(model, "input_example", None)
    if example is not None:
        try:
            frame = example if isinstance(example, pd.DataFrame) else pd.DataFrame(example)
            if len(frame):
                return pd.concat([frame] * max(1, -(-rows // len(frame))), ignore_index=True).iloc[:rows]
        except Exception:
            pass
    sig = getattr(model, "signature", None)
    if sig is None:
        return None
    cols: dict[str, list[Any]] = {}
    for s in getattr(sig, "inputs", None) or []:
        dtype = str(getattr(s, "dtype", "float64")).lower()
        lo = getattr(s, "min", None)
        cats = getattr(s, "categories", None) or getattr(s, "allowed", None)
        if cats:
            value: Any = next(iter(cats))
        elif "bool" in dtype:
            value = False
        elif "int" in dtype:
            value = int(lo) if lo is not None else 0
        elif "float" in dtype or "double" in dtype or "num" in dtype:
            value = float(lo) if lo is not None else 0.0
        else:
            value = ""
        cols[s.name] = [value] * rows
    return pd.DataFrame(cols) if cols else None


class ModelRuntime:
    """One loaded model version: predict thread, batcher, breaker, metrics."""

    def __init__(self, model: Any, spec: DeploymentSpec, metrics: ServingMetrics, *, role: str) -> None:
        self.model = model
        self.name: str = str(model.name)
        self.version: int = int(model.version)
        self.role = role
        self.columns = signature_columns(model)
        self.inputs = InputCheck(model)
        self.has_proba = hasattr(model, "predict_proba")
        classes = getattr(getattr(model, "raw", None), "classes_", None)
        self.classes: list[Any] | None = (
            [c.item() if hasattr(c, "item") else c for c in classes]
            if classes is not None and self.has_proba
            else None
        )
        self.metrics = metrics
        self._labels = (self.name, str(self.version))
        self.warm_error: str | None = None
        self.warmed = False
        install()
        self.warnings = WarningDedup(
            f"{self.name}/{self.version}",
            lambda cat: metrics.model_warnings.labels(self.name, str(self.version), cat),
        )
        self.executor = ThreadPoolExecutor(
            1,
            thread_name_prefix=f"predict-{self.name}-{self.version}",
            initializer=bind,
            initargs=(self.warnings,),
        )
        b = spec.batching
        queue_gauge = metrics.queue_depth.labels(*self._labels)
        self.batching = b.enabled
        self.max_queue_rows = b.max_queue_rows
        self.batcher = Batcher(
            self.run_batch,
            self.executor,
            max_batch_size=b.max_batch_size if b.enabled else 1,
            max_latency_ms=b.max_latency_ms if b.enabled else 0,
            max_queue_rows=b.max_queue_rows,
            on_queue=queue_gauge.inc,
        )
        br = spec.breaker
        self._breaker_gauge = metrics.breaker_open.labels(*self._labels)
        self._breaker_gauge.set(0)
        self.breaker = CircuitBreaker(
            name=f"{self.name}/{self.version}",
            error_rate=br.error_rate,
            window=br.window,
            min_requests=br.min_requests,
            open_s=br.open_s,
            half_open_probes=br.half_open_probes,
            enabled=br.enabled,
            on_transition=self._on_transition,
        )
        self.fast: NumericFastPath | None = None
        self._predict_hist = metrics.predict_latency.labels(*self._labels)
        self._batch_hist = metrics.batch_size.labels(*self._labels)
        self._value_hist = metrics.prediction_value.labels(*self._labels)

    def __repr__(self) -> str:
        return f"ModelRuntime({self.name}/{self.version}, role={self.role})"

    def _on_transition(self, frm: BreakerState, to: BreakerState) -> None:
        self.metrics.breaker_transitions.labels(self.name, str(self.version), frm.value, to.value).inc()
        self._breaker_gauge.set(0 if to is BreakerState.CLOSED else 1)

    # -- in the predict thread -----------------------------------------------------------------
    def _predict(self, frame: Any, want: str = "predict") -> Any:
        """The model's ``want`` for ``frame``: "predict", "proba", or "both" (a PredictAndProba)."""
        try:
            if want == "both":
                out = PredictAndProba(self.model.predict(frame), self.model.predict_proba(frame))
            else:
                out = self.model.predict_proba(frame) if want == "proba" else self.model.predict(frame)
        except Exception:
            raise
        except BaseException as exc:  # sys.exit() or similar inside a model must not stop the server
            raise RuntimeError(f"the model raised {type(exc).__name__}: {exc}") from exc
        n = len(frame)
        if len(out) != n:
            raise RuntimeError(f"the model returned {len(out)} predictions for {n} rows")
        return out

    def run_batch(self, payloads: list[Payload]) -> list[tuple[bool, Any]]:
        """Predict every payload; a failing batch is retried request by request so one bad row
        fails only its own request."""
        wants = [_want(p) for p in payloads]
        # the fast path predicts labels only; probabilities go through the model's own predict_proba
        if self.fast is not None and all(w == "predict" for w in wants):
            done = self._run_fast(payloads)
            if done is not None:
                return done
        results: list[tuple[bool, Any]] = [(False, None)] * len(payloads)
        groups: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        for i, p in enumerate(payloads):
            groups.setdefault((wants[i], p.key), []).append(i)
        for (want, _), idx in groups.items():
            group = [payloads[i] for i in idx]
            rows = sum(p.n for p in group)
            t0 = time.perf_counter()
            try:
                out = self._predict(_merge(group), want)
            except Exception as exc:
                if len(group) == 1:
                    results[idx[0]] = (False, exc)
                else:
                    for i in idx:
                        try:
                            one = self._predict(_merge([payloads[i]]), want)
                            self._observe(one)
                            results[i] = (True, one)
                        except Exception as exc1:
                            results[i] = (False, exc1)
                continue
            finally:
                self._predict_hist.observe(time.perf_counter() - t0)
                self._batch_hist.observe(rows)
            self._observe(out)
            start = 0
            for i in idx:
                n = payloads[i].n
                results[i] = (True, _slice(out, start, start + n) if len(idx) > 1 else out)
                start += n
        return results

    def _run_fast(self, payloads: list[Payload]) -> list[tuple[bool, Any]] | None:
        fast = self.fast
        assert fast is not None
        t0 = time.perf_counter()
        x = fast.matrix(payloads)
        if x is None:
            return None
        try:
            out = fast.predict(x)
        except BaseException:
            return None  # the regular path isolates the failing request and reports it
        self._predict_hist.observe(time.perf_counter() - t0)
        self._batch_hist.observe(len(x))
        self._observe(out)
        order, dtypes = fast.order, fast.dtypes
        if len(payloads) == 1:
            payloads[0].matrix = MatrixRows(order, x, dtypes)
            return [(True, out)]
        results: list[tuple[bool, Any]] = []
        start = 0
        for p in payloads:
            stop = start + p.n
            p.matrix = MatrixRows(order, x[start:stop], dtypes)
            results.append((True, out[start:stop]))
            start = stop
        return results

    def _observe(self, out: Any) -> None:
        import numpy as np

        try:
            if hasattr(out, "columns"):
                return
            arr = np.asarray(out)
            if arr.ndim != 1:
                return
            if arr.dtype.kind in "fiub":
                observe_many(self._value_hist, arr)  # one pass per batch, not one observe per row
            else:
                labels, counts = np.unique(arr.astype(str), return_counts=True)
                for lab, c in zip(labels.tolist(), counts.tolist(), strict=True):
                    self.metrics.prediction_label.labels(self.name, str(self.version), lab[:64]).inc(c)
        except Exception:  # pragma: no cover - metrics never break an answer
            log.debug("prediction metrics failed", exc_info=True)

    def warm(self, rows: int) -> None:
        """Run ``rows`` warm-up predictions (through the predict thread); enable the fast path
        when it agrees with the regular path on them."""
        frame = warmup_frame(self.model, max(rows, 1))
        if rows > 0 and frame is not None:
            try:
                for n in (1, rows):
                    self.executor.submit(self._predict, frame.iloc[:n]).result()
            except Exception as exc:
                self.warm_error = f"{type(exc).__name__}: {exc}"
                log.info("warm-up of %s/%s raised %s", self.name, self.version, self.warm_error)
        if frame is not None and self.warm_error is None:
            self.fast = self._check_fast(frame)
        self.warmed = True

    def _check_fast(self, frame: Any) -> NumericFastPath | None:
        import numpy as np

        try:
            fast = numeric_fast_path(self.model)
            if fast is None:
                return None
            payload = Payload({c: frame[c].tolist() for c in frame.columns}, len(frame))
            x = fast.matrix([payload])
            if x is None:
                return None
            want = np.asarray(self._predict(frame))
            got = np.asarray(fast.predict(x))
            if want.shape != got.shape or not (
                np.array_equal(want, got)
                or (want.dtype.kind == "f" and np.allclose(want, got, rtol=1e-9, atol=1e-12))
            ):
                return None
            return fast
        except Exception:
            log.debug("no fast path for %s/%s", self.name, self.version, exc_info=True)
            return None

    # -- on the event loop ---------------------------------------------------------------------
    async def predict(self, payload: Payload) -> Any:
        """The model's output for ``payload`` (batched with concurrent requests when enabled)."""
        return await self.batcher.submit(payload)

    def close(self) -> None:
        self.batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=False)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "flavor": getattr(self.model, "flavor", None),
            "role": self.role,
            "warmed": self.warmed,
            "warm_error": self.warm_error,
            "fast_path": self.fast is not None,
            "breaker": self.breaker.to_dict(),
            "inputs": self.columns,
        }


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
        try:
            async with asyncio.timeout(self.timeout):
                out = await rt.predict(mine)
        except HTTPProblem:
            raise
        except TimeoutError:
            rt.breaker.record(False)
            return await self._fallback(payload, rt, "timeout", checked=mine)
        except Exception as exc:
            if _is_input_error(exc):
                raise input_problem(exc) from None
            rt.breaker.record(False)
            return await self._fallback(payload, rt, "error", exc, checked=mine)
        rt.breaker.record(True)
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
        try:
            async with asyncio.timeout(self.timeout):
                out = await rt.predict(mine)
        except HTTPProblem:
            raise
        except TimeoutError:
            raise self._failure(primary, reason, exc, fallback_failed="timed out") from None
        except Exception as exc2:
            if _is_input_error(exc2):
                raise input_problem(exc2) from None
            raise self._failure(
                primary, reason, exc, fallback_failed=f"raised {type(exc2).__name__}: {exc2}"
            ) from None
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
