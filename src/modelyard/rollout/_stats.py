"""A/B statistics: fixed-horizon tests, lift, and always-valid (sequential) p-values.

Two arms (``control``, ``treatment``) are summarised by :class:`ArmStats` (count, sum, sum of
squares), which is what the server's feedback counters hold, so windows are differences of two
scrapes. For each comparison :func:`ab_test` reports:

* the **fixed-horizon** test: the pooled two-proportion z-test for binary outcomes, Welch's
  t-test (Welch–Satterthwaite degrees of freedom) for continuous ones; the difference of means
  and the relative lift with their ``1 - alpha`` confidence intervals (lift by the delta method).
  Valid only when looked at once, at a sample size fixed in advance.
* the **sequential** test used for decisions: the mixture sequential probability ratio test
  (mSPRT, Johari, Pekelis & Walsh, "Always valid inference", 2017) with a normal mixing
  distribution ``N(0, tau^2)`` over the difference of means. Its p-value ``min(1, 1/Lambda_n)``
  is *always valid*: ``P(p_n <= alpha for some n) <= alpha`` under the null, however often
  ``yard rollout status --watch`` peeks. The running minimum over the looks made so far is also
  valid and is what a rollout stores. The matching confidence sequence is
  ``diff +- sqrt(V (V + tau^2) / tau^2 * (log((V + tau^2) / V) - 2 log alpha))`` with
  ``V = s_a^2/n_a + s_b^2/n_b``.

``tau`` sets which effects the test is most sensitive to (not its validity); the default is a
tenth of the pooled standard deviation. The variance is plugged in from the data (the usual
large-sample approximation); the A/A simulation in the tests checks the false-positive rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any, Literal

from modelyard.errors import invalid_param

__all__ = ["ABResult", "ArmStats", "ab_test", "msprt", "two_proportion_test", "welch_test"]

Kind = Literal["binary", "continuous"]


@dataclass(frozen=True)
class ArmStats:
    """Sufficient statistics of one arm's outcomes: count, sum and sum of squares."""

    n: float = 0.0
    total: float = 0.0
    total_sq: float = 0.0

    @classmethod
    def of(cls, values: Any) -> ArmStats:
        import numpy as np

        v = np.asarray(values, dtype=float)
        return cls(float(v.size), float(v.sum()), float((v * v).sum()))

    def __sub__(self, other: ArmStats) -> ArmStats:
        return ArmStats(self.n - other.n, self.total - other.total, self.total_sq - other.total_sq)

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n > 0 else float("nan")

    @property
    def var(self) -> float:
        """Unbiased sample variance (0 below two observations)."""
        if self.n < 2:
            return 0.0
        return max(0.0, (self.total_sq - self.total * self.total / self.n) / (self.n - 1))


_STD_NORMAL = NormalDist()


def _z(alpha: float) -> float:
    return _STD_NORMAL.inv_cdf(1 - alpha / 2)


def _lift(ma: float, mb: float, va: float, vb: float, crit: float) -> tuple[float | None, list[float] | None]:
    """Relative lift ``mb/ma - 1`` and its delta-method interval (``va``, ``vb`` variances of the means)."""
    if not ma or math.isnan(ma) or math.isnan(mb):
        return None, None
    lift = mb / ma - 1
    se = math.sqrt(vb / ma**2 + mb**2 * va / ma**4)
    return lift, [lift - crit * se, lift + crit * se]


def two_proportion_test(
    x_a: float, n_a: float, x_b: float, n_b: float, *, alpha: float = 0.05
) -> dict[str, Any]:
    """Pooled two-proportion z-test of ``p_b - p_a``; unpooled interval for the difference."""
    from modelyard._stats import two_proportion_z  # numpy: not at import

    if n_a <= 0 or n_b <= 0:
        return {"statistic": 0.0, "p_value": 1.0, "diff": None, "ci": None}
    pa, pb = x_a / n_a, x_b / n_b
    z, p = two_proportion_z(x_a, n_a, x_b, n_b)
    se = math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    crit = _z(alpha)
    return {"statistic": z, "p_value": p, "diff": pb - pa, "ci": [pb - pa - crit * se, pb - pa + crit * se]}


def welch_test(a: ArmStats, b: ArmStats, *, alpha: float = 0.05) -> dict[str, Any]:
    """Welch's unequal-variance t-test of ``mean_b - mean_a`` with its confidence interval."""
    from scipy.special import stdtr, stdtrit

    if a.n < 2 or b.n < 2:
        return {"statistic": 0.0, "p_value": 1.0, "diff": None, "ci": None, "dof": None}
    va, vb = a.var / a.n, b.var / b.n
    se2 = va + vb
    diff = b.mean - a.mean
    if se2 <= 0:
        return {
            "statistic": 0.0,
            "p_value": 1.0 if diff == 0 else 0.0,
            "diff": diff,
            "ci": [diff, diff],
            "dof": None,
        }
    dof = se2**2 / (va**2 / (a.n - 1) + vb**2 / (b.n - 1))
    t = diff / math.sqrt(se2)
    crit = float(stdtrit(dof, 1 - alpha / 2))
    return {
        "statistic": t,
        "p_value": float(2 * stdtr(dof, -abs(t))),
        "diff": diff,
        "ci": [diff - crit * math.sqrt(se2), diff + crit * math.sqrt(se2)],
        "dof": dof,
    }


def msprt(diff: float, var: float, tau2: float, *, alpha: float = 0.05) -> tuple[float, list[float]]:
    """Always-valid p-value of ``diff == 0`` and the ``1 - alpha`` confidence sequence.

    ``var`` is the variance of the estimate ``diff`` (``s_a^2/n_a + s_b^2/n_b``); ``tau2`` the
    variance of the normal mixing distribution.
    """
    if var <= 0 or tau2 <= 0:
        return 1.0, [float("-inf"), float("inf")]
    log_lr = 0.5 * math.log(var / (var + tau2)) + diff * diff * tau2 / (2 * var * (var + tau2))
    p = 1.0 if log_lr <= 0 else min(1.0, math.exp(-log_lr))
    half = math.sqrt(var * (var + tau2) / tau2 * (math.log((var + tau2) / var) - 2 * math.log(alpha)))
    return p, [diff - half, diff + half]


@dataclass
class ABResult:
    """The comparison of two arms; ``decision`` is made on the always-valid p-value."""

    kind: str
    n_control: float
    n_treatment: float
    mean_control: float | None
    mean_treatment: float | None
    diff: float | None
    diff_ci: list[float] | None
    lift: float | None
    lift_ci: list[float] | None
    statistic: float
    p_value: float
    always_valid_p: float
    confidence_sequence: list[float] | None
    alpha: float
    min_samples: int
    #: ``insufficient_samples`` | ``no_difference_yet`` | ``treatment_better`` | ``control_better``
    decision: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, float) and not math.isfinite(v):
                d[k] = None
        return d

    def summary(self) -> str:
        if self.decision == "insufficient_samples":
            return (
                f"{self.n_control:.0f}/{self.n_treatment:.0f} outcomes (control/treatment); "
                f"deciding from {self.min_samples} per arm"
            )
        lift = (
            f"lift {self.lift:+.1%} (CI {self.lift_ci[0]:+.1%}..{self.lift_ci[1]:+.1%}), "
            if (self.lift is not None and self.lift_ci)
            else ""
        )
        return (
            f"{self.kind}: {self.mean_control:.4g} vs {self.mean_treatment:.4g}, {lift}"
            f"always-valid p {self.always_valid_p:.3g} (fixed-horizon p {self.p_value:.3g}) → {self.decision}"
        )


def ab_test(
    control: ArmStats,
    treatment: ArmStats,
    *,
    kind: Kind = "binary",
    alpha: float = 0.05,
    min_samples: int = 100,
    tau: float | None = None,
    previous_p: float = 1.0,
) -> ABResult:
    """Compare ``treatment`` with ``control``. ``previous_p``: the running minimum of the
    always-valid p-value from earlier looks (1.0 on the first)."""
    if kind not in ("binary", "continuous"):
        raise invalid_param("kind", "ab_test", "one of 'binary', 'continuous'", kind)
    if not 0 < alpha < 1:
        raise invalid_param("alpha", "ab_test", "a number in (0, 1)", alpha)
    a, b = control, treatment
    crit = _z(alpha)
    if kind == "binary":
        fixed = two_proportion_test(a.total, a.n, b.total, b.n, alpha=alpha)
        va = a.mean * (1 - a.mean) / a.n if a.n > 0 else 0.0
        vb = b.mean * (1 - b.mean) / b.n if b.n > 0 else 0.0
    else:
        fixed = welch_test(a, b, alpha=alpha)
        va = a.var / a.n if a.n > 0 else 0.0
        vb = b.var / b.n if b.n > 0 else 0.0
    diff = fixed["diff"]
    lift, lift_ci = (None, None)
    avp, cs = 1.0, None
    if a.n > 0 and b.n > 0:
        lift, lift_ci = _lift(a.mean, b.mean, va, vb, crit)
        if tau is None:
            pooled_var = (a.var * max(a.n - 1, 0) + b.var * max(b.n - 1, 0)) / max(a.n + b.n - 2, 1)
            if kind == "binary":
                p = (a.total + b.total) / (a.n + b.n)
                pooled_var = p * (1 - p)
            tau2 = 0.01 * pooled_var
        else:
            tau2 = tau * tau
        avp, cs = msprt(b.mean - a.mean, va + vb, tau2, alpha=alpha)
    avp = min(avp, previous_p)
    enough = min(a.n, b.n) >= min_samples
    if not enough:
        decision = "insufficient_samples"
    elif avp <= alpha:
        decision = "treatment_better" if b.mean > a.mean else "control_better"
    else:
        decision = "no_difference_yet"
    return ABResult(
        kind=kind,
        n_control=a.n,
        n_treatment=b.n,
        mean_control=a.mean if a.n else None,
        mean_treatment=b.mean if b.n else None,
        diff=diff,
        diff_ci=fixed["ci"],
        lift=lift,
        lift_ci=lift_ci,
        statistic=float(fixed["statistic"]),
        p_value=float(fixed["p_value"]),
        always_valid_p=avp,
        confidence_sequence=cs,
        alpha=alpha,
        min_samples=min_samples,
        decision=decision,
    )
