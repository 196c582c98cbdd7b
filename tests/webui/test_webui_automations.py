"""Automation pages: the list (next tick in the automation's own zone), a run with its steps and links,
and the approval buttons: shown to a maintainer of the model in the approval group, refused (403) to
everyone else, a POST needing the form's CSRF token, the decision recorded under the user's name."""

from __future__ import annotations

import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PIPELINE = """
import modelyard as yard

@yard.step
def pick(version: int) -> dict:
    return {"model": "clf", "version": version}

@yard.pipeline(experiment="automation-ui")
def MOD(version: int = 2):
    return pick(version)
"""

AUTOMATIONS = """
- name: retrain
  model: clf
  timezone: Asia/Kolkata
  on:
    - schedule: "30 3 * * *"
  run: PIPE
  then:
    gate: gates.yaml
    approval: release-team
"""


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


@pytest.fixture
def waiting(
    server: dict[str, Any], make_models: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Automation ``retrain`` (schedule in Asia/Kolkata, gates, approval by group release-team whose
    member ``mo`` is a maintainer) with run 1 waiting for approval on clf v2; tokens of ``max`` (a
    maintainer outside the group). Returns ``{"run": id, "max": token}``."""
    from modelyard.automation import AutomationService, Engine, apply_file
    from modelyard.server._users import AuthService

    make_models(server)
    auth = AuthService(server["ws"])
    auth.add_group_member("release-team", "mo")
    auth.add_user("max", "maintainer")
    name = f"autopipe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(PIPELINE.replace("MOD", name))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    path = tmp_path / "automations.yaml"
    path.write_text(AUTOMATIONS.replace("PIPE", f"{tmp_path / name}.py:{name}"))
    apply_file(str(path))
    svc = AutomationService()
    run = svc.trigger("retrain", "labels landed")
    Engine(svc, say=lambda _: None).tick()
    steps = svc.show_run(run["id"])["steps"]
    assert [(s["kind"], s["state"]) for s in steps] == [
        ("pipeline", "ok"),
        ("gate", "ok"),
        ("approval", "waiting"),
    ]
    return {"run": run["id"], "max": auth.create_token("max", expires=None)["token"]}


def test_list_shows_next_tick_in_the_automations_zone(
    server: dict[str, Any], waiting: dict[str, Any], login_as: Any
) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["reader"])
    page = c.get("/ui/automations")
    assert page.status_code == 200
    # 03:30 on Kolkata's wall clock, named, with its offset (UTC+05:30 has no DST): not 22:00 UTC
    assert re.search(r"\d{4}-\d\d-\d\d 03:30 Asia/Kolkata \(UTC\+05:30\)", page.text), page.text
    assert "schedule 30 3 * * * (Asia/Kolkata)" in page.text and "pipeline → gate → approval" in page.text
    assert f'href="/ui/automations/retrain/runs/{waiting["run"]}"' in page.text
    assert re.search(r'badge running">running</span> approval', page.text)
    assert 'aria-current="page">Automations</a>' in page.text


def test_run_page_links_every_step(server: dict[str, Any], waiting: dict[str, Any], login_as: Any) -> None:
    from fastapi.testclient import TestClient

    from modelyard.automation import AutomationService

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["reader"])
    rid = waiting["run"]
    r = AutomationService().show_run(rid)
    page = c.get(f"/ui/automations/retrain/runs/{rid}")
    assert page.status_code == 200
    assert f'href="/ui/pipelines/{r["pipeline_run_id"]}"' in page.text
    assert 'href="/ui/models/clf/versions/2"' in page.text
    assert 'href="#gate-report"' in page.text and 'id="gate-report"' in page.text
    assert "metrics.accuracy" in page.text  # the gate report's rows
    assert "waiting for a maintainer of &#39;release-team&#39;" in page.text
    assert 'id="approval"' not in page.text and 'id="approval-note"' in page.text  # a reader: no buttons
    assert c.get(f"/ui/automations/other/runs/{rid}").status_code == 404
    assert c.get("/ui/automations/retrain/runs/99").status_code == 404
    assert c.get("/ui/automations/retrain/runs/x1").status_code == 400


def test_only_group_maintainers_approve(
    server: dict[str, Any], waiting: dict[str, Any], login_as: Any
) -> None:
    from fastapi.testclient import TestClient

    from modelyard.automation import AutomationService

    rid = waiting["run"]
    url = f"/ui/automations/retrain/runs/{rid}"
    for token, who in ((server["tokens"]["reader"], "rita"), (waiting["max"], "max")):
        c = TestClient(server["app"])
        login_as(c, token)
        page = c.get(url)
        assert page.status_code == 200 and 'id="approval"' not in page.text and "/approve" not in page.text
        refused = c.post(f"{url}/approve", data={"csrf": csrf(page.text)})
        assert refused.status_code == 403, refused.text
        assert who in refused.text and ("maintainer" in refused.text or "release-team" in refused.text)
    assert AutomationService().show_run(rid)["approval"] is None

    mo = TestClient(server["app"])
    login_as(mo, server["tokens"]["maintainer"])
    page = mo.get(url)
    assert f'formaction="{url}/approve"' in page.text and f'formaction="{url}/reject"' in page.text
    assert mo.post(f"{url}/approve", data={"csrf": "forged"}).status_code == 403
    assert mo.post(f"{url}/approve", data={}).status_code == 403
    assert mo.post(f"{url}/maybe", data={"csrf": csrf(page.text)}).status_code == 400
    assert AutomationService().show_run(rid)["approval"] is None
    done = mo.post(f"{url}/approve", data={"csrf": csrf(page.text), "reason": "dashboards look fine"})
    assert done.status_code == 200 and "Done: approved" in done.text
    assert "Approved by mo" in done.text and 'id="approval"' not in done.text
    run = AutomationService().show_run(rid)
    assert (run["approval"], run["approved_by"]) == ("approved", "mo")
    assert any(
        e["kind"] == "approved"
        and e["actor"] == "mo"
        and e["message"] == "approved by mo: dashboards look fine"
        for e in run["events"]
    )
    again = mo.post(f"{url}/reject", data={"csrf": csrf(page.text)})
    assert again.status_code == 409 and "already approved or rejected" in again.text


def test_browser_approve_and_refusal(server: dict[str, Any], waiting: dict[str, Any], tmp_path: Path) -> None:
    from test_webui_browser import ARGS, CHROMIUM, Watch, _login, _missing, look

    from modelyard.server._local import serve_in_thread

    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} is missing: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is missing: pip install playwright")
    import os

    shots = Path(os.environ.get("YARD_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    rid = waiting["run"]
    with serve_in_thread(server["app"]) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # max maintains models but is not in release-team: no buttons; a hand-made POST gets the 403 page
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        _login(page, url, waiting["max"], f"/ui/automations/retrain/runs/{rid}")
        assert page.locator("#approval").count() == 0 and page.locator("#approval-note").is_visible()
        with page.expect_navigation():
            page.evaluate(
                """(action) => { const f = document.createElement('form');
                   f.method = 'post'; f.action = action;
                   const i = document.createElement('input'); i.name = 'csrf';
                   i.value = document.querySelector('input[name=csrf]').value; f.appendChild(i);
                   document.body.appendChild(f); f.submit(); }""",
                f"/ui/automations/retrain/runs/{rid}/approve",
            )
        assert "release-team" in page.locator("[role=alert]").inner_text()
        look(page, shots, "automation-approve-refused")
        ctx.close()

        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        watch = Watch(page, url)
        page.on("dialog", lambda d: d.accept())  # the form asks before deciding (data-confirm)
        _login(page, url, server["tokens"]["maintainer"], "/ui/")
        with page.expect_navigation():
            page.get_by_role("link", name="Automations", exact=True).click()
        assert "Asia/Kolkata (UTC+05:30)" in page.inner_text("#automations-table")
        look(page, shots, "automations")
        with page.expect_navigation():
            page.get_by_role("link", name=f"run {rid}", exact=True).click()
        assert page.locator("#steps-table tbody tr").count() == 3
        assert page.get_by_role("button", name="Approve").is_visible()
        look(page, shots, "automation-run-waiting")
        page.fill("#reason", "canary numbers look fine")
        with page.expect_navigation():
            page.get_by_role("button", name="Approve").click()
        assert "Done: approved" in page.inner_text("[role=status]")
        assert page.get_by_role("button", name="Approve").count() == 0
        assert "approved by mo: canary numbers look fine" in page.inner_text("#events-table")
        look(page, shots, "automation-run-approved")
        assert watch.problems == []
        ctx.close()
        browser.close()
