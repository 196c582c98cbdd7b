"""The web UI's pages over HTTP (no browser): sessions, CSRF, roles, filter errors, pagination, previews."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def run_ids(html: str) -> list[str]:
    return re.findall(r'name="run" value="([^"]+)"', html)


def test_pages_need_a_login_and_a_bad_token_is_refused(server: dict[str, Any], login_as: Any) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    r = c.get("/ui/experiments/exp", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=/ui/experiments/exp")
    assert c.get("/", follow_redirects=False).headers["location"] == "/ui/"
    bad = login_as(c, "yard_nope_nope")
    assert bad.status_code == 401 and "token" in bad.text.lower()
    assert "yard_session" not in c.cookies
    # a login without the form's CSRF value is refused
    r = c.post("/ui/login", data={"csrf": "x", "token": server["tokens"]["admin"]}, follow_redirects=False)
    assert r.status_code == 403
    ok = login_as(c, server["tokens"]["admin"])
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    page = c.get("/ui/")
    assert page.status_code == 200 and ">exp</a>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    # the API still wants a bearer token: the UI's cookie does not open it
    assert c.post("/api/v1/tracking/list_experiments", json={}).status_code == 401


def test_login_next_never_leaves_the_ui(server: dict[str, Any]) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    form = c.get("/ui/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]
    for evil in ("https://evil.example/", "//evil.example/ui/", "/ui/\\evil"):
        r = c.post(
            "/ui/login",
            data={"csrf": csrf, "token": server["tokens"]["reader"], "next": evil},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/ui/"
        form = c.get("/ui/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)  # type: ignore[union-attr]


def test_logout_needs_the_csrf_token(client: Any) -> None:
    assert client.post("/ui/logout", data={}).status_code == 403
    page = client.get("/ui/")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/ui/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_filter_error_is_shown_at_its_token(client: Any) -> None:
    r = client.get("/ui/experiments/exp", params={"q": "metrics.loss < 0.5 and parms.lr = '0.01'"})
    assert r.status_code == 400
    problem = re.search(r'<div class="problem".*?</div>', r.text, re.S)
    assert problem and "parms" in problem.group(0)
    assert "<mark>parms.lr</mark>" in problem.group(0)
    assert 'aria-invalid="true"' in r.text
    ok = client.get("/ui/experiments/exp", params={"q": "params.opt = 'adam'"})
    assert ok.status_code == 200 and len(run_ids(ok.text)) == 3


def test_sort_and_columns(client: Any) -> None:
    r = client.get("/ui/experiments/exp", params={"sort": "metrics.loss", "dir": "asc"})
    names = re.findall(r'<td class="name"><a [^>]+>([^<]+)</a>', r.text)
    assert names == [f"run-{i}" for i in range(5, -1, -1)]  # later runs reach a lower loss
    assert 'aria-sort="ascending"' in r.text
    r = client.get("/ui/experiments/exp", params=[("cols", ""), ("cols", "params.opt")])
    head = re.search(r"<thead>.*?</thead>", r.text, re.S).group(0)  # type: ignore[union-attr]
    assert "params.opt" in head and "metrics.loss" not in head
    bad = client.get("/ui/experiments/exp", params={"sort": "metrics.loss", "after": "garbage!"})
    assert bad.status_code == 400 and "page_token" in bad.text


def test_pages_walk_every_run_once(client: Any) -> None:
    import modelyard as yard

    for i in range(60):  # 66 runs, three per start-time tie, pages of 25
        with yard.start_run(experiment="exp", name=f"bulk-{i}") as r:
            r.log_metric("score", float(i % 7))
    for sort in ({}, {"sort": "metrics.score", "dir": "desc"}, {"sort": "name", "dir": "asc"}):
        seen: list[str] = []
        url, params = "/ui/experiments/exp", {**sort, "n": "25"}  # type: dict[str, str] | None
        for _ in range(10):
            page = client.get(url, params=params)
            assert page.status_code == 200
            seen += run_ids(page.text)
            nxt = re.search(r'href="\?([^"]+)" rel="next"', page.text)
            if not nxt:
                break
            url, params = "/ui/experiments/exp?" + nxt.group(1).replace("&amp;", "&"), None
        assert len(seen) == 66 and len(set(seen)) == 66, sort


def test_run_page_and_artifact_previews(client: Any) -> None:
    ids = run_ids(client.get("/ui/experiments/exp", params={"q": "name = 'run-0'"}).text)
    run = client.get(f"/ui/runs/{ids[0]}")
    assert run.status_code == 200
    assert run.text.count("<svg") == 2 and "notes.txt" in run.text and "vision" in run.text
    folder = client.get(f"/ui/runs/{ids[0]}/artifact", params={"path": "plots"})
    assert folder.status_code == 200 and "plots/readme.txt" in folder.text
    text = client.get(f"/ui/runs/{ids[0]}/artifact", params={"path": "notes.txt"})
    assert "line two &lt;b&gt;not bold&lt;/b&gt;" in text.text
    js = client.get(f"/ui/runs/{ids[0]}/artifact", params={"path": "config.json"})
    assert "&#34;threshold&#34;: 0.5" in js.text or "&quot;threshold&quot;: 0.5" in js.text
    csv = client.get(f"/ui/runs/{ids[0]}/artifact", params={"path": "data/head.csv"})
    assert '<th scope="col">b</th>' in csv.text and "<td>5</td>" in csv.text
    img = client.get(f"/ui/runs/{ids[0]}/raw", params={"path": "plots/pixel.png"})
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert client.get(f"/ui/runs/{ids[0]}/raw", params={"path": "notes.txt"}).status_code == 400
    missing = client.get(f"/ui/runs/{ids[0]}/artifact", params={"path": "note.txt"})
    assert missing.status_code == 404 and "notes.txt" in missing.text
    assert client.get("/ui/runs/nope").status_code == 404


def test_compare_highlights_differences(client: Any) -> None:
    ids = run_ids(client.get("/ui/experiments/exp").text)[:3]
    r = client.get("/ui/compare", params=[("run", i) for i in ids] + [("log", "1"), ("smooth", "0.5")])
    assert r.status_code == 200
    rows = re.findall(r"<tr( class=\"diff\")?><th scope=\"row\">(\w+)</th>", r.text)
    diff = {name for cls, name in rows if cls}
    assert diff == {"lr", "opt"} and ("", "depth") in rows
    assert r.text.count('<div class="card"><svg') == 2 and "loss (log scale)" in r.text
    loss = r.text[r.text.index('aria-label="loss (log scale)"') :]
    loss = loss[: loss.index("</svg>")]
    # the y axis is ticked at 1, 2 and 5 times powers of ten, labelled in the metric's units (the three
    # newest runs' loss runs from 0.5 down to 0.044)
    yticks = re.findall(r'fill="[^"]+" text-anchor="end">([^<]+)</text>', loss)
    assert yticks == ["0.02", "0.05", "0.1", "0.2", "0.5"]
    linear = client.get("/ui/compare", params=[("run", i) for i in ids]).text
    linear = linear[linear.index('<div class="charts">') :]  # the curves (not the parallel axes)
    assert "(log scale)" not in linear and ">0.1</text>" not in linear
    assert client.get("/ui/compare", params={"run": ids[0]}).status_code == 400


def test_a_reader_browses_runs_and_compares(server: dict[str, Any], login_as: Any) -> None:
    from fastapi.testclient import TestClient

    from modelyard.server._users import AuthService

    auth = AuthService(server["ws"])
    auth.add_user("nobody", "reader")
    c = TestClient(server["app"])
    login_as(c, auth.create_token("nobody", expires=None)["token"])
    ids = run_ids(c.get("/ui/experiments/exp").text)
    assert len(ids) == 6
    assert c.get("/ui/compare", params=[("run", i) for i in ids[:2]]).status_code == 200


def test_log_ticks() -> None:
    import math

    from modelyard.ui._charts import line_chart, log_ticks

    def labels(lo: float, hi: float) -> list[str]:
        ticks, fmt = log_ticks(math.log10(lo), math.log10(hi))
        return [fmt(t) for t in ticks]

    assert labels(0.05, 0.9) == ["0.05", "0.1", "0.2", "0.5", "1"]  # under two decades: 1, 2, 5
    assert labels(0.001, 2.0) == ["0.001", "0.01", "0.1", "1", "10"]
    assert labels(1e-6, 1e6) == ["1e-06", "0.001", "1", "1e+03", "1e+06"]  # every third decade
    svg = line_chart([("s", [(0, 0.0), (1, -1.0), (2, 0.5), (3, 5.0)])], y_log=True, threshold=1.0)
    assert svg.count("<circle") == 2  # zero and negative values cannot sit on a log axis
    assert ": 5</title>" in svg and "threshold 1<" in svg  # tooltips in data units
