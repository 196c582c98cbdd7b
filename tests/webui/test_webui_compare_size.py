"""Compare draws a shared budget of points per page: ten runs of three 1,000-step curves stay light."""

from __future__ import annotations

import re
from typing import Any

import pytest

import modelyard as yard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_compare_of_ten_long_runs_shares_the_points_of_a_chart(server: dict[str, Any], client: Any) -> None:
    from modelyard.webui._pages import COMPARE_POINTS, DRAWN_POINTS

    ids = []
    for i in range(10):
        with yard.start_run(experiment="long", name=f"long-{i}") as r:
            for s in range(1_000):
                for k in ("loss", "acc", "lr"):
                    r.log_metric(k, 1.0 / (s + 1 + i) + (s % 7) * 1e-3, step=s)
        ids.append(r.id)
    page = client.get("/ui/compare", params=[("run", i) for i in ids])
    assert page.status_code == 200
    paths = re.findall(r'<path d="M([^"]+)" fill="none"', page.text)
    assert len(paths) == 30
    drawn = [p.count(" L") + 1 for p in paths]
    # 30 curves share the page's budget: each gets the same share, below the per-series cap
    assert sum(drawn) <= COMPARE_POINTS and drawn == [COMPARE_POINTS // 30] * 30, drawn
    assert COMPARE_POINTS // 30 < DRAWN_POINTS
    # two runs keep the per-series cap (the budget only bites when the chart is crowded)
    two = client.get("/ui/compare", params=[("run", i) for i in ids[:2]]).text
    drawn = [p.count(" L") + 1 for p in re.findall(r'<path d="M([^"]+)" fill="none"', two)]
    assert drawn == [DRAWN_POINTS] * 6
