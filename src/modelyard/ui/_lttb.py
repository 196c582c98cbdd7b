"""Largest-Triangle-Three-Buckets downsampling (Steinarsson 2013) for drawing long series.

A chart of a million points is drawn from ``threshold`` of them that keep its visible shape: the
first and last points, and in each of ``threshold - 2`` equal buckets the point forming the largest
triangle with the point kept before it and the mean of the next bucket. Non-finite points are dropped
first (charts skip them anyway). Pure Python, O(n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["lttb"]


def lttb(points: Sequence[tuple[float, float]], threshold: int) -> list[tuple[float, float]]:
    """At most ``threshold`` (>= 3) of ``points`` (sorted by x), chosen to keep the line's shape."""
    if threshold < 3:
        raise ValueError(f"lttb threshold must be at least 3, got {threshold}")
    data = [(float(x), float(y)) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    n = len(data)
    if n <= threshold:
        return data
    out = [data[0]]
    every = (n - 2) / (threshold - 2)
    a = 0
    for i in range(threshold - 2):
        start = int(i * every) + 1
        end = int((i + 1) * every) + 1
        nxt_end = min(int((i + 2) * every) + 1, n)
        nxt = data[end:nxt_end] or [data[-1]]
        avg_x = sum(p[0] for p in nxt) / len(nxt)
        avg_y = sum(p[1] for p in nxt) / len(nxt)
        ax, ay = data[a]
        best, best_area = start, -1.0
        for j in range(start, end):
            x, y = data[j]
            area = abs((ax - avg_x) * (y - ay) - (ax - x) * (avg_y - ay))
            if area > best_area:
                best, best_area = j, area
        out.append(data[best])
        a = best
    out.append(data[-1])
    return out
