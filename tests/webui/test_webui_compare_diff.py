"""The dataset diff and validation pages, and compare's parallel coordinates, over HTTP (no browser)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

import modelyard as yard

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def as_role(server: dict[str, Any], role: str, login_as: Any) -> Any:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    assert login_as(c, server["tokens"][role]).status_code == 303
    return c


def third_version(tmp_path: Path, frames: list[Any]) -> None:
    """``churn@v3``: v2 without ``plan``, with a new ``region``, and ``churned`` as text."""
    from modelyard.data import add

    yes_no = frames[1]["churned"].map({0: "no", 1: "yes"})
    df = frames[1].drop(columns=["plan"]).assign(region="north", churned=yes_no)
    folder = tmp_path / "churn3"
    folder.mkdir()
    df.to_csv(folder / "part-0.csv", index=False)
    add(folder, name="churn")


def test_diff_of_two_versions(
    server: dict[str, Any], lineage: dict[str, Any], login_as: Any, tmp_path: Path
) -> None:
    c = as_role(server, "reader", login_as)
    listing = c.get("/ui/datasets/churn")
    form = listing.text[listing.text.index('aria-label="Compare two versions"') :]
    assert 'action="/ui/datasets/churn/diff"' in listing.text
    assert re.search(r'name="a">.*?<option value="1" selected>', form, re.S)  # the older by default
    page = c.get("/ui/datasets/churn/diff?a=1&b=2")
    assert page.status_code == 200, page.text[:400]
    assert '<td class="num" id="row-delta">+100</td>' in page.text  # 300 → 400 rows
    assert "Same columns and types." in page.text
    table = page.text[
        page.text.index('id="column-changes"') : page.text.index(
            "</table>", page.text.index('id="column-changes"')
        )
    ]
    assert [m for m in re.findall(r'<th scope="row">(\w+)</th>', table)] == [
        "age",
        "plan",
        "spend",
        "churned",
    ]
    assert "→ <b>" in table  # means and the like changed between the versions
    charts = page.text[page.text.index('class="charts"') :]
    assert charts.count("<svg") == 4
    # both versions drawn in each chart: the reference filled, the other outlined on the same grid
    age = charts[: charts.index("</svg>")]
    assert "churn@v1: [" in age and "churn@v2: [" in age and 'fill="none"' in age
    assert "churn@v1: basic" in charts or "churn@v1" in charts[charts.index("plan") :]

    third_version(tmp_path, lineage["frames"])
    changed = c.get("/ui/datasets/churn/diff?a=v2&b=v3")
    schema = changed.text[changed.text.index('id="schema-changes"') : changed.text.index("</ul>")]
    assert "column <b>region</b> added" in schema and "column <b>plan</b> removed" in schema
    assert re.search(
        r"column <b>churned</b>: <code>int64</code> → <code>(string|large_string)</code>", schema
    )
    assert c.get("/ui/datasets/churn/v3").text.count("Diff with v2") == 1

    assert c.get("/ui/datasets/churn/diff?a=1").status_code == 400
    missing = c.get("/ui/datasets/churn/diff?a=1&b=9")
    assert missing.status_code == 404 and "has no version v9" in missing.text
    assert c.get("/ui/datasets/nope/diff?a=1&b=2").status_code == 404


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, html[:500]
    return m.group(1)


def test_validation_on_demand(server: dict[str, Any], lineage: dict[str, Any], login_as: Any) -> None:
    c = as_role(server, "reader", login_as)
    assert 'href="/ui/datasets/churn/v2/validate"' in c.get("/ui/datasets/churn/v2").text
    empty = c.get("/ui/datasets/churn/v2/validate")
    assert empty.status_code == 200 and 'id="report"' not in empty.text
    assert '<option value="1" selected>churn@v1</option>' in empty.text  # the previous version
    assert "are not stored" in empty.text
    inferred = c.get("/ui/datasets/churn/v2/validate?against=1")
    assert inferred.status_code == 200
    report = inferred.text[inferred.text.index('id="report"') :]
    assert "inferred from churn@v1" in report and "distributions compared with churn@v1" in report
    assert len(re.findall(r'<tr class="(ok|bad)">', report)) >= 8  # per-column checks and the table's

    suite = "suite: churn-rules\ncolumns:\n  age: {min: 0, max: 45}\n  plan: {values: [basic, pro]}\n"
    form = {"csrf": csrf_of(empty.text), "suite": suite}
    ran = c.post("/ui/datasets/churn/v2/validate", data=form)
    assert ran.status_code == 200, ran.text[:500]
    report = ran.text[ran.text.index('id="report"') :]
    assert "churn-rules" in report and '<span class="badge failed">failed</span>' in report
    bad = re.findall(r'<tr class="bad"><td>([\w.]+)</td>', report)
    assert "age.max" in bad and "plan.values" in bad
    assert "age.min" in re.findall(r'<tr class="ok"><td>([\w.]+)</td>', report)
    assert "&lt;" not in suite and suite.splitlines()[0] in ran.text  # the suite is kept in the form

    broken = c.post("/ui/datasets/churn/v2/validate", data={**form, "suite": "columns: [age: {min: 0}"})
    assert broken.status_code == 400 and "not valid YAML" in broken.text
    unknown = c.post("/ui/datasets/churn/v2/validate", data={**form, "suite": "colums: {}\n"})
    assert unknown.status_code == 400 and "did you mean" in unknown.text.lower()
    nowhere = c.post("/ui/datasets/churn/v2/validate", data={**form, "suite": "reference: nope@v1\n"})
    assert nowhere.status_code == 404 and "nope" in nowhere.text
    stale = c.post("/ui/datasets/churn/v2/validate", data={"suite": suite})
    assert stale.status_code == 403  # no CSRF token
    assert c.get("/ui/datasets/raw-files/v1/validate?against=1").status_code == 400
    assert c.get("/ui/datasets/churn/v2/validate?against=zz").status_code == 404  # names no version


def test_compare_draws_parallel_coordinates(server: dict[str, Any], client: Any) -> None:
    table = client.get("/ui/experiments/exp?n=25")
    ids = re.findall(r'name="run" value="([0-9a-f]+)"', table.text)[:4]
    page = client.get("/ui/compare?" + "&".join(f"run={i}" for i in ids) + "&pm=loss")
    assert page.status_code == 200
    svg = page.text[page.text.index('<svg xmlns="http://www.w3.org/2000/svg" width') :]
    svg = page.text[page.text.index('class="parallel"') - 300 :]
    svg = svg[svg.index("<svg") : svg.index("</svg>")]
    assert 'role="group"' in svg and "against loss" in svg
    links = re.findall(r'<a href="/ui/runs/([0-9a-f]+)" aria-label="([^"]+)">', svg)
    assert sorted(i for i, _ in links) == sorted(ids)
    assert all("lr " in label and "opt " in label and "loss " in label for _, label in links)
    assert "depth" not in svg  # the same in every run: no axis
    colors = set(re.findall(r'<polyline points="[^"]+" fill="none" stroke="(#[0-9a-f]{6})"', svg))
    assert len(colors) == 4  # each run's own loss, its own colour
    assert '<option value="loss" selected>loss</option>' in page.text
    other = client.get("/ui/compare?" + "&".join(f"run={i}" for i in ids) + "&pm=accuracy&log=1")
    assert (
        "against accuracy" in other.text and '<input type="hidden" name="pm" value="accuracy">' in other.text
    )
    fallback = client.get("/ui/compare?" + "&".join(f"run={i}" for i in ids) + "&pm=%3Cnope%3E")
    assert fallback.status_code == 200 and "against accuracy" in fallback.text  # unknown: the first


def test_compare_of_twenty_long_runs_stays_light(server: dict[str, Any], client: Any) -> None:
    ids = []
    for i in range(20):
        with yard.start_run(experiment="big", name=f"long-{i}") as r:
            r.log_params(
                {"lr": str(0.001 * (i + 1)), "batch": str(32 * (1 + i % 4)), "opt": "adam sgd".split()[i % 2]}
            )
            for s in range(1000):
                r.log_metrics({f"m{k}": (k + 1) / (s + 1 + i) for k in range(10)}, step=s)
            ids.append(r.id)
    page = client.get("/ui/compare?" + "&".join(f"run={i}" for i in ids))
    assert page.status_code == 200
    assert page.text.count("<polyline") == 20  # a line per run in the parallel coordinates
    assert page.text.count('<div class="card"><svg') == 10  # a chart per metric, each with 20 curves
    assert page.text.count("<title>long-7</title></path>") == 10
    print("compare page of 20 runs x 10 metrics x 1000 steps:", len(page.content), "bytes")
    assert len(page.content) < 500_000, len(page.content)


def test_parallel_coordinates_axes_missing_values_and_escaping() -> None:
    from modelyard.ui import parallel_coordinates
    from modelyard.ui._parallel import SCALE, metric_color

    svg = parallel_coordinates(
        [("lr", ["0.1", "0.01", None]), ("<opt>", ["adam", "sgd", "adam"])],
        ("loss", [0.5, 0.1, None]),
        ["a", "b", "<c>"],
    )
    assert 'role="img"' in svg and "<a " not in svg  # no links: an image
    assert "&lt;opt&gt;" in svg and "<opt>" not in svg and "&lt;c&gt;" in svg
    assert ">adam</text>" in svg and ">sgd</text>" in svg  # categorical: each value labelled
    assert ">0.1</text>" in svg and ">0.05</text>" in svg  # numeric: round ticks
    assert svg.count(">none</text>") == 2  # lr and loss miss a value; <opt> does not
    lines = re.findall(
        r'<polyline points="[^"]+" fill="none" stroke="(#[0-9a-f]{6})"[^>]*><title>([^<]+)', svg
    )
    colours = {title.split(":")[0]: colour for colour, title in lines}
    assert colours == {"b": metric_color(0.0), "a": metric_color(1.0), "&lt;c&gt;": "#6e7781"}
    for share, rgb in ((0.0, SCALE[0]), (1.0, SCALE[-1])):
        assert metric_color(share) == "#" + "".join(f"{c:02x}" for c in rgb)
    linked = parallel_coordinates([("x", [1, 2])], ("m", [1.0, 2.0]), ["p", "q"], hrefs=["/r/1", "/r/2?a&b"])
    assert 'role="group"' in linked and '<a href="/r/2?a&amp;b" aria-label="q: x 2, m 2">' in linked


def test_scale_colours_keep_contrast_on_white() -> None:
    from modelyard.ui._parallel import metric_color

    def lum(hex_colour: str) -> float:
        def channel(c: int) -> float:
            x = c / 255
            return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)

    for i in range(21):
        assert 1.05 / (lum(metric_color(i / 20)) + 0.05) >= 3.0, i / 20  # graphics: WCAG 1.4.11


def test_shared_histograms_align_both_grids_exactly() -> None:
    import numpy as np

    from modelyard.data import profile
    from modelyard.webui._datadiff import DRAWN_BINS, shared_histograms

    rng = np.random.default_rng(3)
    import pandas as pd

    a = profile(pd.DataFrame({"x": rng.normal(0, 1, 500)}))["x"]
    b = profile(pd.DataFrame({"x": rng.normal(40, 9, 700)}))["x"]
    edges, ca, cb = shared_histograms(a, b)
    assert len(edges) == len(ca) + 1 == len(cb) + 1 <= DRAWN_BINS + 1
    assert sum(ca) == sum(a.hist_counts) and sum(cb) == sum(b.hist_counts)  # nothing lost or split
    assert edges[0] <= min(a.min, b.min) and edges[-1] >= max(a.max, b.max)
    width = edges[1] - edges[0]
    assert all(abs((e - edges[0]) / width - i) < 1e-9 for i, e in enumerate(edges))
    assert shared_histograms(a, profile(pd.DataFrame({"s": ["u", "v"]}))["s"]) == ([], [], [])


def test_metric_series_reads_what_metric_history_reads(server: dict[str, Any]) -> None:
    import math

    from modelyard.tracking._history import metric_series
    from modelyard.tracking._service import TrackingService

    with yard.start_run(experiment="exp", name="with-nan") as r:
        for s, v in enumerate([1.0, float("nan"), 0.5]):
            r.log_metric("loss", v, step=s)
    svc = TrackingService(server["ws"])
    ids = [x.id for x in svc.search_runs(experiment="exp")]
    got = metric_series(server["ws"].store, ids, ["loss", "accuracy", "nope"])
    assert {k for _, k in got} == {"loss", "accuracy"} and len(got) == 2 * len(ids) - 1
    for (run_id, key), points in got.items():
        want = [(p.step, p.value, p.timestamp) for p in svc.metric_history(run_id, key)]
        assert [(s, "nan" if math.isnan(v) else v, t) for s, v, t in points] == [
            (s, "nan" if math.isnan(v) else v, t) for s, v, t in want
        ]
    assert metric_series(server["ws"].store, [], ["loss"]) == {}
