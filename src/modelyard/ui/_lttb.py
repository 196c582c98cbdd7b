"""Largest-Triangle-Three-Buckets downsampling (Steinarsson 2013) for drawing long series.

A chart of a million points is drawn from ``threshold`` of them that keep its visible shape: the
first and last points, and in each of ``threshold - 2`` equal buckets the point forming the largest
triangle with the point kept before it and the mean of the next bucket. Non-finite points are dropped
first (charts skip them anyway).

Vectorized with numpy: the buckets' means are computed for all buckets at once, and the one step
that depends on the previous choice (the triangle areas of a bucket) runs over every series of a
batch at once (:func:`lttb_indices`), so a compare page's 200 curves cost one loop of ``threshold``
steps. The arithmetic is the textbook algorithm's, operation for operation (sums taken left to right,
the first of equal areas kept), so it picks the very points the pure-Python version picked.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["lttb", "lttb_indices"]

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

#: A batch of equally long series is split so its padded candidate arrays stay below this many cells.
BATCH_CELLS = 4_000_000


def lttb(points: Sequence[tuple[float, float]], threshold: int) -> list[tuple[float, float]]:
    """At most ``threshold`` (>= 3) of ``points`` (sorted by x), chosen to keep the line's shape."""
    if threshold < 3:
        raise ValueError(f"lttb threshold must be at least 3, got {threshold}")
    xy = np.array(points, dtype=np.float64).reshape(-1, 2)
    keep = np.isfinite(xy).all(axis=1)
    x, y = xy[keep, 0], xy[keep, 1]
    idx = lttb_indices([(x, y)], threshold)[0]
    return list(zip(x[idx].tolist(), y[idx].tolist(), strict=True))


def lttb_indices(series: Sequence[tuple[Floats, Floats]], threshold: int) -> list[Ints]:
    """For each ``(x, y)`` pair of finite float64 arrays (sorted by x): the ascending indices of the
    at most ``threshold`` (>= 3) points LTTB keeps. Series of equal length are chosen together."""
    if threshold < 3:
        raise ValueError(f"lttb threshold must be at least 3, got {threshold}")
    out: list[Ints] = [np.arange(len(x), dtype=np.int64) for x, _ in series]
    by_len: dict[int, list[int]] = {}
    for i, (x, _) in enumerate(series):
        if len(x) > threshold:
            by_len.setdefault(len(x), []).append(i)
    for n, members in by_len.items():
        per = max(1, BATCH_CELLS // (2 * n))
        for lo in range(0, len(members), per):
            chunk = members[lo : lo + per]
            xs = np.stack([np.asarray(series[i][0], dtype=np.float64) for i in chunk])
            ys = np.stack([np.asarray(series[i][1], dtype=np.float64) for i in chunk])
            for i, idx in zip(chunk, _choose(xs, ys, threshold), strict=True):
                out[i] = idx
    return out


def _bucket_means(v: Floats, lo: Ints, hi: Ints) -> Floats:
    """Mean of ``v[:, lo[b]:hi[b]]`` for every bucket ``b`` (``v[:, -1]`` where empty), summed left to
    right as Python's ``sum`` does."""
    n = v.shape[1]
    count = hi - lo
    width = max(int(count.max()), 1)
    idx = lo[:, None] + np.arange(width)
    inside = idx < hi[:, None]
    cells = np.where(inside, v[:, np.minimum(idx, n - 1)], 0.0)
    sums = np.cumsum(cells, axis=2)[:, np.arange(len(lo)), np.maximum(count - 1, 0)]
    empty = count == 0
    sums[:, empty] = v[:, -1:]
    return np.asarray(sums / np.where(empty, 1, count), dtype=np.float64)


def _choose(xs: Floats, ys: Floats, threshold: int) -> Ints:
    """LTTB of ``S`` series of ``n`` points each (``xs``, ``ys`` of shape ``(S, n)``): ``(S, threshold)``
    indices."""
    s, n = xs.shape
    buckets = threshold - 2
    every = (n - 2) / (threshold - 2)
    i = np.arange(buckets)
    start = np.array([int(k * every) + 1 for k in range(buckets)], dtype=np.int64)
    end = np.array([int((k + 1) * every) + 1 for k in range(buckets)], dtype=np.int64)
    nxt_end = np.array([min(int((k + 2) * every) + 1, n) for k in range(buckets)], dtype=np.int64)
    nxt_end = np.maximum(nxt_end, end)
    avg_x = _bucket_means(xs, end, nxt_end)  # (S, buckets)
    avg_y = _bucket_means(ys, end, nxt_end)
    width = int((end - start).max())
    cand = start[:, None] + np.arange(width)  # (buckets, width)
    inside = cand < end[:, None]
    cand = np.minimum(cand, n - 1)
    cx, cy = xs[:, cand], ys[:, cand]  # (S, buckets, width)
    rows = np.arange(s)
    chosen = np.empty((s, threshold), dtype=np.int64)
    chosen[:, 0] = 0
    chosen[:, -1] = n - 1
    ax, ay = xs[:, 0].copy(), ys[:, 0].copy()
    for b in i.tolist():
        bx, by = cx[:, b], cy[:, b]
        area = np.abs(
            (ax - avg_x[:, b])[:, None] * (by - ay[:, None])
            - (ax[:, None] - bx) * (avg_y[:, b] - ay)[:, None]
        )
        area[:, ~inside[b]] = -1.0
        area[np.isnan(area)] = -1.0  # an overflowing area is never chosen, as `area > best` is False
        pick = np.argmax(area, axis=1)  # the first of equal areas
        chosen[:, b + 1] = start[b] + pick
        ax, ay = bx[rows, pick], by[rows, pick]
    return chosen
