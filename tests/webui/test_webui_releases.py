"""Release pages: a rollout's steps and events; pause / resume by a maintainer; readers see no buttons."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_maintainer_pauses_and_resumes(server: dict[str, Any], rollout: int, login_as: Any) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["maintainer"])
    listing = c.get("/ui/releases")
    assert listing.status_code == 200 and f">#{rollout}</a>" in listing.text and "v1 → v2" in listing.text
    page = c.get(f"/ui/releases/{rollout}")
    assert page.status_code == 200 and "25 %" in page.text and "progressing" in page.text
    assert f'formaction="/ui/releases/{rollout}/pause"' in page.text
    assert "/resume" not in page.text  # only the actions the state allows
    r = c.post(f"/ui/releases/{rollout}/pause", data={"csrf": csrf(page.text), "reason": "lunch"})
    assert r.status_code == 200 and "Done: pause" in r.text and "paused" in r.text
    assert re.search(r"<td>pause</td><td>1</td><td>mo</td><td>lunch</td>", r.text)
    again = c.post(f"/ui/releases/{rollout}/pause", data={"csrf": csrf(r.text)})
    assert again.status_code == 409 and "Only a progressing rollout pauses" in again.text
    r = c.post(f"/ui/releases/{rollout}/resume", data={"csrf": csrf(r.text)})
    assert r.status_code == 200 and "Done: resume" in r.text
    assert c.post(f"/ui/releases/{rollout}/explode", data={"csrf": csrf(r.text)}).status_code == 400


def test_reader_sees_no_buttons_and_cannot_post(server: dict[str, Any], rollout: int, login_as: Any) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["reader"])
    page = c.get(f"/ui/releases/{rollout}")
    assert page.status_code == 200 and 'id="act"' not in page.text
    r = c.post(f"/ui/releases/{rollout}/pause", data={"csrf": csrf(page.text)})
    assert r.status_code == 403 and "maintainer" in r.text
    assert "progressing" in c.get(f"/ui/releases/{rollout}").text


def test_rollback_button_by_role(
    server: dict[str, Any], http_rollout: tuple[int, Any], login_as: Any
) -> None:
    from fastapi.testclient import TestClient

    rollout, served = http_rollout
    assert served.spec.traffic.kind == "canary"

    reader = TestClient(server["app"])
    login_as(reader, server["tokens"]["reader"])
    page = reader.get(f"/ui/releases/{rollout}")
    assert page.status_code == 200 and 'id="rollback"' not in page.text and "Roll back" not in page.text
    assert 'data-refresh="3"' in page.text  # a running rollout's page refreshes itself
    r = reader.post(f"/ui/releases/{rollout}/rollback", data={"csrf": csrf(page.text)})
    assert r.status_code == 403 and "maintainer" in r.text
    assert "progressing" in reader.get(f"/ui/releases/{rollout}").text

    writer = TestClient(server["app"])  # writers log runs and data; moving traffic is for maintainers
    login_as(writer, server["tokens"]["writer"])
    page = writer.get(f"/ui/releases/{rollout}")
    assert page.status_code == 200 and 'id="rollback"' not in page.text and 'id="act"' not in page.text
    r = writer.post(f"/ui/releases/{rollout}/rollback", data={"csrf": csrf(page.text)})
    assert r.status_code == 403 and "maintainer" in r.text and "wes" in r.text

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["maintainer"])
    page = c.get(f"/ui/releases/{rollout}")
    assert f'action="/ui/releases/{rollout}/rollback"' in page.text and "Roll back to v1" in page.text
    assert "data-confirm=" in page.text
    r = c.post(f"/ui/releases/{rollout}/rollback", data={"csrf": "forged", "reason": "x"})
    assert r.status_code == 403 and "CSRF" in r.text
    r = c.post(f"/ui/releases/{rollout}/rollback", data={"csrf": csrf(page.text), "reason": "p99 up"})
    assert r.status_code == 200 and "Done: rollback" in r.text and "aborted" in r.text
    assert re.search(r"<td>abort</td><td>1</td><td>mo</td><td>p99 up</td>", r.text)
    assert served.spec.traffic.kind == "single" and served.deployment.primary.version == 1
    assert "data-refresh" not in r.text  # a finished rollout's page stops refreshing
    again = c.post(f"/ui/releases/{rollout}/rollback", data={"csrf": csrf(r.text)})
    assert again.status_code == 200 and "traffic confirmed on version 1" in again.text


def test_rollback_of_an_in_process_target_says_why(
    server: dict[str, Any], rollout: int, login_as: Any
) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["maintainer"])
    page = c.get(f"/ui/releases/{rollout}")
    r = c.post(f"/ui/releases/{rollout}/rollback", data={"csrf": csrf(page.text)})
    # the rollout is aborted in the store; its traffic lives in another process, and the page says so
    assert r.status_code == 409 and "traffic could not be restored" in r.text and "aborted" in r.text
