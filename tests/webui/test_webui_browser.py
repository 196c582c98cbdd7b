"""The web UI in a real browser (Debian's Chromium through Playwright, never a downloaded browser).

Logs in with a token, filters runs with a typo (the error is shown at its token) then a valid filter,
opens a run, opens an artifact, and compares three runs chosen with the checkboxes (keyboard only for
the search). Each page is screenshotted at 1280 px and at phone width (390 px) into
``$YARD_SCREENSHOTS`` (else a temp folder), and checked for what a reader would see: no console or page
errors, no request to another host, no text wider than the page at phone width except inside a
scrolling table, and a WCAG AA contrast ratio for every piece of visible text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


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


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    kept = os.environ.get("YARD_SCREENSHOTS")
    folder = Path(kept) if kept else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def url(server: dict[str, Any]) -> Iterator[str]:
    from modelyard.server._local import serve_in_thread

    with serve_in_thread(server["app"]) as base:
        yield base


# Visible text whose contrast against its (first opaque ancestor's) background is below WCAG AA.
_CONTRAST = """() => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => {
    const v = c.slice(0, 3).map(x => {
      x /= 255; return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4; });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const bg = el => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c; }
    return [255, 255, 255]; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement, text = n.textContent.trim();
    if (!text || !el || el.closest('svg, .skip, option')) continue;
    const r = el.getBoundingClientRect(), st = getComputedStyle(el);
    if (!r.width || st.visibility === 'hidden' || st.display === 'none') continue;
    const a = lum(rgb(st.color)), b = lum(bg(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(st.fontSize);
    const large = size >= 24 || (size >= 18.66 && +st.fontWeight >= 700);
    const opacity = parseFloat(st.opacity);
    if (ratio < (large ? 3 : 4.5) && opacity > 0.9) bad.push(text.slice(0, 40) + ' ' + ratio.toFixed(2));
  }
  return bad;
}"""

# Elements wider than the viewport that are not inside a horizontally scrolling box.
_OVERFLOW = """() => { const w = document.documentElement.clientWidth; const out = [];
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('.scroll, pre, svg')) continue;
    const r = el.getBoundingClientRect();
    if (r.right > w + 1 && r.width > 0) out.push(el.tagName + '.' + el.className + ' ' + Math.round(r.right));
  }
  return out.slice(0, 10); }"""


class Watch:
    def __init__(self, page: Any, base: str) -> None:
        self.problems: list[str] = []
        # a page answered 4xx on purpose (wrong token, filter typo) logs "Failed to load resource": those
        # are checked by status below; any other console error, or a sub-resource failing, is a problem
        page.on(
            "console",
            lambda m: (
                m.type == "error"
                and not m.text.startswith("Failed to load resource")
                and self.problems.append(f"console: {m.text}")
            ),
        )
        page.on(
            "response",
            lambda r: (
                r.status >= 400
                and r.request.resource_type != "document"
                and self.problems.append(f"{r.status} {r.url}")
            ),
        )
        page.on("pageerror", lambda e: self.problems.append(f"pageerror: {e}"))
        page.on(
            "request",
            lambda r: r.url.startswith(base) or r.url.startswith("data:") or self.problems.append(r.url),
        )


_AXE: list[str] = []


def axe_violations(page: Any) -> list[str]:
    """axe-core's WCAG 2 A/AA violations of the page (its script, from the axe-playwright-python wheel,
    evaluated through the DevTools protocol: the page's CSP stays as served). Empty when the package is
    missing outside CI (the other checks still run)."""
    if not _AXE:
        try:
            from importlib import resources

            _AXE.append(resources.files("axe_playwright_python").joinpath("axe.min.js").read_text())
        except ModuleNotFoundError:
            if os.environ.get("CI"):
                raise
            return []
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_AXE[0])
    result = page.evaluate(
        """async () => (await axe.run(document, {runOnly: {type: 'tag',
            values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})).violations.map(v =>
            v.id + ': ' + v.help + ' @ ' + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))"""
    )
    return list(result)


def look(page: Any, shots: Path, name: str) -> None:
    """Screenshot ``page`` at desktop and phone width, checking contrast and overflow at both, and
    axe-core's WCAG A/AA rules once."""
    assert axe_violations(page) == [], f"{name}: axe-core violations"
    for width, tag in ((1280, "desktop"), (390, "phone")):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(shots / f"webui-{name}-{tag}.png"), full_page=True)
        assert page.evaluate(_CONTRAST) == [], f"{name} at {width}px: text below WCAG AA contrast"
        if tag == "phone":
            assert page.evaluate(_OVERFLOW) == [], f"{name} at {width}px: content wider than the screen"
    page.set_viewport_size({"width": 1280, "height": 900})


def test_log_in_filter_open_run_artifact_and_compare(
    browser: Any, server: dict[str, Any], url: str, shots: Path
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    page.goto(f"{url}/ui/experiments/exp")
    assert "/ui/login" in page.url
    look(page, shots, "login")
    page.fill("#token", "yard_wrong_token")
    with page.expect_navigation():
        page.press("#token", "Enter")
    assert page.locator("#login-problem").is_visible()
    page.fill("#token", server["tokens"]["reader"])
    page.click("button.primary")
    page.wait_for_url("**/ui/experiments/exp")
    assert page.locator("table.runs tbody tr").count() == 6
    look(page, shots, "runs")

    # the search box by keyboard: "/" focuses it; a typo is marked at its token
    page.locator("body").press("/")
    page.keyboard.type("metrics.loss < 0.2 and parms.lr = '0.01'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    problem = page.locator("#q-problem")
    assert problem.is_visible() and page.locator("#q-problem mark").inner_text() == "parms.lr"
    assert page.get_attribute("#q", "aria-invalid") == "true"
    look(page, shots, "runs-filter-error")
    page.fill("#q", "params.opt = 'sgd'")
    with page.expect_navigation():
        page.press("#q", "Enter")
    assert page.locator("#q-problem").count() == 0
    assert page.locator("table.runs tbody tr").count() == 3

    # compare three runs: the button is enabled from two ticked boxes
    button = page.locator("#compare")
    assert button.is_disabled()
    boxes = page.locator('input[name="run"]')
    for i in range(3):
        boxes.nth(i).check()
    assert button.is_enabled() and "3 selected" in page.inner_text("#selected")
    button.click()
    page.wait_for_url("**/ui/compare?**")
    assert page.locator(".charts svg").count() == 2
    assert page.locator("tr.diff").count() >= 1
    look(page, shots, "compare")

    # a run and its artifacts
    page.goto(f"{url}/ui/experiments/exp?q=name+%3D+%27run-0%27")
    page.click("td.name a")
    page.wait_for_url("**/ui/runs/**")
    assert page.locator(".charts svg").count() == 2
    run_url = page.url
    look(page, shots, "run")
    with page.expect_navigation():
        page.get_by_role("link", name="data/head.csv", exact=True).click()
    assert page.locator("table.runs tbody tr").count() == 2
    look(page, shots, "artifact-csv")
    page.goto(run_url)
    with page.expect_navigation():
        page.get_by_role("link", name="plots", exact=True).click()
    with page.expect_navigation():
        page.get_by_role("link", name="plots/pixel.png", exact=True).click()
    page.wait_for_function("() => document.querySelector('img.preview').complete")
    size = page.evaluate("() => document.querySelector('img.preview').naturalWidth")
    assert size == 2
    page.goto(run_url)
    with page.expect_navigation():
        page.get_by_role("link", name="config.json", exact=True).click()
    assert '"threshold": 0.5' in page.inner_text("pre.preview")
    look(page, shots, "artifact-json")
    assert watch.problems == []
    ctx.close()


def test_alias_refused_by_gates_then_moved(
    browser: Any, server: dict[str, Any], url: str, shots: Path, make_models: Any
) -> None:
    make_models(server)
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    page.goto(f"{url}/ui/login?next=/ui/models")
    page.fill("#token", server["tokens"]["maintainer"])
    with page.expect_navigation():
        page.press("#token", "Enter")
    assert page.locator("table tbody tr").count() == 1
    look(page, shots, "models")
    with page.expect_navigation():
        page.get_by_role("link", name="clf", exact=True).click()
    page.fill("#alias", "production")
    page.select_option("#version", "1")
    with page.expect_navigation():
        page.get_by_role("button", name="Move alias").click()
    refusal = page.locator("#refusal")
    assert refusal.is_visible() and "Refusing to move alias" in refusal.inner_text()
    assert page.locator("#refusal tr.bad").count() == 1
    look(page, shots, "model-gates-refused")
    page.select_option("#version", "2")
    with page.expect_navigation():
        page.get_by_role("button", name="Move alias").click()
    assert "Alias production moved" in page.inner_text("[role=status]")
    look(page, shots, "model")
    assert watch.problems == []
    ctx.close()


def test_release_page_pause_button(
    browser: Any, server: dict[str, Any], url: str, shots: Path, rollout: int
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    page.goto(f"{url}/ui/login?next=/ui/releases/{rollout}")
    page.fill("#token", server["tokens"]["maintainer"])
    with page.expect_navigation():
        page.press("#token", "Enter")
    assert page.get_by_role("button", name="Resume").count() == 0
    page.fill("#reason", "checking the dashboards")
    with page.expect_navigation():
        page.get_by_role("button", name="Pause").click()
    assert "Done: pause" in page.inner_text("[role=status]")
    assert page.get_by_role("button", name="Resume").count() == 1
    look(page, shots, "release")
    with page.expect_navigation():
        page.get_by_role("link", name="Releases").first.click()
    look(page, shots, "releases")
    assert watch.problems == []
    ctx.close()


def _login(page: Any, url: str, token: str, target: str) -> None:
    page.goto(f"{url}/ui/login?next={target}")
    page.fill("#token", token)
    with page.expect_navigation():
        page.press("#token", "Enter")


def test_datasets_and_model_lineage(
    browser: Any, server: dict[str, Any], url: str, shots: Path, lineage: dict[str, Any]
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    _login(page, url, server["tokens"]["reader"], "/ui/")
    with page.expect_navigation():
        page.get_by_role("link", name="Datasets", exact=True).click()
    assert page.locator("table tbody tr").count() == 2
    look(page, shots, "datasets")
    with page.expect_navigation():
        page.get_by_role("link", name="churn", exact=True).click()
    assert page.locator("table tbody tr").count() == 2
    look(page, shots, "dataset")
    with page.expect_navigation():
        page.get_by_role("link", name="v2", exact=True).click()
    assert page.locator("#profile tbody tr").count() == 4
    assert page.locator(".charts svg").count() == 4
    look(page, shots, "dataset-version")
    with page.expect_navigation():
        page.locator("#used-by").get_by_role("link", name="train", exact=True).click()
    assert page.locator("#lineage").is_visible()
    with page.expect_navigation():
        page.get_by_role("link", name="churn-clf v1", exact=True).click()
    assert page.url.endswith("/ui/models/churn-clf/versions/1")
    assert page.locator(".lineage svg a.box").count() == 3
    look(page, shots, "model-version-lineage")
    with page.expect_navigation():  # a box of the graph is a link
        page.locator('.lineage svg a.box[href="/ui/datasets/churn/v2"]').click()
    assert page.url.endswith("/ui/datasets/churn/v2")
    page.goto(f"{url}/ui/datasets/churn/v7")
    assert page.locator("[role=alert]").inner_text().startswith("Dataset 'churn' has no version v7")
    look(page, shots, "not-found")
    assert watch.problems == []
    ctx.close()


def test_monitoring_and_pipeline_pages(
    browser: Any, server: dict[str, Any], url: str, shots: Path, monitored: str, pipeline_run: str
) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    _login(page, url, server["tokens"]["reader"], "/ui/monitoring")
    look(page, shots, "monitoring")
    with page.expect_navigation():
        page.get_by_role("link", name="churn-clf", exact=True).click()
    assert "drift-high" in page.inner_text("#firing")
    assert page.locator("#drift-table tbody tr").count() == 2
    assert page.locator(".charts svg").count() >= 4
    look(page, shots, "monitoring-model")
    with page.expect_navigation():
        page.get_by_role("link", name="Pipelines", exact=True).click()
    look(page, shots, "pipelines")
    with page.expect_navigation():
        page.locator(f'a[href="/ui/pipelines/{pipeline_run}"]').click()
    assert page.locator(".dag svg g.node").count() == 4
    assert page.locator("#steps-table tbody tr").count() == 4
    look(page, shots, "pipeline-run")
    assert watch.problems == []
    ctx.close()


def test_release_refreshes_live_and_rolls_back(
    browser: Any, server: dict[str, Any], url: str, shots: Path, http_rollout: tuple[int, Any]
) -> None:
    from modelyard.rollout import RolloutService

    rollout, served = http_rollout
    viewer = browser.new_context(viewport={"width": 1280, "height": 900})
    vpage = viewer.new_page()
    _login(vpage, url, server["tokens"]["reader"], f"/ui/releases/{rollout}")
    assert vpage.locator("#rollback").count() == 0 and vpage.locator("#live-note").is_visible()
    viewer.close()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    watch = Watch(page, url)
    _login(page, url, server["tokens"]["maintainer"], f"/ui/releases/{rollout}")
    assert page.get_by_role("button", name="Roll back to v1").is_visible()
    look(page, shots, "release-live")
    # someone else pauses it (the CLI, the controller): the open page shows it without a reload
    page.evaluate("() => { window.notReloaded = true; }")
    RolloutService().pause("m", reason="paused from the terminal")
    page.wait_for_function(
        "() => document.querySelector('#live .badge').textContent.trim() === 'paused'", timeout=60_000
    )
    assert page.evaluate("() => window.notReloaded") is True
    assert "paused from the terminal" in page.inner_text("#live-body")
    assert page.get_by_role("button", name="Resume").is_visible()  # the buttons follow the state
    asked: list[str] = []
    page.on("dialog", lambda d: (asked.append(d.message), d.accept()))
    page.fill("#rollback-reason", "p99 latency doubled")
    with page.expect_navigation():
        page.get_by_role("button", name="Roll back to v1").click()
    assert asked and "back to version 1" in asked[0]
    assert "Done: rollback" in page.inner_text("[role=status]")
    assert page.locator("#live .badge").inner_text() == "aborted" and page.locator("#live-note").count() == 0
    assert served.deployment.primary.version == 1 and served.spec.traffic.kind == "single"
    look(page, shots, "release-rolled-back")
    assert watch.problems == []
    ctx.close()
