"""Distribution distance between a reference profile and a current one.

Both numeric histograms live on aligned power-of-two grids (see :mod:`._profile`), so they are
brought to a common bin width exactly, without interpolation. Categorical columns compare value
frequencies over the union of both value sets (values outside the tracked ones form one bin).

Statistics:

- ``psi`` (the default): population stability index, ``Σ (c - r) · ln(c / r)`` over bin
  fractions, each smoothed with ``1e-4`` so empty bins stay finite. Conventional reading:
  < 0.1 stable, 0.1–0.2 moderate shift, > 0.2 significant shift (the default threshold).
- ``js``: Jensen–Shannon distance (square root of the JS divergence, log base 2), in [0, 1];
  a threshold of 0.1 is a reasonable default.

:func:`distribution_check` is what ``validate`` runs: the bins are sized for the batch (groups of
the fine grid holding about equal shares of the reference, as many as the smaller sample can fill
with ~10 rows each, at most 10) and the ``auto`` threshold comes from the statistic's sampling
distribution for those sizes: between two samples of one distribution (sizes ``n`` and ``m``,
``B`` bins) PSI is close to ``(1/n + 1/m) · χ²(B − 1)`` (its second-order expansion is the
chi-square divergence) and the JS divergence (in nats) to an eighth of that. The threshold is the
``1 − α/k`` quantile (``α`` = :data:`DISTRIBUTION_ALPHA` shared by the ``k`` auto-threshold
distribution checks of a suite: Bonferroni), and never below an effect floor (PSI 0.1, JS 0.1)
so a large batch does not fail on a shift too small to matter. Each bin gets half a row on both
sides before the shares are taken (an empty bin would otherwise dominate the statistic).
"""

from __future__ import annotations

from typing import TypedDict

import numpy as np

from modelyard import _stats
from modelyard.data._profile import ColumnProfile, _coarsen

__all__ = [
    "DISTRIBUTION_ALPHA",
    "DRIFT_STATISTICS",
    "EFFECT_FLOOR",
    "aligned_histograms",
    "auto_threshold",
    "distance",
    "distribution_check",
    "psi_between",
]

DRIFT_STATISTICS = ("psi", "js")
#: Chance that one of a suite's auto-threshold distribution checks fails on a sample of the
#: reference's own distribution (shared by the checks of the suite, Bonferroni).
DISTRIBUTION_ALPHA = 0.005
#: Smallest auto threshold per statistic: a shift below it is not called a change, however large the batch.
EFFECT_FLOOR = {"psi": 0.1, "js": 0.1}
#: Most bins of a distribution check, and the rows of the smaller sample per bin.
MAX_BINS = 10
ROWS_PER_BIN = 10


def aligned_histograms(ref: ColumnProfile, cur: ColumnProfile) -> tuple[list[float], list[int], list[int]]:
    """``(edges, reference counts, current counts)`` on one common grid."""
    if ref.hist_k is None or cur.hist_k is None or not ref.hist_counts or not cur.hist_counts:
        return [], list(ref.hist_counts), list(cur.hist_counts)
    k = max(ref.hist_k, cur.hist_k)
    a_start, a = _coarsen(ref.hist_k, ref.hist_start, ref.hist_counts, k)
    b_start, b = _coarsen(cur.hist_k, cur.hist_start, cur.hist_counts, k)
    lo, ra, rb = _stats.align_offsets(a_start, a, b_start, b)
    w = 2.0**k
    return [(lo + i) * w for i in range(len(ra) + 1)], ra, rb


def _categorical(ref: ColumnProfile, cur: ColumnProfile) -> tuple[list[str], list[int], list[int]]:
    keys, r, c = _stats.align_categories(ref.values, cur.values)
    r_other = ref.count - sum(r)
    c_other = cur.count - sum(c)
    if r_other > 0 or c_other > 0:
        keys.append("(other)")
        r.append(max(r_other, 0))
        c.append(max(c_other, 0))
    return keys, r, c


def distance(ref: ColumnProfile, cur: ColumnProfile, statistic: str = "psi") -> float | None:
    """The drift statistic between two profiles of a column on the fine grid (None when it cannot be
    computed).

    The fine grid suits large samples (``yard data diff``); on small batches its many thin bins
    inflate the statistic: validation uses :func:`distribution_check`.
    """
    if ref.kind in ("numeric", "datetime"):
        _, r, c = aligned_histograms(ref, cur)
    elif ref.kind in ("categorical", "boolean"):
        _, r, c = _categorical(ref, cur)
    else:
        return None
    return _statistic(r, c, statistic)


def _statistic(
    r: list[int] | np.ndarray, c: list[int] | np.ndarray, statistic: str, pseudocount: float = 0.0
) -> float | None:
    if float(np.sum(r)) + pseudocount * len(r) == 0 or float(np.sum(c)) + pseudocount * len(c) == 0:
        return None
    if statistic == "psi":
        return _stats.psi(r, c, pseudocount=pseudocount)
    if statistic == "js":
        return _stats.jensen_shannon(r, c, pseudocount=pseudocount)
    raise ValueError(statistic)


def _bin_count(n_ref: int, n_cur: int) -> int:
    return max(2, min(MAX_BINS, min(n_ref, n_cur) // ROWS_PER_BIN))


def _group_numeric(r: list[int], c: list[int], bins: int, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Group the fine aligned bins into ``bins`` runs holding about equal reference shares."""
    ra = np.asarray(r, dtype=np.float64)
    ca = np.asarray(c, dtype=np.float64)
    total = ra.sum()
    # each fine bin goes to the quantile group of its reference mass centre; bins the reference
    # never reached join the group on their side (the first or the last)
    centre = (np.cumsum(ra) - ra / 2) / total
    group = np.minimum((centre * bins).astype(np.int64), bins - 1)
    _, idx = np.unique(group, return_inverse=True)
    k = int(idx.max()) + 1
    rg, cg = np.bincount(idx, weights=ra, minlength=k), np.bincount(idx, weights=ca, minlength=k)
    return _merge_thin(rg, cg, min_rows)


def _merge_thin(rg: np.ndarray, cg: np.ndarray, min_rows: float) -> tuple[np.ndarray, np.ndarray]:
    """Join bins expected to hold fewer than ``min_rows`` rows of the smaller sample to a neighbour."""
    r, c = list(rg), list(cg)
    total = sum(r)
    while len(r) > 2:
        i = min(range(len(r)), key=lambda x: r[x])
        if r[i] / total * min_rows >= 5:
            break
        j = i - 1 if i == len(r) - 1 or (i > 0 and r[i - 1] <= r[i + 1]) else i + 1
        r[j] += r[i]
        c[j] += c[i]
        del r[i], c[i]
    return np.asarray(r), np.asarray(c)


def _group_categorical(r: list[int], c: list[int], n_small: int) -> tuple[np.ndarray, np.ndarray]:
    """Categories as bins; those too rare to fill ~5 rows of the smaller sample are pooled."""
    ra = np.asarray(r, dtype=np.float64)
    ca = np.asarray(c, dtype=np.float64)
    share = ra / max(ra.sum(), 1.0)
    rare = share * n_small < 5
    if rare.sum() >= 2:
        ra = np.append(ra[~rare], ra[rare].sum())
        ca = np.append(ca[~rare], ca[rare].sum())
        rare = np.zeros(len(ra), dtype=bool)
        rare[-1] = ra[-1] / max(ra.sum(), 1.0) * n_small < 5
    if rare.any() and len(ra) > 2:  # still too thin: join the smallest other bin
        i = int(np.flatnonzero(rare)[0])
        others = [j for j in range(len(ra)) if j != i]
        j = min(others, key=lambda x: ra[x])
        ra[j] += ra[i]
        ca[j] += ca[i]
        ra, ca = np.delete(ra, i), np.delete(ca, i)
    return ra, ca


def auto_threshold(
    statistic: str, n_ref: int, n_cur: int, bins: int, checks: int = 1, alpha: float = DISTRIBUTION_ALPHA
) -> float:
    """The statistic's ``1 − alpha/checks`` quantile between two samples of one distribution, floored.

    ``PSI ≈ (1/n + 1/m) · χ²(bins − 1)``; JS distance ≈ ``sqrt(PSI / (8 ln 2))`` (see the module
    docstring); never below :data:`EFFECT_FLOOR`.
    """
    value = _stats.null_quantile(statistic, n_ref, n_cur, bins, alpha / max(checks, 1))  # type: ignore[arg-type]
    return max(EFFECT_FLOOR[statistic], value)


class DistributionCheck(TypedDict):
    """What :func:`distribution_check` found for one column."""

    value: float
    threshold: float
    bins: int
    ok: bool
    rows: tuple[int, int]  # (reference rows, current rows) in the compared bins


def distribution_check(
    ref: ColumnProfile,
    cur: ColumnProfile,
    statistic: str = "psi",
    threshold: float | str = "auto",
    checks: int = 1,
) -> DistributionCheck | None:
    """The distribution check of one column on bins sized for the batch (None: not comparable).

    Returns ``{"value", "threshold", "bins", "ok"}``; ``threshold="auto"`` derives it from both
    sample sizes and the bin count (:func:`auto_threshold`, ``checks`` = the suite's number of
    auto-threshold distribution checks), a number is used as given.
    """
    if ref.kind in ("numeric", "datetime"):
        _, r, c = aligned_histograms(ref, cur)
        n_ref, n_cur = sum(r), sum(c)
        if n_ref == 0 or n_cur == 0:
            return None
        rg, cg = _group_numeric(r, c, _bin_count(n_ref, n_cur), min(n_ref, n_cur))
    elif ref.kind in ("categorical", "boolean"):
        _, r, c = _categorical(ref, cur)
        n_ref, n_cur = sum(r), sum(c)
        if n_ref == 0 or n_cur == 0:
            return None
        rg, cg = _group_categorical(r, c, min(n_ref, n_cur))
    else:
        return None
    # half a row in every bin on both sides: an empty bin (a rare but possible draw) would
    # otherwise weigh ln(share / 1e-4) and make the statistic's tail far heavier than chi-square's
    value = _statistic(rg, cg, statistic, pseudocount=0.5)
    if value is None:
        return None
    bins = len(rg)
    thr = auto_threshold(statistic, n_ref, n_cur, bins, checks) if threshold == "auto" else float(threshold)
    if bins < 2:  # one value on the reference side and in the batch: nothing can shift
        value = 0.0
    return {"value": value, "threshold": thr, "bins": bins, "ok": value <= thr, "rows": (n_ref, n_cur)}


def psi_between(ref: ColumnProfile, cur: ColumnProfile) -> float | None:
    """PSI of ``cur`` against ``ref`` (see the module docstring)."""
    return distance(ref, cur, "psi")
