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


def look(page: Any, shots: Path, name: str) -> None:
    """Screenshot ``page`` at desktop and phone width, checking contrast and overflow at both."""
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
