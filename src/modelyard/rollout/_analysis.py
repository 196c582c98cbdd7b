"""Analysis of one rollout step: window metrics of the stable and candidate versions, checks, a result.

The server's ``/metrics`` (Prometheus text) is scraped into a :func:`snapshot` (the series of one
model, as ``{series key: value}``); the window of a step is the difference between the current
snapshot and the one taken when the step began (a counter that went down means the server
restarted: the current value is then the whole window). From a window, per version:

* ``requests``, ``error_rate`` (errors, timeouts and open breakers among routed requests, whether
  or not the fallback saved the answer), ``fallback_rate`` and ``p99_ms`` (from the routed latency
  histogram, interpolated within a bucket like PromQL's ``histogram_quantile``);
* ``drift``: the population stability index (PSI) and Jensen–Shannon distance between the
  candidate's prediction histogram in the window and the stable version's (the server's
  ``yard_serving_prediction_value`` buckets or label counts, neighbouring bins merged until each
  holds a tenth of either sample, so small windows do not inflate PSI) (the stable version's
  window when it served ``min_requests`` in it, else everything it served so far);
* ``agreement`` and ``distance`` of shadow comparisons; A/B outcome statistics per arm.

Each check is ``pass``, ``fail`` or ``insufficient`` (fewer than ``min_requests`` samples). A step is
decided on sample counts, never on how fast the machine produced them: Failed as soon as a check
fails; Successful once every check has its ``min_requests`` samples and passed (and the step ran
for at least its window, the least bake time); while a check is short of samples the analysis says
so and waits — for up to ``max_wait_s`` past the window — and only then is the step Inconclusive.
An A/B step is decided by the sequential test.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from modelyard.rollout._config import RolloutConfig
from modelyard.rollout._state import StepResult
from modelyard.rollout._stats import ArmStats, ab_test

__all__ = ["Analysis", "Check", "analyse", "coarsen", "histogram_quantile", "snapshot", "window"]

_PREFIXES = (
    "yard_serving_routed_",
    "yard_serving_shadow_",
    "yard_serving_ab_",
    "yard_serving_prediction_value_bucket",
    "yard_serving_prediction_label",
)


def _key(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f"{k}={labels[k]}" for k in sorted(labels) if k != "model")
    return f"{name}{{{inner}}}"


def _parse_key(key: str) -> tuple[str, dict[str, str]]:
    name, _, rest = key.partition("{")
    labels = dict(p.split("=", 1) for p in rest.rstrip("}").split(",") if p)
    return name, labels


def snapshot(text: str, model: str) -> dict[str, float]:
    """The rollout-relevant series of ``model`` in a Prometheus exposition ``text``."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.labels.get("model") != model or not s.name.startswith(_PREFIXES):
                continue
            if s.name.endswith("_created"):
                continue
            out[_key(s.name, s.labels)] = float(s.value)
    return out


def window(current: dict[str, float], baseline: dict[str, float] | None) -> dict[str, float]:
    """``current - baseline`` per series; the whole current value when a counter went down (restart)."""
    if not baseline:
        return dict(current)
    restarted = any(current.get(k, 0.0) < v - 1e-9 for k, v in baseline.items() if "_sum{" not in k)
    if restarted:
        return dict(current)
    return {k: v - baseline.get(k, 0.0) for k, v in current.items()}


def _series(win: dict[str, float], name: str, **match: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for k, v in win.items():
        n, labels = _parse_key(k)
        if n == name and all(labels.get(a) == b for a, b in match.items()):
            out.append((labels, v))
    return out


def _total(win: dict[str, float], name: str, **match: str) -> float:
    return sum(v for _, v in _series(win, name, **match))


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """PromQL's ``histogram_quantile`` over cumulative ``(le, count)`` buckets."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def version_stats(win: dict[str, float], version: int) -> dict[str, Any]:
    """Requests, error/fallback rates and p99 of one version over a window."""
    v = str(version)
    outcomes = {
        lab["outcome"]: val for lab, val in _series(win, "yard_serving_routed_requests_total", version=v)
    }
    n = sum(val for o, val in outcomes.items() if o != "invalid")
    errors = sum(outcomes.get(o, 0.0) for o in ("error", "timeout", "circuit_open"))
    fallbacks = _total(win, "yard_serving_routed_fallbacks_total", version=v)
    buckets = [
        (float(lab["le"]), val)
        for lab, val in _series(win, "yard_serving_routed_latency_seconds_bucket", version=v)
    ]
    p99 = histogram_quantile(0.99, buckets)

    def slow(limit_s: float) -> float:
        """Requests certainly slower than ``limit_s`` (above the first bucket bound >= it)."""
        bounds = sorted(buckets)
        above = [c for le, c in bounds if le >= limit_s]
        return (bounds[-1][1] - above[0]) if bounds and above else 0.0

    return {
        "requests": n,
        "errors": errors,
        "error_rate": errors / n if n else None,
        "fallback_rate": fallbacks / n if n else None,
        "p99_ms": p99 * 1000 if p99 is not None and n else None,
        "outcomes": outcomes,
        "slow": slow,
    }


def _prediction_counts(win: dict[str, float], version: int) -> tuple[list[str], list[float]]:
    """Per-bucket (not cumulative) prediction counts, or label counts, of one version."""
    v = str(version)
    buckets = sorted(
        (float(lab["le"]), val)
        for lab, val in _series(win, "yard_serving_prediction_value_bucket", version=v)
    )
    if buckets and buckets[-1][1] > 0:
        counts, prev = [], 0.0
        for _, c in buckets:
            counts.append(max(0.0, c - prev))
            prev = c
        return [f"le={le:g}" for le, _ in buckets], counts
    labels = {
        lab["label"]: val for lab, val in _series(win, "yard_serving_prediction_label_total", version=v)
    }
    return sorted(labels), [labels[k] for k in sorted(labels)]


def drift(
    win: dict[str, float], current: dict[str, float], stable: int, candidate: int, min_n: int
) -> dict[str, Any]:
    """PSI and JS distance of the candidate's predictions in the window against the stable version's."""
    from modelyard import _stats  # numpy: not at import (``import modelyard.rollout`` stays light)

    names_c, cand = _prediction_counts(win, candidate)
    names_s, ref = _prediction_counts(win, stable)
    reference = "stable (this window)"
    if sum(ref) < min_n:
        names_s, ref = _prediction_counts(current, stable)
        reference = "stable (everything it served)"
    cm, sm = dict(zip(names_c, cand, strict=True)), dict(zip(names_s, ref, strict=True))
    # the same buckets on both sides keep their order (by bound); else the union, sorted
    _, r_al, c_al = _stats.align_categories(sm, cm, order="given" if names_c == names_s else "sorted")
    r, c = coarsen(r_al, c_al)
    return {
        "psi": _stats.psi(r, c),
        "js": _stats.jensen_shannon(r, c),
        "n": sum(c),
        "reference_n": sum(r),
        "reference": reference,
        "bins": len(r),
    }


def coarsen(ref: list[float], cur: list[float], min_share: float = 0.1) -> tuple[list[float], list[float]]:
    """Merge neighbouring bins until each holds ``min_share`` of the reference or of the current
    sample (at most 1/min_share bins): sparse bins make PSI grow with noise on small windows."""
    rt, ct = sum(ref) or 1.0, sum(cur) or 1.0
    out_r: list[float] = []
    out_c: list[float] = []
    acc_r = acc_c = 0.0
    for r, c in zip(ref, cur, strict=True):
        acc_r += r
        acc_c += c
        if acc_r / rt >= min_share or acc_c / ct >= min_share:
            out_r.append(acc_r)
            out_c.append(acc_c)
            acc_r = acc_c = 0.0
    if acc_r or acc_c:
        if out_r:
            out_r[-1] += acc_r
            out_c[-1] += acc_c
        else:
            out_r.append(acc_r)
            out_c.append(acc_c)
    return out_r, out_c


@dataclass
class Check:
    """One condition of a step's analysis."""

    metric: str
    value: float | None
    threshold: float | None
    op: str  # "<=" or ">="
    samples: float
    status: str  # pass | fail | insufficient
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        val = "-" if self.value is None else f"{self.value:.4g}"
        if self.status == "insufficient":
            return f"{self.metric} {val}: {self.detail}"
        thr = "" if self.threshold is None else f" (must be {self.op} {self.threshold:g})"
        return f"{self.metric} {val}{thr} over {self.samples:.0f} samples: {self.status}" + (
            f"; {self.detail}" if self.detail else ""
        )


@dataclass
class Analysis:
    """The analysis of a step at one moment: checks, the result when decided, and why."""

    step: int
    elapsed_s: float
    window_s: float
    checks: list[Check] = field(default_factory=list)
    versions: dict[str, Any] = field(default_factory=dict)
    ab: dict[str, Any] | None = None
    result: StepResult | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "elapsed_s": round(self.elapsed_s, 3),
            "window_s": self.window_s,
            "checks": [c.to_dict() for c in self.checks],
            "versions": self.versions,
            "ab": self.ab,
            "result": self.result.value if self.result else None,
            "reason": self.reason,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), default=str)


def _limit(
    metric: str, value: float | None, threshold: float, n: float, min_n: int, op: str = "<=", detail: str = ""
) -> Check:
    if value is None or n < min_n:
        return Check(metric, value, threshold, op, n, "insufficient", f"{n:.0f} of {min_n} samples")
    ok = value <= threshold if op == "<=" else value >= threshold
    return Check(metric, value, threshold, op, n, "pass" if ok else "fail", detail)


def prom_value(url: str, query: str, timeout: float = 5.0) -> float | None:
    """The first sample of an instant PromQL query (None when the result is empty)."""
    import httpx

    r = httpx.get(url.rstrip("/") + "/api/v1/query", params={"query": query}, timeout=timeout)
    r.raise_for_status()
    body = r.json()
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus answered {body.get('error') or body}")
    data = body["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    result = data["result"]
    if not result:
        return None
    v = float(result[0]["value"][1])
    return None if math.isnan(v) else v


def analyse(
    cfg: RolloutConfig,
    *,
    model: str,
    stable: int,
    candidate: int,
    step: int,
    current: dict[str, float],
    baseline: dict[str, float] | None,
    elapsed_s: float,
    window_s: float,
    previous_p: float = 1.0,
    strategy_step: str = "",
) -> Analysis:
    """Evaluate the checks of step ``step`` on the window ``current - baseline``."""
    win = window(current, baseline)
    a = Analysis(step=step, elapsed_s=elapsed_s, window_s=window_s)
    cs, ss = version_stats(win, candidate), version_stats(win, stable)
    a.versions = {
        "candidate": {"version": candidate, **{k: v for k, v in cs.items() if k != "slow"}},
        "stable": {"version": stable, **{k: v for k, v in ss.items() if k != "slow"}},
    }
    n, min_n = cs["requests"], cfg.min_requests
    if cfg.max_error_rate is not None:
        a.checks.append(_limit("error_rate", cs["error_rate"], cfg.max_error_rate, n, min_n))
        # a failure that more samples cannot undo is decided now
        if (
            a.checks[-1].status == "insufficient"
            and cs["errors"] > cfg.max_error_rate * max(min_n, n)
            and cs["errors"] >= 5
        ):
            a.checks[-1] = Check(
                "error_rate",
                cs["error_rate"],
                cfg.max_error_rate,
                "<=",
                n,
                "fail",
                f"{cs['errors']:.0f} errors already exceed the limit at {min_n} requests",
            )
    if cfg.max_fallback_rate is not None:
        a.checks.append(_limit("fallback_rate", cs["fallback_rate"], cfg.max_fallback_rate, n, min_n))
    if cfg.max_p99_ms is not None:
        a.checks.append(_limit("p99_ms", cs["p99_ms"], cfg.max_p99_ms, n, min_n))
        slow = cs["slow"](cfg.max_p99_ms / 1000)
        if a.checks[-1].status == "insufficient" and slow >= 5 and slow > 0.01 * max(min_n, n):
            a.checks[-1] = Check(
                "p99_ms",
                cs["p99_ms"],
                cfg.max_p99_ms,
                "<=",
                n,
                "fail",
                f"{slow:.0f} requests slower than the limit already exceed 1% of {max(min_n, n):.0f}",
            )
    if cfg.max_drift is not None:
        d = drift(win, current, stable, candidate, min_n)
        a.versions["drift"] = d
        ok_n = min(d["n"], d["reference_n"])
        a.checks.append(
            _limit(
                "drift_psi",
                d["psi"] if ok_n else None,
                cfg.max_drift,
                ok_n,
                min_n,
                detail=f"JS distance {d['js']:.3f} vs {d['reference']}",
            )
        )
    shadow = {
        lab["result"]: v
        for lab, v in _series(win, "yard_serving_shadow_comparisons_total", version=str(candidate))
    }
    if shadow:
        compared = shadow.get("agree", 0.0) + shadow.get("disagree", 0.0)
        dist = _total(win, "yard_serving_shadow_distance_total", version=str(candidate))
        a.versions["shadow"] = {
            **shadow,
            "agreement": shadow.get("agree", 0.0) / compared if compared else None,
            "mean_distance": dist / compared if compared else None,
        }
    if cfg.min_agreement is not None:
        sh = a.versions.get("shadow") or {}
        compared = sh.get("agree", 0.0) + sh.get("disagree", 0.0)
        a.checks.append(
            _limit(
                "shadow_agreement",
                sh.get("agreement"),
                cfg.min_agreement,
                compared,
                min_n,
                op=">=",
                detail=f"mean output distance {sh['mean_distance']:.4g}"
                if sh.get("mean_distance") is not None
                else "",
            )
        )
    for q in cfg.prometheus:
        from string import Template

        text = Template(q.query).safe_substitute(model=model, stable=stable, candidate=candidate)
        try:
            value = prom_value(q.url, text)
            err = ""
        except Exception as exc:
            value, err = None, f"query failed: {type(exc).__name__}: {exc}"
        for op, thr in (("<=", q.max), (">=", q.min)):
            if thr is None:
                continue
            if value is None:
                a.checks.append(Check(q.name, None, thr, op, 0, "insufficient", err or "no sample returned"))
            else:
                ok = value <= thr if op == "<=" else value >= thr
                a.checks.append(Check(q.name, value, thr, op, 1, "pass" if ok else "fail", f"PromQL {text}"))
    if cfg.strategy == "ab":
        arm = {}
        for slot, ver in (("stable", stable), ("candidate", candidate)):
            m = {"version": str(ver), "arm": slot, "outcome": cfg.outcome}
            arm[slot] = ArmStats(
                _total(win, "yard_serving_ab_outcome_count_total", **m),
                _total(win, "yard_serving_ab_outcome_sum", **m),
                _total(win, "yard_serving_ab_outcome_sumsq_total", **m),
            )
        res = ab_test(
            arm["stable"],
            arm["candidate"],
            kind=cfg.outcome_kind,
            alpha=cfg.alpha,
            min_samples=cfg.min_samples,
            previous_p=previous_p,
        )
        a.ab = res.to_dict() | {"summary": res.summary(), "outcome": cfg.outcome, "goal": cfg.goal}
        better = "treatment_better" if cfg.goal == "increase" else "control_better"
        worse = "control_better" if cfg.goal == "increase" else "treatment_better"
        status = {better: "pass", worse: "fail"}.get(res.decision, "insufficient")
        a.checks.append(
            Check(
                f"ab_{cfg.outcome}",
                res.always_valid_p,
                cfg.alpha,
                "<=",
                min(res.n_control, res.n_treatment),
                status,
                res.summary(),
            )
        )
    _decide(a, cfg, elapsed_s >= window_s, elapsed_s >= window_s + cfg.max_wait_s)
    return a


def _decide(a: Analysis, cfg: RolloutConfig, window_over: bool, wait_over: bool) -> None:
    failed = [c for c in a.checks if c.status == "fail"]
    if failed:
        a.result = StepResult.FAILED
        a.reason = "; ".join(c.line() for c in failed)
        return
    if cfg.strategy == "ab":
        ab_check = a.checks[-1]
        if ab_check.status == "pass" and all(c.status != "fail" for c in a.checks):
            a.result = StepResult.SUCCESSFUL
            a.reason = ab_check.detail
            return
        if window_over and (ab_check.samples >= cfg.min_samples or wait_over):
            a.result = StepResult.INCONCLUSIVE
            a.reason = f"no decision within the window: {ab_check.detail}"
        elif window_over:
            a.reason = f"waiting for {cfg.min_samples} outcomes per arm: {ab_check.detail}"
        return
    short = [c for c in a.checks if c.status == "insufficient"]
    if short:
        if wait_over:
            a.result = StepResult.INCONCLUSIVE
            a.reason = (
                f"not enough data after waiting {a.window_s + cfg.max_wait_s:g}s (window {a.window_s:g}s + "
                f"max-wait {cfg.max_wait_s:g}s): " + "; ".join(c.line() for c in short)
            )
        else:
            a.reason = "waiting for samples: " + "; ".join(c.line() for c in short)
        return
    if not window_over:
        a.reason = f"every check passed; the step runs for at least {a.window_s:g}s"
        return
    a.result = StepResult.SUCCESSFUL
    a.reason = "; ".join(c.line() for c in a.checks) or "no checks configured; the window passed"
