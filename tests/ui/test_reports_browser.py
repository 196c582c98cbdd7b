"""Every HTML report this product writes, opened in a real browser (Chromium through Playwright).

Reports: the model card (with its evaluation section: the evaluation feature has no page of its
own), the data validation report, the monitoring drift report and the pipeline DAG (SVG file).
Each test renders the report, opens the file, takes a full-page screenshot (kept in
``$YARD_SCREENSHOTS`` when set, else a temp folder) and checks what a reader would see: no console
or page errors, no network requests, every chart's SVG drawn with a non-zero size, no chart text
cut off at the chart's edge or overlapping other text, and the key text visible.

Needs Debian's ``chromium`` (``/usr/bin/chromium``) and the ``playwright`` Python package (never
``playwright install``: the system Chromium is used). Skipped when either is missing, except
under CI (``CI`` set), where that is a failure.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

import modelyard as yard
from testkit.evaluation import churn_data

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser tests must run there)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install playwright (no `playwright install` needed)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = (
        Path(os.environ["YARD_SCREENSHOTS"])
        if os.environ.get("YARD_SCREENSHOTS")
        else tmp_path_factory.mktemp("screenshots")
    )
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# Every text element of every chart: its box and its chart's box (CSS pixels), to find cut and overlapping
# labels.
_TEXT_BOXES = """() => [...document.querySelectorAll('svg')].map((svg, i) => {
  const s = svg.getBoundingClientRect();
  const texts = [...svg.querySelectorAll('text')].filter(t => t.textContent.trim()).map(t => {
    const r = t.getBoundingClientRect();
    return {text: t.textContent, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom};
  });
  return {i, label: svg.getAttribute('aria-label') || (svg.querySelector('title') || {}).textContent || '',
          x0: s.left, y0: s.top, x1: s.right, y1: s.bottom, w: s.width, h: s.height, texts};
})"""


def open_report(
    browser: Any, path: Path, shots: Path, name: str, *, width: int = 1280
) -> tuple[Any, list[dict[str, Any]]]:
    """Open ``path``, screenshot it, check errors, requests and chart sizes; return the page and its
    charts."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(120_000)  # a loaded CI machine: generous bound, never a timing assertion
    errors: list[str] = []
    requests: list[str] = []
    page.on(
        "console",
        lambda m: errors.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on(
        "request",
        lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "about:")) else None,
    )
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    # a bare SVG document has no scrollable page: Chromium waits forever for a full-page shot
    page.screenshot(path=str(shots / f"{name}.png"), full_page=path.suffix != ".svg")
    assert errors == [], errors
    assert requests == [], f"the report fetched {requests}: it must be self-contained"
    charts = page.evaluate(_TEXT_BOXES)
    assert charts, f"{name}: no SVG chart on the page"
    for c in charts:
        assert c["w"] > 20 and c["h"] > 20, f"{name}: chart {c['label']!r} is drawn {c['w']}x{c['h']}"
        for t in c["texts"]:  # 1 px of antialiasing slack
            inside = (
                t["x0"] >= c["x0"] - 1
                and t["x1"] <= c["x1"] + 1
                and t["y0"] >= c["y0"] - 1
                and t["y1"] <= c["y1"] + 1
            )
            assert inside, (
                f"{name}: text {t['text']!r} is cut off at the edge of chart {c['label']!r} ({t} vs {c})"
            )
        boxes = c["texts"]
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                p, q = boxes[a], boxes[b]
                dx = min(p["x1"], q["x1"]) - max(p["x0"], q["x0"])
                dy = min(p["y1"], q["y1"]) - max(p["y0"], q["y0"])
                assert dx <= 1 or dy <= 1, (
                    f"{name}: in chart {c['label']!r} {p['text']!r} overlaps {q['text']!r}"
                )
    return page, charts


def visible(page: Any, text: str) -> bool:
    return page.get_by_text(text, exact=False).first.is_visible()


def test_model_card(browser: Any, shots: Path, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    from modelyard.evaluation import evaluate, parse_policy, run_gates
    from modelyard.registry import model_card, register_model, set_alias, update_model

    df = churn_data().drop(columns="customer_id")
    features = ["tenure", "monthly", "calls"]
    with yard.start_run(experiment="churn") as run:
        run.log_params({"C": 1.0, "max_iter": 500})
        for step in range(20):
            run.log_metric("train_loss", 0.7 * 0.9**step + 0.2, step=step)
            run.log_metric("val_auc_weighted_by_segment", 0.6 + 0.01 * step, step=step)
        model = LogisticRegression(max_iter=500).fit(df[features], df["churned"])
        run.log_metrics(
            {
                "roc_auc": 0.81,
                "accuracy": 0.74,
                "log_loss": 0.52,
                "a_rather_long_metric_name_for_the_card": 123456.789,
            }
        )
        run.log_model(model, name="churn-clf", input_example=df[features][:5])
    update_model("churn-clf", description="Predicts which customers churn next month.")
    weak = LogisticRegression(max_iter=500).fit(df[["monthly"]], df["churned"])
    register_model(weak, "churn-clf", input_example=df[["monthly"]][:5])
    evaluate("churn-clf/1", df, label="churned", slices="plan")
    set_alias("churn-clf", "production", 1)
    run_gates(
        "churn-clf/2",
        parse_policy("champion: {roc_auc: {max_drop: 0.5}}\ndata: {label: churned}\n", source="g.yaml"),
        data=df,
    )

    out = tmp_path / "card.html"
    out.write_text(model_card("churn-clf", 1).to_html(), encoding="utf-8")
    page, charts = open_report(browser, out, shots, "model_card")
    labels = [c["label"] for c in charts]
    assert (
        "metrics of this version (0-1 scale)" in labels
    )  # the 123456.789 metric goes to a table, not this scale
    assert visible(page, "a_rather_long_metric_name_for_the_card") and visible(page, "1.235e+05")
    assert any(lab.startswith("train_loss over steps") for lab in labels)
    assert any(lab.startswith("roc_auc by plan on frame") for lab in labels), labels
    slice_chart = next(c for c in charts if c["label"].startswith("roc_auc by plan"))
    assert {t["text"] for t in slice_chart["texts"]} >= {"plan=basic", "plan=pro", "plan=team"}
    for text in (
        "churn-clf",
        "Predicts which customers churn next month.",
        "Evaluations",
        "Comparisons and partial evaluations",
        "Audit history",
    ):
        assert visible(page, text), text
    # every table cell of the evaluations has a value: no row of blank cells
    blank = page.evaluate(
        "() => [...document.querySelectorAll('td')].filter(td => !td.textContent.trim()).length"
    )
    assert blank == 0
    page.close()


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n),
            "plan": rng.choice(
                ["basic", "pro", "team", "enterprise-annual-prepaid"], n, p=[0.45, 0.3, 0.15, 0.1]
            ),
            "active": rng.random(n) < 0.8,
            "signup": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
        }
    )


def test_data_validation_report(browser: Any, shots: Path, tmp_path: Path) -> None:
    yard.data.add(_frame(3000, 0), name="churn-train")
    bad = _frame(2000, 1)
    bad["charges"] = bad["charges"] * 1000 + 40  # shifted, far out of range: large tick numbers
    bad.loc[[3, 9], "tenure"] = [-5, 400]
    bad.loc[bad.index[:200], "plan"] = "platinum"
    bad["active"] = bad["active"].astype(object)
    bad.loc[[4, 7, 8], "active"] = None
    report = yard.validate(bad, against="churn-train@v1")
    out = tmp_path / "validation.html"
    out.write_text(report.to_html(), encoding="utf-8")
    page, charts = open_report(browser, out, shots, "validation_report")
    assert len(charts) == 6  # one distribution per column
    signup = next(
        c for c in charts if any(re.match(r"20\d\d-\d\d-\d\d", t["text"]) for t in c["texts"])
    )  # dates, not epoch seconds
    assert all("e+09" not in t["text"] for t in signup["texts"])
    assert visible(page, "days")
    assert visible(page, "failed") and visible(page, "platinum") and visible(page, "Distributions")
    assert visible(page, "row 3: -5")
    n_pass = len(report.results) - len(report.failures)
    summary = page.get_by_text(f"{n_pass} passed check(s)")
    assert summary.is_visible() and not page.locator("details table").is_visible()  # passes folded away
    summary.click()
    assert page.locator("details table").is_visible() and page.locator("details tr.ok").count() == n_pass
    page.screenshot(path=str(shots / "validation_report_all_checks.png"), full_page=True)
    page.close()


def test_monitoring_drift_report(browser: Any, shots: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    ref = pd.DataFrame(
        {
            "income": rng.lognormal(10, 1, 2000),
            "age": rng.integers(18, 90, 2000),
            "segment": rng.choice(["consumer", "small-business", "enterprise"], 2000),
            "pred": rng.random(2000),
        }
    )
    cur = pd.DataFrame(
        {
            "income": rng.lognormal(10.6, 1, 1500),
            "age": rng.integers(18, 90, 1500),
            "segment": rng.choice(["consumer", "small-business", "enterprise", "public-sector"], 1500),
            "pred": rng.random(1500) ** 2,
        }
    )
    r = yard.drift(ref, cur, prediction="pred")
    r.history = [
        {"time_ms": 1_700_000_000_000 + i * 3_600_000, "share_drifted": s}
        for i, s in enumerate([0, 0.25, 0.5, 0.5, 0.75])
    ]
    out = tmp_path / "drift.html"
    r.to_html(str(out))
    page, charts = open_report(browser, out, shots, "drift_report")
    assert len(charts) == 1 + 4  # drift over time, one chart per column
    assert charts[0]["label"] == "share of drifted columns per window"
    assert (
        visible(page, "Drift over time") and visible(page, "dataset drift") and visible(page, "public-sector")
    )
    page.close()


def test_pipeline_dag(browser: Any, shots: Path, tmp_path: Path) -> None:
    from modelyard.pipelines._graph import Graph, Node
    from modelyard.pipelines._render import dag_svg

    edges = {
        "prepare": [],
        "train": ["prepare"],
        "evaluate": ["prepare", "train"],
        "a_long_step_name_for_reports": ["prepare"],
        "publish": ["evaluate", "a_long_step_name_for_reports", "prepare"],
    }
    nodes = {n: Node(n, lambda: None, SimpleNamespace(name=n), {}, ups) for n, ups in edges.items()}
    out = tmp_path / "dag.svg"
    out.write_text(
        dag_svg(
            Graph("churn", "churn", {}, nodes), {"prepare": "cached", "train": "done", "evaluate": "failed"}
        )
    )
    page, charts = open_report(browser, out, shots, "pipeline_dag")
    assert len(charts) == 1
    boxes = page.evaluate("""() => [...document.querySelectorAll('g.node')].map(g => {
        const r = g.querySelector('rect').getBoundingClientRect();
        const t = g.querySelector('text').getBoundingClientRect();
        return {node: g.dataset.node, fits: t.left >= r.left && t.right <= r.right && t.width > 0};
    })""")
    assert [b["node"] for b in boxes] == list(edges) and all(b["fits"] for b in boxes), boxes
    assert page.locator("path.edge").count() == 7
    page.close()


def test_a_missing_browser_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        _missing("chromium is missing")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(
        pytest.fail.Exception, match=r"chromium is missing \(CI is set: the browser tests must run there\)"
    ):
        _missing("chromium is missing")
