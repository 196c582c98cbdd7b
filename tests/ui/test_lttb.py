"""LTTB downsampling: endpoints kept, the count bounded, peaks survive, short series untouched; the
numpy version picks the very points of the textbook loop (NaN, inf, repeats, overflowing areas)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from modelyard.ui import line_chart, lttb
from modelyard.ui._lttb import lttb_indices


def test_short_series_are_returned_whole_without_non_finite_points() -> None:
    pts = [(0, 1.0), (1, math.nan), (2, 3.0)]
    assert lttb(pts, 10) == [(0.0, 1.0), (2.0, 3.0)]


def test_a_long_series_keeps_its_ends_and_its_spike() -> None:
    pts = [(float(i), math.sin(i / 5000)) for i in range(1_000_000)]
    pts[600_000] = (600_000.0, 50.0)
    out = lttb(pts, 500)
    assert len(out) == 500
    assert out[0] == pts[0] and out[-1] == pts[-1]
    assert (600_000.0, 50.0) in out
    assert [x for x, _ in out] == sorted(x for x, _ in out)
    svg = line_chart([("s", out)], title="million")
    assert len(svg) < 40_000


def test_threshold_below_three_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        lttb([(0, 0)], 2)


def _pure_lttb(points: list[tuple[float, float]], threshold: int) -> list[tuple[float, float]]:
    """The textbook loop (this module's implementation before numpy): the reference."""
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


def _random_series(rng: random.Random, n: int) -> list[tuple[float, float]]:
    """Sorted x with repeats; y with NaN, ±inf, repeats, huge values (overflowing areas) and zeros."""
    xs = sorted(rng.choice([rng.random() * 100, float(rng.randint(0, 20))]) for _ in range(n))
    special = [math.nan, math.inf, -math.inf, 0.0, 0.25, 1e300, -1e300, float(rng.randint(0, 3))]
    ys = [rng.choice(special) if rng.random() < 0.3 else rng.gauss(0, 1) for _ in range(n)]
    return list(zip(xs, ys, strict=True))


def test_the_same_points_as_the_pure_python_loop() -> None:
    rng = random.Random(7)
    for _ in range(600):
        n = rng.choice([0, 1, 2, 3, 5, 10, 99, 100, 101, 333, 1000, 2500])
        threshold = rng.choice([3, 4, 5, 7, 50, 80, 100, 600])
        pts = _random_series(rng, n)
        assert lttb(pts, threshold) == _pure_lttb(pts, threshold), (n, threshold)


def test_series_chosen_together_match_each_chosen_alone() -> None:
    rng = random.Random(8)
    series = []
    for n in (5, 300, 300, 300, 1000, 0):
        pts = [(x, y) for x, y in _random_series(rng, n) if math.isfinite(y)]
        series.append((np.array([p[0] for p in pts]), np.array([p[1] for p in pts])))
    together = lttb_indices(series, 40)
    for (x, y), idx in zip(series, together, strict=True):
        assert idx.tolist() == lttb_indices([(x, y)], 40)[0].tolist()
        pts = list(zip(x.tolist(), y.tolist(), strict=True))
        assert [pts[i] for i in idx] == _pure_lttb(pts, 40)
