"""The one statistics module (modelyard._stats), checked against scipy and the definitions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from modelyard import _stats


# -- distances -------------------------------------------------------------------------------------
def test_psi_is_the_symmetrised_kl_divergence_and_floors_empty_bins() -> None:
    r, c = np.array([500.0, 300, 150, 50]), np.array([400.0, 320, 200, 80])
    p, q = r / r.sum(), c / c.sum()
    assert _stats.psi(r, c) == pytest.approx(stats.entropy(p, q) + stats.entropy(q, p), rel=1e-12)
    assert _stats.psi(r, r * 3) == 0.0 and _stats.psi(r, c) == pytest.approx(_stats.psi(c, r), rel=1e-12)
    # an empty bin: its share is raised to eps (1e-4) instead of making PSI infinite
    empty = np.array([500.0, 300, 200, 0])
    want = sum((b - a) * math.log(b / a) for a, b in zip([0.5, 0.3, 0.2, 1e-4], q, strict=True))
    assert _stats.psi(empty, c) == pytest.approx(want, rel=1e-12)
    assert _stats.psi(empty, c, eps=1e-3) < _stats.psi(empty, c)
    # data validation's half a row per bin is a pseudocount on both sides
    assert _stats.psi(empty, c, pseudocount=0.5) == _stats.psi(empty + 0.5, c + 0.5)
    assert _stats.psi([0, 0], [1, 2]) == 0.0 and _stats.psi([3, 1], [0, 0]) == 0.0


@pytest.mark.parametrize("base", [2.0, math.e])
def test_jensen_shannon_equals_scipy(base: float) -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        r, c = rng.integers(0, 50, 12).astype(float), rng.integers(0, 50, 12).astype(float)
        r[rng.integers(0, 12)] = 0
        assert _stats.jensen_shannon(r, c, base=base) == pytest.approx(
            jensenshannon(r, c, base=base), abs=1e-12
        )
    assert _stats.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint supports: the maximum
    assert _stats.jensen_shannon([4, 2], [2, 1]) == 0.0
    assert _stats.jensen_shannon([0, 0], [1, 1]) == 0.0
    assert _stats.jensen_shannon([3, 0], [1, 2], pseudocount=0.5) == pytest.approx(
        jensenshannon([3.5, 0.5], [1.5, 2.5], base=2)
    )


def test_null_quantile_bounds_the_statistic_between_two_samples_of_one_distribution() -> None:
    """PSI ≈ (1/n + 1/m)·χ²(B−1): about alpha of the draws of one distribution exceed the quantile."""
    rng = np.random.default_rng(11)
    shares = np.array([0.3, 0.2, 0.15, 0.1, 0.1, 0.05, 0.05, 0.05])
    n, m, alpha, draws = 400, 300, 0.05, 2000
    thr_psi = _stats.null_quantile("psi", n, m, len(shares), alpha)
    thr_js = _stats.null_quantile("js", n, m, len(shares), alpha)
    assert thr_psi == pytest.approx(stats.chi2.isf(alpha, len(shares) - 1) * (1 / n + 1 / m))
    assert thr_js == pytest.approx(math.sqrt(thr_psi / (8 * math.log(2))))
    over_psi = over_js = 0
    for _ in range(draws):
        r, c = rng.multinomial(n, shares), rng.multinomial(m, shares)
        over_psi += _stats.psi(r, c) > thr_psi
        over_js += _stats.jensen_shannon(r, c) > thr_js
    assert 0.03 < over_psi / draws < 0.08 and 0.03 < over_js / draws < 0.08
    with pytest.raises(ValueError, match="statistic must be 'psi' or 'js', not 'ks'"):
        _stats.null_quantile("ks", n, m, 8, alpha)  # type: ignore[arg-type]


# -- alignment -------------------------------------------------------------------------------------
def test_align_categories_takes_the_union_in_the_asked_order() -> None:
    ref, cur = {"b": 5, "a": 1, "c": 3}, {"c": 3, "d": 9, "a": 2}
    assert _stats.align_categories(ref, cur) == (["a", "b", "c", "d"], [1, 5, 3, 0], [2, 0, 3, 9])
    assert _stats.align_categories(ref, cur, order="frequency") == (
        ["d", "c", "b", "a"],
        [0, 3, 5, 1],
        [9, 3, 0, 2],
    )
    assert _stats.align_categories(ref, cur, order="given") == (
        ["b", "a", "c", "d"],
        [5, 1, 3, 0],
        [0, 2, 3, 9],
    )
    with pytest.raises(ValueError, match="order must be 'sorted', 'frequency' or 'given', not 'size'"):
        _stats.align_categories(ref, cur, order="size")  # type: ignore[arg-type]


def test_align_offsets_puts_two_runs_on_their_union_range() -> None:
    assert _stats.align_offsets(3, [1, 2], 1, [4, 0, 0, 5, 6]) == (1, [0, 0, 1, 2, 0], [4, 0, 0, 5, 6])
    assert _stats.align_offsets(-2, [7], 2, [1]) == (-2, [7, 0, 0, 0, 0], [0, 0, 0, 0, 1])


def test_quantile_edges_and_histogram_counts_follow_their_definition() -> None:
    rng = np.random.default_rng(3)
    a, b = np.sort(rng.normal(size=1001).round(1)), np.sort(rng.normal(0.2, size=700).round(1))
    edges = _stats.quantile_edges(a, 10)
    assert np.all(np.diff(edges) > 0) and len(edges) <= 9
    for x in (a, b):
        bounds = [-np.inf, *edges, np.inf]
        want = [np.count_nonzero((x > lo) & (x <= hi)) for lo, hi in itertools.pairwise(bounds)]
        assert _stats.histogram_counts(x, edges).tolist() == want
    # a continuous reference fills its own quantile bins equally (right-closed: the first edge's row goes
    # left)
    ref = np.sort(rng.normal(size=1000))
    assert _stats.histogram_counts(ref, _stats.quantile_edges(ref, 10)).tolist() == [101] + [100] * 8 + [99]


# -- exact tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("n", "m", "rounding"), [(40, 55, None), (900, 1100, 1), (12_000, 15_001, None), (30_000, 20_000, 2)]
)
def test_ks_and_wasserstein_match_scipy(n: int, m: int, rounding: int | None) -> None:
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(0.05, 1.1, size=m)
    if rounding is not None:  # ties inside and across samples
        a, b = a.round(rounding), b.round(rounding)
    sa, sb = np.sort(a), np.sort(b)
    d, p = _stats.ks_from_sorted(sa, sb)
    ref = stats.ks_2samp(a, b)
    assert abs(d - ref.statistic) < 1e-9 and abs(p - ref.pvalue) < 1e-9
    assert abs(_stats.wasserstein_from_sorted(sa, sb) - stats.wasserstein_distance(a, b)) < 1e-9


def test_chi2_and_two_proportion_z_match_scipy() -> None:
    r = np.array([500.0, 300, 200, 0])
    c = np.array([450.0, 320, 210, 20])
    chi, p = _stats.chi2_homogeneity(r, c)
    ref = stats.chi2_contingency(np.vstack([r, c])[:, (r + c) > 0], correction=False)
    assert abs(chi - ref.statistic) < 1e-9 and abs(p - ref.pvalue) < 1e-9
    assert _stats.chi2_homogeneity([5, 0], [7, 0]) == (0.0, 1.0)
    z, pz = _stats.two_proportion_z(480, 1000, 530, 1000)
    ref2 = stats.chi2_contingency([[480, 520], [530, 470]], correction=False)
    assert abs(z**2 - ref2.statistic) < 1e-9 and abs(pz - ref2.pvalue) < 1e-9
    assert z > 0 and abs(pz - 2 * stats.norm.sf(abs(z))) < 1e-15
    assert _stats.two_proportion_z(0, 0, 3, 10) == (0.0, 1.0) and _stats.two_proportion_z(0, 10, 0, 12) == (
        0.0,
        1.0,
    )


# -- multiple testing ------------------------------------------------------------------------------
def test_p_value_corrections_match_their_definitions() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.5])
    assert np.allclose(_stats.adjust_p_values(p, "bh"), stats.false_discovery_control(p, method="bh"))
    # Holm: sorted p_(i) * (k - i + 1), running maximum, capped at 1
    assert np.allclose(_stats.adjust_p_values(p, "holm"), [0.04, 0.09, 0.09, 0.025, 0.5])
    assert np.allclose(_stats.adjust_p_values([0.3, 0.4, 0.35], "holm"), [0.9, 0.9, 0.9])
    assert np.allclose(_stats.adjust_p_values(p, "none"), p)
    assert _stats.adjust_p_values([], "holm").size == 0
    with pytest.raises(ValueError, match="method must be 'holm', 'bh' or 'none', not 'bonferroni'"):
        _stats.adjust_p_values(p, "bonferroni")  # type: ignore[arg-type]
