"""The compare and run pages' curves drawn on arrays (``_draw``: sort, EMA smoothing, LTTB of every
series at once) are the very points the row-by-row drawing produced (its loop is the reference)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from modelyard.webui._pages import _draw, _xy


def _pure_lttb(points: list[tuple[float, float]], threshold: int) -> list[tuple[float, float]]:
    """The textbook loop (modelyard.ui.lttb's implementation before numpy): the reference."""
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


def _reference(
    points: list[tuple[int, float, int]], x_time: bool, smooth: float, drawn: int
) -> list[tuple[float, float]]:
    """``_xy`` as it was: tuples sorted by x, an EMA loop over the finite values, the LTTB loop."""
    xy = sorted(
        ((ts / 1000 if x_time else float(step), float(value)) for step, value, ts in points),
        key=lambda t: t[0],
    )
    if smooth > 0:
        out, last = [], None
        for x, y in xy:
            if math.isfinite(y):
                last = y if last is None else smooth * last + (1 - smooth) * y
                out.append((x, last))
        xy = out
    return _pure_lttb(xy, drawn)


def _rows(rng: random.Random, n: int) -> list[tuple[int, float, int]]:
    """Ordered by step as the store returns them; steps repeat, time does not follow the steps."""
    rows = []
    for i in range(n):
        step = i // rng.choice([1, 1, 1, 2])
        v = rng.choice([math.nan, math.inf, -math.inf, 0.5]) if rng.random() < 0.1 else rng.gauss(0, 3)
        rows.append((step, v, 1_780_000_000_000 + rng.randint(0, 10_000_000)))
    return rows


@pytest.mark.parametrize("x_time", [False, True])
@pytest.mark.parametrize("smooth", [0.0, 0.5, 0.93])
def test_drawing_on_arrays_matches_the_row_by_row_drawing(x_time: bool, smooth: float) -> None:
    rng = random.Random(int(x_time) * 100 + int(smooth * 100))
    for drawn in (50, 80, 600):
        batch = [_rows(rng, rng.choice([0, 1, 2, 40, 333, 1000, 1500])) for _ in range(12)]
        arrays = [
            (
                np.array([r[0] for r in rows], dtype=np.int64),
                np.array([r[1] for r in rows], dtype=np.float64),
                np.array([r[2] for r in rows], dtype=np.int64),
            )
            for rows in batch
        ]
        got = _draw(arrays, x_time, smooth, drawn)
        for rows, line in zip(batch, got, strict=True):
            want = _reference(rows, x_time, smooth, drawn)
            assert line == want
            assert _xy(rows, x_time, smooth, drawn) == want
