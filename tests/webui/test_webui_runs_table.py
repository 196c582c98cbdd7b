"""The runs table's fast paths show what the plain ones show: the cells (numbers formatted without
``fmt_num``'s checks, unescaped), the header links (pairs encoded once a page), and the page itself
against the cells and columns built from whole runs (``search_runs``), the way the page used to."""

from __future__ import annotations

import math
import random
import re
import struct
from typing import Any

import pytest
from markupsafe import Markup, escape

from modelyard.tracking._records import RunRecord, RunStatus
from modelyard.ui import fmt_num
from modelyard.webui._pages import _linker, _query, row_cells, show

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def old_cells(shown: list[Any], cols: list[str]) -> list[Markup]:
    """The cells as the page built them before the fast path (every value through show + escape)."""
    picked = [(kind, key) for kind, _, key in (c.partition(".") for c in cols)]
    td = '<td class="num">{}</td>'.format
    return [Markup("".join(td(escape(show(getattr(r, k).get(c)))) for k, c in picked)) for r in shown]


def numbers() -> list[float]:
    """Floats around every boundary of ``fmt_num`` and at random bit patterns."""
    rnd = random.Random(7)
    edges = [0.0, -0.0, 1e-3, -1e-3, 1e5, -1e5, 99999.5, 99999.49, 0.00099999, 0.0009999951, 1e-300]
    edges += [5e-324, 1.7976931348623157e308, math.inf, -math.inf, math.nan, -math.nan, 1.0, 12345.678]
    edges += [math.nextafter(b, d) for b in (1e-3, 1e5, -1e-3, -1e5) for d in (0.0, math.inf)]
    out = edges + [rnd.uniform(-2e5, 2e5) for _ in range(3000)]
    out += [10 ** rnd.uniform(-8, 8) * rnd.choice((1, -1)) for _ in range(3000)]
    out += [struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(3000)]
    out += [float(rnd.randint(-(10**7), 10**7)) for _ in range(1000)]
    return out


def record(i: int, metrics: dict[str, Any], params: dict[str, str], tags: dict[str, str]) -> RunRecord:
    return RunRecord(
        f"id{i}", "exp", f"run-{i}", RunStatus.FINISHED, 0, None, None, None,
        params=params, metrics=metrics, tags=tags,
    )  # fmt: skip


def test_cells_equal_the_plain_formatter() -> None:
    vals = numbers()
    runs = [record(i, {"m": v, "n": -v}, {}, {}) for i, v in enumerate(vals)]
    # texts: markup, quotes and non-ASCII in params and tags; metrics that are missing or ints
    runs += [
        record(0, {"i": 3}, {"p": '<b a="1">&amp;\'</b>'}, {"t": "é ∞ NaN"}),  # type: ignore[dict-item]
        record(1, {}, {"p": ""}, {}),
    ]
    cols = ["metrics.m", "metrics.n", "metrics.i", "params.p", "tags.t", "metrics.absent"]
    assert row_cells(runs, cols) == old_cells(runs, cols)
    assert all(re.fullmatch(r'(<td class="num">[^<>&"]*</td>)*', c) for c in row_cells(runs[:-2], cols))
    assert {fmt_num(v, 5) for v in vals[:20]} >= {"NaN", "∞", "-∞", "0", "-0", "0.001", "1.000e+05"}
    assert row_cells(runs, []) == [Markup("")] * len(runs)


@pytest.mark.parametrize(
    "over",
    [
        {},
        {"sort": "metrics.a b&c", "dir": "asc", "after": None},
        {"after": "tok/=+"},
        {"n": 200, "after": None},
        {"cols": []},
        {"q": "", "sort": ""},
    ],
)
def test_links_equal_the_plain_query(over: dict[str, Any]) -> None:
    for base in (
        {
            "q": "metrics.acc > 0.5 and name like '%é&x%'",
            "sort": "",
            "dir": "desc",
            "n": 50,
            "cols": ["a.b", "c d"],
        },
        {"q": "", "sort": "params.lr", "dir": "asc", "n": 25, "cols": []},
    ):
        link = _linker(base)
        assert link(**over) == _query({**base, **over})
        assert link(**over) == _query({**base, **over})  # the pairs encoded the first time, reused


def test_page_shows_the_runs_as_whole_runs_would(client: Any, server: dict[str, Any]) -> None:
    """The page's rows, cells and column chooser against ``search_runs`` (every child of each run)."""
    from modelyard.tracking import TrackingService

    svc = TrackingService(server["ws"])
    for params in (
        {"n": "25"},
        {
            "n": "25",
            "sort": "metrics.loss",
            "dir": "asc",
            "cols": ["params.opt", "metrics.accuracy", "tags.team"],
        },
        {"n": "25", "q": "params.opt = 'adam'", "cols": ["metrics.loss", "tags.team", "params.nope"]},
    ):
        r = client.get("/ui/experiments/exp", params=params)
        assert r.status_code == 200
        order = f"{params['sort']} {params['dir']}" if "sort" in params else None
        runs = list(svc.search_runs("exp", filter=params.get("q"), order_by=order, limit=25))
        cols = params.get("cols") or (
            [f"metrics.{k}" for k in sorted({k for x in runs for k in x.metrics})[:4]]
            + [f"params.{k}" for k in sorted({k for x in runs for k in x.params})[:3]]
        )
        rows = re.findall(
            r'<tr><td><input type="checkbox" name="run" value="([0-9a-f]+)".*?</td>\n(.*?)</tr>', r.text, re.S
        )
        assert [i for i, _ in rows] == [x.id for x in runs]
        for (_, html), cells in zip(rows, old_cells(runs, cols), strict=True):
            assert html.endswith(str(cells))
        chooser = re.findall(r'<input type="checkbox" name="cols" value="([^"]+)"', r.text)
        assert chooser == [
            f"{kind}.{k}"
            for kind in ("metrics", "params", "tags")
            for k in sorted({k for x in runs for k in getattr(x, kind) if not k.startswith("yard.")})
        ]
