"""Compare draws a shared budget of points per chart: ten runs of 1,000 steps each stay light."""

from __future__ import annotations

import re
from typing import Any

import pytest

import modelyard as yard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_compare_of_ten_long_runs_shares_the_points_of_a_chart(server: dict[str, Any], client: Any) -> None:
    from modelyard.webui._pages import CHART_POINTS, DRAWN_POINTS

    ids = []
    for i in range(10):
        with yard.start_run(experiment="long", name=f"long-{i}") as r:
            for s in range(1_000):
                r.log_metric("loss", 1.0 / (s + 1 + i) + (s % 7) * 1e-3, step=s)
        ids.append(r.id)
    page = client.get("/ui/compare", params=[("run", i) for i in ids])
    assert page.status_code == 200
    paths = re.findall(r'<path d="M([^"]+)" fill="none"', page.text)
    assert len(paths) == 10
    drawn = [p.count(" L") + 1 for p in paths]
    assert sum(drawn) <= CHART_POINTS and min(drawn) >= CHART_POINTS // 10 - 2, drawn
    # two runs keep the per-series cap (the budget only bites when the chart is crowded)
    two = client.get("/ui/compare", params=[("run", i) for i in ids[:2]]).text
    drawn = [p.count(" L") + 1 for p in re.findall(r'<path d="M([^"]+)" fill="none"', two)]
    assert drawn == [DRAWN_POINTS] * 2
