"""Two-sample statistics shared by data validation, drift monitoring and rollout analysis.

One implementation of each, tested once against scipy (``tests/test_stats.py``):

* distances between two count vectors on one set of bins: :func:`psi` (population stability
  index) and :func:`jensen_shannon` (Jensen–Shannon distance, scipy's formula);
* putting two samples on one set of bins: :func:`align_categories` (union of categories),
  :func:`align_offsets` (two runs of bins on one grid, different first bins),
  :func:`quantile_edges` + :func:`histogram_counts` (common edges from the reference's quantiles);
* exact tests: :func:`ks_from_sorted`, :func:`wasserstein_from_sorted`,
  :func:`chi2_homogeneity`, :func:`two_proportion_z`;
* :func:`adjust_p_values`: Holm and Benjamini–Hochberg corrections;
* :func:`null_quantile`: the sampling distribution of PSI / JS between two samples of one
  distribution (what a sample-size-aware threshold is).

Numbers only: no modelyard imports, numpy at module level, scipy inside the functions.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Literal, TypeVar

import numpy as np

__all__ = [
    "KS_EXACT_MAX_N",
    "KS_KSTWO_MAX_EN",
    "PSI_EPS",
    "adjust_p_values",
    "align_categories",
    "align_offsets",
    "chi2_homogeneity",
    "histogram_counts",
    "jensen_shannon",
    "ks_from_sorted",
    "null_quantile",
    "psi",
    "quantile_edges",
    "two_proportion_z",
    "wasserstein_from_sorted",
]

K = TypeVar("K", bound=Hashable)
N = TypeVar("N", int, float)  # counts keep their type: whole rows stay int
Counts = Sequence[float] | np.ndarray

#: Shares below this are raised to it before PSI takes their logarithm (an empty bin stays finite).
PSI_EPS = 1e-4
#: scipy's ``ks_2samp(method="auto")`` uses the exact distribution up to this sample size.
KS_EXACT_MAX_N = 10_000
#: Above this effective size ``n*m/(n+m)`` the p-value uses the limiting Kolmogorov distribution.
KS_KSTWO_MAX_EN = 15_000


# -- distances between two count vectors -----------------------------------------------------------
def psi(ref: Counts, cur: Counts, *, eps: float = PSI_EPS, pseudocount: float = 0.0) -> float:
    """Population stability index ``Σ (c − r)·ln(c / r)`` of two count vectors on the same bins.

    ``r`` and ``c`` are the bins' shares, each raised to at least ``eps`` (so an empty bin
    weighs ``ln(share / eps)`` instead of infinity). ``pseudocount`` is added to every bin's
    count on both sides first (data validation adds half a row). 0.0 when either side is empty.
    """
    r = np.asarray(ref, dtype=np.float64) + pseudocount
    c = np.asarray(cur, dtype=np.float64) + pseudocount
    rt, ct = float(np.sum(r)), float(np.sum(c))
    if rt <= 0 or ct <= 0:
        return 0.0
    p = np.maximum(r / rt, eps)
    q = np.maximum(c / ct, eps)
    return float(np.sum((q - p) * np.log(q / p)))


def jensen_shannon(ref: Counts, cur: Counts, *, base: float = 2.0, pseudocount: float = 0.0) -> float:
    """Jensen–Shannon distance (square root of the divergence; base 2: in [0, 1]) of two count vectors.

    The same operations as ``scipy.spatial.distance.jensenshannon(ref, cur, base=base)``
    (without importing scipy.spatial). 0.0 when either side is empty.
    """
    from scipy.special import rel_entr

    p = np.asarray(ref, dtype=np.float64) + pseudocount
    q = np.asarray(cur, dtype=np.float64) + pseudocount
    pt, qt = float(np.sum(p)), float(np.sum(q))
    if pt <= 0 or qt <= 0:
        return 0.0
    p = p / np.sum(p)
    q = q / np.sum(q)
    m = (p + q) / 2.0
    js = np.sum(rel_entr(p, m)) + np.sum(rel_entr(q, m))
    js /= np.log(base)
    return float(np.sqrt(max(0.0, js / 2.0)))


def null_quantile(statistic: Literal["psi", "js"], n_ref: int, n_cur: int, bins: int, alpha: float) -> float:
    """The ``1 − alpha`` quantile of PSI (or JS distance) between two samples of one distribution.

    Sizes ``n`` and ``m`` over ``bins`` bins: PSI is close to ``(1/n + 1/m) · χ²(bins − 1)`` (its
    second-order expansion is the chi-square divergence) and the JS divergence (in nats) to an
    eighth of that, so the JS distance (base 2) to ``sqrt(PSI / (8 ln 2))``.
    """
    from scipy.stats import chi2

    if statistic not in ("psi", "js"):
        raise ValueError(f"statistic must be 'psi' or 'js', not {statistic!r}")
    q = float(chi2.isf(alpha, max(bins - 1, 1)))
    value = q * (1.0 / max(n_ref, 1) + 1.0 / max(n_cur, 1))
    return value if statistic == "psi" else math.sqrt(value / (8 * math.log(2)))


# -- two samples on one set of bins ----------------------------------------------------------------
def align_categories(
    ref: Mapping[K, N],
    cur: Mapping[K, N],
    *,
    order: Literal["sorted", "frequency", "given"] = "sorted",
) -> tuple[list[K], list[N], list[N]]:
    """``(categories, reference counts, current counts)`` over the union of both categories.

    ``order``: ``"sorted"`` by category; ``"frequency"`` most frequent (both sides together)
    first, ties by category; ``"given"`` the reference's categories in their order, then the
    current's new ones in theirs. A category missing on one side counts 0 there.
    """
    if order == "given":
        keys = list(dict.fromkeys([*ref, *cur]))
    elif order == "sorted":
        keys = sorted(set(ref) | set(cur))  # type: ignore[type-var]
    elif order == "frequency":
        keys = sorted(sorted(set(ref) | set(cur)), key=lambda k: -(ref.get(k, 0) + cur.get(k, 0)))  # type: ignore[type-var]
    else:
        raise ValueError(f"order must be 'sorted', 'frequency' or 'given', not {order!r}")
    return keys, [ref.get(k, 0) for k in keys], [cur.get(k, 0) for k in keys]


def align_offsets(
    ref_start: int, ref: Sequence[int], cur_start: int, cur: Sequence[int]
) -> tuple[int, list[int], list[int]]:
    """Two runs of bins of one grid (first bin index, counts) on their union range:
    ``(first index, reference counts, current counts)``, zeros where a side has none."""
    lo = min(ref_start, cur_start)
    hi = max(ref_start + len(ref), cur_start + len(cur))
    ra = [0] * (hi - lo)
    rb = [0] * (hi - lo)
    for i, c in enumerate(ref):
        ra[ref_start - lo + i] += c
    for i, c in enumerate(cur):
        rb[cur_start - lo + i] += c
    return lo, ra, rb


def quantile_edges(sorted_ref: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges at the reference's quantiles (unique), for PSI / JS on numeric columns."""
    n = sorted_ref.size
    idx = (np.arange(1, bins) * n) // bins
    return np.unique(sorted_ref[np.clip(idx, 0, n - 1)])


def histogram_counts(sorted_x: np.ndarray, inner_edges: np.ndarray) -> np.ndarray:
    """Counts of a sorted sample in the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    cut = np.searchsorted(sorted_x, inner_edges, side="right")
    return np.diff(np.concatenate(([0], cut, [sorted_x.size]))).astype(np.float64)


# -- exact two-sample tests ------------------------------------------------------------------------
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


def chi2_homogeneity(ref_counts: Counts, cur_counts: Counts) -> tuple[float, float]:
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
    """Pooled two-proportion z-test of ``x2/n2 − x1/n1``: ``(z, two-sided p)``; ``z**2`` equals
    the 2×2 chi-squared. ``(0.0, 1.0)`` when a side is empty or the pooled variance is 0."""
    if n1 <= 0 or n2 <= 0:
        return 0.0, 1.0
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 0.0, 1.0
    z = (p2 - p1) / math.sqrt(var)
    return float(z), math.erfc(abs(z) / math.sqrt(2))


# -- multiple testing ------------------------------------------------------------------------------
def adjust_p_values(p: Counts, method: Literal["holm", "bh", "none"]) -> np.ndarray:
    """Holm (step-down Bonferroni) or Benjamini–Hochberg adjusted p-values, in the input order."""
    p = np.asarray(p, dtype=np.float64)
    k = p.size
    if method not in ("holm", "bh", "none"):
        raise ValueError(f"method must be 'holm', 'bh' or 'none', not {method!r}")
    if k == 0 or method == "none":
        return p.copy()
    order = np.argsort(p, kind="stable")
    ps = p[order]
    if method == "holm":
        adj = np.maximum.accumulate(np.minimum(1.0, ps * (k - np.arange(k))))
    else:  # bh
        adj = np.minimum.accumulate((ps * k / np.arange(1, k + 1))[::-1])[::-1]
        adj = np.minimum(1.0, adj)
    out = np.empty(k)
    out[order] = adj
    return out
