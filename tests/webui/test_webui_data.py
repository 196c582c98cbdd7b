"""Datasets, a model version's lineage, pipelines and monitoring pages over HTTP (no browser), by role;
unknown names in the URL answer 404 pages."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def as_role(server: dict[str, Any], role: str, login_as: Any) -> Any:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    assert login_as(c, server["tokens"][role]).status_code == 303
    return c


def test_datasets_versions_and_a_version_page(
    server: dict[str, Any], lineage: dict[str, Any], login_as: Any
) -> None:
    c = as_role(server, "reader", login_as)
    listing = c.get("/ui/datasets")
    assert listing.status_code == 200
    assert '<a href="/ui/datasets/churn">churn</a>' in listing.text and "raw-files" in listing.text
    assert '<a href="/ui/datasets/churn/v2">v2</a>' in listing.text and "400" in listing.text
    versions = c.get("/ui/datasets/churn")
    assert versions.status_code == 200
    rows = re.findall(r'<a href="/ui/datasets/churn/v(\d)">', versions.text)
    assert rows == ["2", "1"]  # newest first
    page = c.get("/ui/datasets/churn/v2")
    assert page.status_code == 200 and 'churn <span class="v">v2</span>' in page.text
    profile = page.text[page.text.index('id="profile"') :]
    for col in ("age", "plan", "spend", "churned"):
        assert f'<th scope="row">{col}</th>' in profile
    assert page.text.count("<svg") >= 4  # a histogram or top-values chart per column
    assert "part-0.csv" in page.text
    used = page.text[page.text.index('id="used-by"') :]
    assert f'href="/ui/runs/{lineage["run_id"]}">train</a>' in used
    assert c.get("/ui/datasets/churn/2").status_code == 200  # "2" as well as "v2"
    assert 'id="used-by"' not in c.get("/ui/datasets/churn/v1").text  # no run read v1
    raw = c.get("/ui/datasets/raw-files/v1")
    assert raw.status_code == 200 and "Not tabular" in raw.text
    assert "notes &lt;b&gt;.txt" in raw.text and "<b>.txt" not in raw.text  # a file name is text


UNKNOWN = [
    ("/ui/datasets/nope", "Dataset &#39;nope&#39; does not exist"),
    ("/ui/datasets/churm/v1", "Did you mean"),
    ("/ui/datasets/churn/v9", "has no version v9"),
    ("/ui/datasets/churn/latest", "is not a dataset version"),
    ("/ui/datasets/churn/v99999999999999999999999", "is not a dataset version"),
    ("/ui/models/churn-clf/versions/7", "version 7"),
    ("/ui/datasets/churn/v\u0663", "is not a dataset version"),
    ("/ui/models/nope/versions/1", "nope"),
    ("/ui/models/churn-clf/versions/x1", "is not a model version"),
    ("/ui/pipelines/0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"),
    ("/ui/monitoring/nope", "has no monitoring windows"),
]


def test_unknown_names_are_404_pages(server: dict[str, Any], lineage: dict[str, Any], login_as: Any) -> None:
    c = as_role(server, "reader", login_as)
    for path, needle in UNKNOWN:
        r = c.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text[:300])
        assert "text/html" in r.headers["content-type"] and needle in r.text, path
        assert '<nav aria-label="Sections">' in r.text  # the error page keeps the site's navigation


def test_model_version_lineage(server: dict[str, Any], lineage: dict[str, Any], login_as: Any) -> None:
    c = as_role(server, "reader", login_as)
    model = c.get("/ui/models/churn-clf")
    assert '<a href="/ui/models/churn-clf/versions/1">v1</a>' in model.text
    page = c.get("/ui/models/churn-clf/versions/1")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    # data → run → model, as linked boxes joined by three arrows (no deployment yet: "none")
    assert '<a class="box" href="/ui/datasets/churn/v2">' in svg
    assert f'<a class="box" href="/ui/runs/{lineage["run_id"]}">' in svg
    assert ">churn-clf v1<" in svg and ">none<" in svg
    assert svg.count("marker-end=") == 2
    table = page.text[page.text.index('id="lineage-table"') :]
    assert '<a href="/ui/datasets/churn/v2">churn@v2</a>' in table
    run = c.get(f"/ui/runs/{lineage['run_id']}")  # the run page links both ways too
    assert '<a href="/ui/datasets/churn/v2">churn@v2</a>' in run.text
    assert '<a href="/ui/models/churn-clf/versions/1">churn-clf v1</a>' in run.text


def test_model_version_lineage_shows_aliases_and_rollouts(
    server: dict[str, Any], rollout: int, login_as: Any
) -> None:
    c = as_role(server, "reader", login_as)
    page = c.get("/ui/models/m/versions/2")
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    assert f'<a class="box" href="/ui/releases/{rollout}">' in svg and "progressing" in svg
    one = c.get("/ui/models/m/versions/1").text
    assert ">alias production<" in one and f"/ui/releases/{rollout}" in one  # v1 is the stable one
    assert ">none<" in one  # registered outside a run: no run and no data


def test_pipeline_dag_and_steps(server: dict[str, Any], pipeline_run: str, login_as: Any) -> None:
    c = as_role(server, "reader", login_as)
    listing = c.get("/ui/pipelines")
    assert listing.status_code == 200 and f'href="/ui/pipelines/{pipeline_run}"' in listing.text
    page = c.get(f"/ui/pipelines/{pipeline_run}")
    assert page.status_code == 200
    svg = page.text[page.text.index("<svg") : page.text.index("</svg>")]
    assert 'role="img"' in svg
    edges = set(re.findall(r'data-from="([^"]+)" data-to="([^"]+)"', svg))
    assert edges == {("load", "clean"), ("clean", "stats"), ("clean", "train"), ("stats", "train")}
    assert "3 from the cache" in page.text
    steps = page.text[page.text.index('id="steps-table"') :]
    row = (
        r'<td class="step"><a href="/ui/runs/\w+">(\w+)</a>.*?<span class="badge \w+">(\w+)</span>'
        r"</td>\s*<td>(\w+|–)</td>"
    )
    rows = re.findall(row, steps, re.S)
    assert rows == [
        ("load", "cached", "hit"),
        ("clean", "cached", "hit"),
        ("stats", "cached", "hit"),
        ("train", "done", "miss"),
    ]
    assert "param lr changed: 0.1 → 0.2" in steps
    run = c.get(f"/ui/runs/{pipeline_run}")
    assert f'<a href="/ui/pipelines/{pipeline_run}">' in run.text
    plain = c.get("/ui/experiments/exp").text
    run_id = re.search(r'href="/ui/runs/(\w+)"', plain)
    assert run_id
    r = c.get(f"/ui/pipelines/{run_id.group(1)}")
    assert r.status_code == 404 and "is not a pipeline run" in r.text


def test_monitoring_pages(server: dict[str, Any], monitored: str, login_as: Any) -> None:
    c = as_role(server, "reader", login_as)
    listing = c.get("/ui/monitoring")
    assert listing.status_code == 200 and '<a href="/ui/monitoring/churn-clf">churn-clf</a>' in listing.text
    page = c.get("/ui/monitoring/churn-clf")
    assert page.status_code == 200
    assert 'id="firing"' in page.text and "drift-high" in page.text
    start = page.text.index('id="drift-table"')
    table = page.text[start : page.text.index("</table>", start)]
    first = re.search(r'<tr class="(\w+)"><th scope="row">(\w+)', table)
    assert first and first.groups() == ("bad", "age")  # the drifted feature first
    assert re.search(r'<th scope="row">plan.*?<td class="good">no', table, re.S)
    charts = page.text.count("<svg")
    assert charts >= 4  # share over time, score per feature over time, two distributions
    assert 'aria-label="drift score (effect size) per feature"' in page.text
    firings = page.text[page.text.index('id="firings"') :]
    assert "drift-high" in firings and "critical" in firings and "still firing" in firings


def test_monitoring_page_of_a_damaged_report(server: dict[str, Any], login_as: Any) -> None:
    from modelyard.monitoring._store import MonitoringService, MonitorRun, WindowValue

    ws = server["ws"]
    digest = ws.blobs.put_bytes(b"<script>alert(1)</script> not json")
    MonitoringService(ws).record_run(
        MonitorRun("m2", None, 0, 60_000, 3, None, 0.0, False, digest), [WindowValue("rows", "", 3.0)]
    )
    c = as_role(server, "reader", login_as)
    r = c.get("/ui/monitoring/m2")
    assert r.status_code == 200 and "not valid JSON" in r.text and "<script>alert" not in r.text


def test_pages_need_a_login(server: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    for path in ("/ui/datasets", "/ui/monitoring", "/ui/pipelines", "/ui/datasets/x/v1"):
        r = c.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")


def test_every_role_reads_the_new_pages(
    server: dict[str, Any], lineage: dict[str, Any], monitored: str, login_as: Any
) -> None:
    for role in ("reader", "writer", "maintainer", "admin"):
        c = as_role(server, role, login_as)
        for path in (
            "/ui/datasets",
            "/ui/datasets/churn",
            "/ui/datasets/churn/v2",
            "/ui/models/churn-clf/versions/1",
            "/ui/monitoring",
            "/ui/monitoring/churn-clf",
            "/ui/pipelines",
        ):
            r = c.get(path)
            assert r.status_code == 200, (role, path, r.text[:300])
