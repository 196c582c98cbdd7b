"""Compare's parallel coordinates, a dataset diff and a validation run, and the model page's lineage
column in Chromium: each page checked by axe-core, for contrast and for phone-width overflow
(``look``), and screenshotted into ``$YARD_SCREENSHOTS``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.webui.test_webui_browser import Watch, _login, browser, look, shots, url

__all__ = ["browser", "shots", "url"]  # the fixtures, shared with the other browser tests

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_compare_parallel_coordinates_by_keyboard(
    browser: Any, server: dict[str, Any], url: str, shots: Path
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    _login(page, url, server["tokens"]["reader"], "/ui/experiments/exp")
    boxes = page.locator('input[name="run"]')
    for i in range(5):
        boxes.nth(i).check()
    with page.expect_navigation():
        page.locator("#compare").click()
    lines = page.locator("svg.parallel a")
    assert lines.count() == 5
    page.select_option("#pm", "accuracy")
    with page.expect_navigation():
        page.get_by_role("button", name="Show").click()
    assert "against accuracy" in (page.get_attribute("svg.parallel", "aria-label") or "")
    look(page, shots, "compare-parallel")
    # Tab from the metric's button reaches the runs' lines; Enter opens the focused run
    page.get_by_role("button", name="Show").focus()
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.closest('svg.parallel') !== null")
    assert focused
    label = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert label.startswith("run-") and "accuracy" in label
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(shots / "webui-compare-parallel-focus.png"), clip=_box(page, "svg.parallel"))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "/ui/runs/" in page.url and label.startswith(page.locator("h1").inner_text().split()[0])
    assert watch.problems == []
    ctx.close()


def _box(page: Any, selector: str) -> dict[str, float]:
    b = page.locator(selector).bounding_box()
    return {"x": b["x"], "y": b["y"], "width": b["width"], "height": b["height"]}


def test_dataset_diff_validation_and_model_lineage(
    browser: Any, server: dict[str, Any], url: str, shots: Path, lineage: dict[str, Any]
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    _login(page, url, server["tokens"]["reader"], "/ui/datasets/churn")
    look(page, shots, "dataset-pick-diff")
    with page.expect_navigation():
        page.get_by_role("button", name="Diff").click()
    assert page.url.endswith("/ui/datasets/churn/diff?a=1&b=2")
    assert page.locator("#row-delta").inner_text() == "+100"
    assert page.locator(".charts svg").count() == 4
    look(page, shots, "dataset-diff")
    page.goto(f"{url}/ui/datasets/churn/v2")
    with page.expect_navigation():
        page.get_by_role("link", name="Validate this version").click()
    with page.expect_navigation():
        page.get_by_role("button", name="Run", exact=True).click()
    assert page.locator("#checks tbody tr").count() >= 8
    look(page, shots, "dataset-validation-inferred")
    page.locator("summary").click()
    page.fill("#suite", "suite: churn-rules\ncolumns:\n  age: {min: 0, max: 45}\n")
    with page.expect_navigation():
        page.get_by_role("button", name="Run suite").click()
    assert page.locator("#checks tr.bad").count() == 1
    look(page, shots, "dataset-validation-suite")
    page.goto(f"{url}/ui/models/churn-clf")
    assert page.get_by_role("link", name="churn@v2").count() == 1
    look(page, shots, "model-lineage")
    assert watch.problems == []
    ctx.close()
