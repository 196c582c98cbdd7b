"""A/B statistics: agreement with scipy, power on a real effect, and the false-positive rate of
the sequential test on A/A traffic under repeated peeking (≤ nominal, while naive peeking is not)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from modelyard.errors import InvalidArgumentError
from modelyard.rollout import ArmStats, ab_test, two_proportion_test, welch_test


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 40), rng.normal(0.4, 2, 70)
    got = welch_test(ArmStats.of(a), ArmStats.of(b))
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert got["statistic"] == pytest.approx(ref.statistic, rel=1e-9)
    assert got["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert got["ci"] == pytest.approx([ci.low, ci.high], rel=1e-9)


def test_two_proportion_matches_chi_squared() -> None:
    got = two_proportion_test(30, 200, 52, 210)
    chi2, p, _, _ = stats.chi2_contingency([[30, 170], [52, 158]], correction=False)
    assert got["statistic"] ** 2 == pytest.approx(chi2, rel=1e-9)
    assert got["p_value"] == pytest.approx(p, rel=1e-9)


def test_real_effect_is_found_with_lift() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(5000) < 0.10, rng.random(5000) < 0.14
    r = ab_test(ArmStats.of(a), ArmStats.of(b), kind="binary", min_samples=1000)
    assert r.decision == "treatment_better"
    assert r.lift_ci[0] < r.lift < r.lift_ci[1] and r.lift > 0.2
    assert r.always_valid_p >= r.p_value  # the sequential p-value pays for peeking
    few = ab_test(ArmStats.of(a[:50]), ArmStats.of(b[:50]), min_samples=1000)
    assert few.decision == "insufficient_samples"


@pytest.mark.parametrize("kind", ["binary", "continuous"])
def test_aa_false_positive_rate_under_peeking_is_at_most_nominal(kind: str) -> None:
    """300 A/A experiments, 2,000 outcomes per arm, looked at 10 times each (every 200)."""
    rng = np.random.default_rng(11 if kind == "binary" else 12)
    experiments, n, every, alpha = 300, 2000, 200, 0.05
    sequential = naive = 0
    for _ in range(experiments):
        if kind == "binary":
            a, b = (rng.random(n) < 0.1).astype(float), (rng.random(n) < 0.1).astype(float)
        else:
            a, b = rng.lognormal(0, 1, n), rng.lognormal(0, 1, n)
        ca, cb, ca2, cb2 = np.cumsum(a), np.cumsum(b), np.cumsum(a * a), np.cumsum(b * b)
        prev, seq_hit, naive_hit = 1.0, False, False
        for k in range(every, n + 1, every):
            r = ab_test(
                ArmStats(k, ca[k - 1], ca2[k - 1]),
                ArmStats(k, cb[k - 1], cb2[k - 1]),
                kind=kind,
                alpha=alpha,
                min_samples=every,
                previous_p=prev,
            )
            prev = r.always_valid_p
            seq_hit |= r.decision in ("treatment_better", "control_better")
            naive_hit |= r.p_value <= alpha
        sequential += seq_hit
        naive += naive_hit
    assert sequential / experiments <= alpha
    assert naive / experiments > alpha  # the simulation is sensitive: naive peeking inflates it


def test_bad_arguments() -> None:
    with pytest.raises(
        InvalidArgumentError, match="The 'kind' parameter of ab_test must be one of 'binary', 'continuous'"
    ):
        ab_test(ArmStats(), ArmStats(), kind="poisson")  # type: ignore[arg-type]
