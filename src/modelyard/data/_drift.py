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
"""

from __future__ import annotations

import math

import numpy as np

from modelyard.data._profile import ColumnProfile, _coarsen

__all__ = ["DRIFT_STATISTICS", "aligned_histograms", "distance", "psi_between"]

DRIFT_STATISTICS = ("psi", "js")
_EPS = 1e-4


def aligned_histograms(ref: ColumnProfile, cur: ColumnProfile) -> tuple[list[float], list[int], list[int]]:
    """``(edges, reference counts, current counts)`` on one common grid."""
    if ref.hist_k is None or cur.hist_k is None or not ref.hist_counts or not cur.hist_counts:
        return [], list(ref.hist_counts), list(cur.hist_counts)
    k = max(ref.hist_k, cur.hist_k)
    a_start, a = _coarsen(ref.hist_k, ref.hist_start, ref.hist_counts, k)
    b_start, b = _coarsen(cur.hist_k, cur.hist_start, cur.hist_counts, k)
    lo = min(a_start, b_start)
    hi = max(a_start + len(a), b_start + len(b))
    ra = [0] * (hi - lo)
    rb = [0] * (hi - lo)
    for i, c in enumerate(a):
        ra[a_start - lo + i] += c
    for i, c in enumerate(b):
        rb[b_start - lo + i] += c
    w = 2.0**k
    return [(lo + i) * w for i in range(hi - lo + 1)], ra, rb


def _categorical(ref: ColumnProfile, cur: ColumnProfile) -> tuple[list[str], list[int], list[int]]:
    keys = sorted(set(ref.values) | set(cur.values))
    r = [ref.values.get(k, 0) for k in keys]
    c = [cur.values.get(k, 0) for k in keys]
    r_other = ref.count - sum(r)
    c_other = cur.count - sum(c)
    if r_other > 0 or c_other > 0:
        keys.append("(other)")
        r.append(max(r_other, 0))
        c.append(max(c_other, 0))
    return keys, r, c


def distance(ref: ColumnProfile, cur: ColumnProfile, statistic: str = "psi") -> float | None:
    """The drift statistic between two profiles of a column (None when it cannot be computed)."""
    if ref.kind in ("numeric", "datetime"):
        _, r, c = aligned_histograms(ref, cur)
    elif ref.kind in ("categorical", "boolean"):
        _, r, c = _categorical(ref, cur)
    else:
        return None
    rs, cs = sum(r), sum(c)
    if rs == 0 or cs == 0:
        return None
    p = np.asarray(r, dtype=np.float64) / rs
    q = np.asarray(c, dtype=np.float64) / cs
    if statistic == "psi":
        p = np.maximum(p, _EPS)
        q = np.maximum(q, _EPS)
        return float(np.sum((q - p) * np.log(q / p)))
    if statistic == "js":
        m = (p + q) / 2

        def kl(x: np.ndarray, y: np.ndarray) -> float:
            mask = x > 0
            return float(np.sum(x[mask] * np.log2(x[mask] / y[mask])))

        return math.sqrt(max(0.0, (kl(p, m) + kl(q, m)) / 2))
    raise ValueError(statistic)


def psi_between(ref: ColumnProfile, cur: ColumnProfile) -> float | None:
    """PSI of ``cur`` against ``ref`` (see the module docstring)."""
    return distance(ref, cur, "psi")


