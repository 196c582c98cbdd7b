"""Exact two-sample statistics on sorted arrays and category counts (numpy/scipy, no sketches).

Every function here is exact: the numeric ones work on the full sorted samples, the categorical
ones on full counts. Where scipy has the test the result matches it to ~1e-12 (tests check 1e-9).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "chi2_homogeneity",
    "histogram_counts",
    "jensen_shannon",
    "ks_from_sorted",
    "psi",
    "quantile_edges",
    "two_proportion_z",
    "wasserstein_from_sorted",
]

#: scipy's ``ks_2samp(method="auto")`` uses the exact distribution up to this sample size.
KS_EXACT_MAX_N = 10_000
#: Above this effective size ``n*m/(n+m)`` the p-value uses the limiting Kolmogorov distribution.
KS_KSTWO_MAX_EN = 15_000


def ks_from_sorted(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Two-sided two-sample Kolmogorov–Smirnov statistic and p-value of two *sorted* samples.

    The statistic is computed in O(n log m) from the sorted arrays (no merge sort). The p-value
    is scipy's: the exact distribution for small samples (by calling scipy on the data) and
    Smirnov's asymptotic ``kstwo.sf(D, round(n*m/(n+m)))`` above :data:`KS_EXACT_MAX_N`, up to
    :data:`KS_KSTWO_MAX_EN`; beyond, ``kstwobign.sf(D*sqrt(en))``.
    """
    n, m = a.size, b.size
    if max(n, m) <= KS_EXACT_MAX_N:
        from scipy.stats import ks_2samp

        res = ks_2samp(a, b)
        return float(res.statistic), float(res.pvalue)
    # max(Fa - Fb) is reached at a's points, max(Fb - Fa) at b's points (right-continuous CDFs).
    right = np.searchsorted(b, a, side="right")  # #b <= a_i
    # integer arithmetic on the grid 1/(n*m): max((i+1)*m - right_i*n)
    d_plus = int(np.max(np.arange(m, (n + 1) * m, m, dtype=np.int64) - right * n))
    # #a <= b_j == #{i : #b < a_i <= j}: a counting pass instead of a second search. #b < a_i
    # equals #b <= a_i unless a value occurs in both samples; only then search again.
    tied = right > 0
    tied[tied] = b[right[tied] - 1] == a[tied]
    left = np.searchsorted(b, a, side="left") if tied.any() else right
    a_le_b = np.cumsum(np.bincount(left, minlength=m + 1)[:m])
    d_minus = int(np.max(np.arange(n, (m + 1) * n, n, dtype=np.int64) - a_le_b * m))
    d = max(d_plus, d_minus, 0) / (n * m)
    from scipy.stats import distributions

    big, small = sorted([float(n), float(m)], reverse=True)
    en = big * small / (big + small)
    if en <= KS_KSTWO_MAX_EN:
        p = distributions.kstwo.sf(d, np.round(en))
    else:
        # scipy's finite-n kstwo.sf takes seconds per call at this size; its n→∞ limit is
        # Kolmogorov's distribution (relative difference O(1/sqrt(n)), irrelevant at this n:
        # large samples are decided on the effect size).
        p = distributions.kstwobign.sf(d * math.sqrt(en))
    return d, float(np.clip(p, 0.0, 1.0))


def wasserstein_from_sorted(a: np.ndarray, b: np.ndarray) -> float:
    """First Wasserstein distance of two *sorted* samples: ∫|Qa(t) − Qb(t)| dt, linear time.

    Equal to ``scipy.stats.wasserstein_distance(a, b)``; computed on the quantile functions, whose
    breakpoints ``i/n`` and ``j/m`` are merged by integer arithmetic (no second sort).
    """
    n, m = a.size, b.size
    if n == m:
        return float(np.mean(np.abs(a - b)))
    # Breakpoints on the integer grid k/(n*m): a's are i*m, b's are j*n (i=1..n, j=1..m).
    ia = np.arange(1, n + 1, dtype=np.int64)
    jb = np.arange(1, m + 1, dtype=np.int64)
    # position of a's breakpoint i*m among b's: #j with j*n < i*m, ties go after (b first)
    pos_a = ia - 1 + (ia * m - 1) // n
    pos_b = jb - 1 + (jb * n) // m
    grid = np.empty(n + m, dtype=np.int64)
    grid[pos_a] = ia * m
    grid[pos_b] = jb * n
    widths = np.diff(grid, prepend=0)  # in units of 1/(n*m); zero-width at shared breakpoints
    # On (t_{k-1}, t_k]: Qa = a[ceil(t_k*n)-1] = a[ceil(g/m)-1], Qb = b[ceil(g/n)-1]
    qa = a[-(-grid // m) - 1]
    qb = b[-(-grid // n) - 1]
    return float(np.sum(np.abs(qa - qb) * widths) / (n * m))  # no BLAS dot: its threads spin under load


def quantile_edges(sorted_ref: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (unique), for PSI / JS on numeric columns."""
    n = sorted_ref.size
    idx = (np.arange(1, bins) * n) // bins
    return np.unique(sorted_ref[np.clip(idx, 0, n - 1)])


def histogram_counts(sorted_x: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts of a sorted sample in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    cut = np.searchsorted(sorted_x, inner_edges, side="right")
    return np.diff(np.concatenate(([0], cut, [sorted_x.size]))).astype(np.float64)


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else counts


def psi(ref_counts: np.ndarray, cur_counts: np.ndarray, eps: float = 1e-4) -> float:
    """Population stability index ``Σ (c − r)·ln(c / r)`` over shares clipped at ``eps``."""
    r = np.clip(_shares(ref_counts), eps, None)
    c = np.clip(_shares(cur_counts), eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def jensen_shannon(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen–Shannon distance (base 2, in [0, 1]) between two count vectors; scipy's formula."""
    from scipy.spatial.distance import jensenshannon

    if ref_counts.sum() <= 0 or cur_counts.sum() <= 0:
        return 0.0
    return float(jensenshannon(ref_counts, cur_counts, base=2))


def chi2_homogeneity(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Pearson chi-squared test of homogeneity of a 2×k table (no continuity correction).

    Categories absent from both samples are dropped; equal to
    ``scipy.stats.chi2_contingency([ref, cur], correction=False)``.
    """
    from scipy.stats import chi2

    table = np.vstack([ref_counts, cur_counts]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return stat, float(chi2.sf(stat, dof))


def two_proportion_z(x1: float, n1: float, x2: float, n2: float) -> tuple[float, float]:
    """Pooled two-proportion z-test: ``(z, two-sided p)``; ``z**2`` equals the 2×2 chi-squared."""
    from scipy.stats import norm

    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 0.0, 1.0
    z = (p2 - p1) / math.sqrt(var)
    return float(z), float(2 * norm.sf(abs(z)))
