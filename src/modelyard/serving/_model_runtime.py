"""One loaded model version: its predict thread, batcher, circuit breaker and metrics.

A :class:`ModelRuntime` is warmed once (its stored input example, else rows built from its
signature) and, when a plain numeric predict agrees with the model's own on those rows, predicts
all-number batches through :mod:`modelyard.serving._fastpath`. Deployments
(:mod:`modelyard.serving._runtime`) route requests between runtimes.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from modelyard.serving._batching import Batcher
from modelyard.serving._breaker import BreakerState, CircuitBreaker
from modelyard.serving._codec import Payload, PredictAndProba
from modelyard.serving._fastpath import NumericFastPath, numeric_fast_path
from modelyard.serving._inputs import InputCheck
from modelyard.serving._metrics import ServingMetrics, observe_many
from modelyard.serving._predlog import MatrixRows
from modelyard.serving._spec import DeploymentSpec
from modelyard.serving._warnings import WarningDedup, bind, install

__all__ = ["ModelRuntime", "signature_columns", "warmup_frame"]

log = logging.getLogger("modelyard.serving")


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
            timeout_s=spec.timeout_ms / 1000.0,  # the deployment's timeout, one timer per batcher
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
        """The model's output for ``payload`` (batched with concurrent requests when enabled);
        TimeoutError past the spec's ``timeout_ms``."""
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
