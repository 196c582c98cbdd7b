"""LTTB downsampling: endpoints kept, the count bounded, peaks survive, short series untouched."""

from __future__ import annotations

import math

import pytest

from modelyard.ui import line_chart, lttb


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
