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
from modelyard.webui._pages import _esc, _linker, _query, duration, show, table_rows, when

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


#: The rows as the template drew them before they were built in Python (web/runs.html.j2's loop).
OLD_ROWS = """<tbody>{% for r in runs %}
<tr><td><input type="checkbox" name="run" value="{{ r.id }}" aria-label="select {{ r.name }}"></td>
<td class="name"><a href="{{ prefix }}/runs/{{ r.id }}">{{ r.name }}</a></td>
<td><span class="badge {{ r.status.value }}">{{ r.status.value }}</span></td>
<td>{{ when(r.start_time) }}</td><td>{{ r.user or '' }}</td><td class="num">{{ duration(r.start_time, r.end_time) }}</td>
{{ cells[loop.index0] }}</tr>
{% endfor %}"""  # noqa: E501


def old_cells(shown: list[Any], cols: list[str]) -> list[Markup]:
    """The cells as the page built them before the fast path (every value through show + escape)."""
    picked = [(kind, key) for kind, _, key in (c.partition(".") for c in cols)]
    td = '<td class="num">{}</td>'.format
    return [Markup("".join(td(escape(show(getattr(r, k).get(c)))) for k, c in picked)) for r in shown]


def old_rows(shown: list[Any], cols: list[str]) -> str:
    from modelyard.ui._pages import _environment

    template = _environment().from_string(OLD_ROWS)
    return str(
        template.render(runs=shown, cells=old_cells(shown, cols), prefix="/ui", when=when, duration=duration)
    )


def new_rows(shown: list[Any], cols: list[str]) -> str:
    return "<tbody>" + "".join(table_rows(shown, cols))


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


def record(
    i: int, metrics: dict[str, Any], params: dict[str, str], tags: dict[str, str], **attrs: Any
) -> RunRecord:
    fields: dict[str, Any] = {
        "name": f"run-{i}", "status": RunStatus.FINISHED, "start_time": 0, "end_time": None, "user": None,
    }  # fmt: skip
    fields.update(attrs)
    return RunRecord(
        f"id{i}", "exp", fields["name"], fields["status"], fields["start_time"], fields["end_time"], None,
        fields["user"], params=params, metrics=metrics, tags=tags,
    )  # fmt: skip


def test_cells_equal_the_plain_formatter() -> None:
    vals = numbers()
    runs = [record(i, {"m": v, "n": -v}, {}, {}) for i, v in enumerate(vals)]
    # texts: markup, quotes and non-ASCII in params and tags; metrics that are missing or ints
    # texts: markup, quotes and non-ASCII in names, users, params and tags; metrics missing or ints;
    # every status; times from none to hours
    runs += [
        record(
            0, {"i": 3}, {"p": '<b a="1">&amp;\'</b>'}, {"t": "é ∞ NaN"},  # type: ignore[dict-item]
            name='<script>"x" & \'y\'</script>', user="<ann&bob>", status=RunStatus.LOST,
            start_time=1_700_000_000_000, end_time=1_700_000_090_000,
        ),
        record(1, {}, {"p": ""}, {}, status=RunStatus.RUNNING, start_time=1, end_time=7_200_001),
        record(2, {}, {}, {}, status=RunStatus.FAILED, user="", start_time=5, end_time=600_005),
    ]  # fmt: skip
    cols = ["metrics.m", "metrics.n", "metrics.i", "params.p", "tags.t", "metrics.absent"]
    assert new_rows(runs, cols) == old_rows(runs, cols)
    assert new_rows(runs, []) == old_rows(runs, [])
    cells = [str(row).rsplit("\n", 2)[1] for row in table_rows(runs[:-3], cols)]
    assert all(re.fullmatch(r'(<td class="num">[^<>&"]*</td>)*</tr>', c) for c in cells)
    assert {fmt_num(v, 5) for v in vals[:20]} >= {"NaN", "∞", "-∞", "0", "-0", "0.001", "1.000e+05"}


def test_text_escape_equals_markupsafe() -> None:
    rnd = random.Random(3)
    alphabet = "&<>'\"ab é∞\x00\n;#&amp;"
    texts = ["", "&amp;", "&&<<>>", "'\"'", "plain", "\u2028<script>"]
    texts += ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 40))) for _ in range(3000)]
    for t in texts:
        assert _esc(t) == str(escape(t)), t


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
        body = re.search(r"<tbody>.*?(?=</tbody>)", r.text, re.S)
        assert body is not None and body.group(0) == old_rows(runs, cols)
        chooser = re.findall(r'<input type="checkbox" name="cols" value="([^"]+)"', r.text)
        assert chooser == [
            f"{kind}.{k}"
            for kind in ("metrics", "params", "tags")
            for k in sorted({k for x in runs for k in getattr(x, kind) if not k.startswith("yard.")})
        ]
