"""Model pages: versions, aliases, audit log; moving a protected alias runs the gates (refusal shown)."""

from __future__ import annotations

import re
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def models(server: dict[str, Any], make_models: Any) -> None:
    make_models(server)


def csrf(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m
    return m.group(1)


def test_a_failing_gate_refuses_the_move_and_a_passing_one_moves(
    server: dict[str, Any], models: None, login_as: Any
) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["maintainer"])
    listing = c.get("/ui/models")
    assert listing.status_code == 200 and ">clf</a>" in listing.text
    page = c.get("/ui/models/clf")
    assert 'id="move"' in page.text
    refused = c.post(
        "/ui/models/clf/alias", data={"csrf": csrf(page.text), "alias": "production", "version": "1"}
    )
    assert refused.status_code == 422
    box = re.search(r'<div class="problem".*?</table>', refused.text, re.S)
    assert box and "Refusing to move alias" in box.group(0)
    assert re.search(r'<tr class="bad"><td>metrics\.accuracy</td><td>failed</td>', box.group(0))
    assert "production" not in re.search(r"<h1>.*?</p>", refused.text, re.S).group(0)  # type: ignore[union-attr]
    moved = c.post(
        "/ui/models/clf/alias",
        data={"csrf": csrf(page.text), "alias": "production", "version": "2"},
        follow_redirects=False,
    )
    assert moved.status_code == 303
    after = c.get(moved.headers["location"])
    assert "production → v2" in after.text and "gates passed" in after.text and "mo" in after.text


def test_readers_see_no_form_and_their_post_is_refused(
    server: dict[str, Any], models: None, login_as: Any
) -> None:
    from fastapi.testclient import TestClient

    c = TestClient(server["app"])
    login_as(c, server["tokens"]["reader"])
    page = c.get("/ui/models/clf")
    assert page.status_code == 200 and 'id="move"' not in page.text
    r = c.post("/ui/models/clf/alias", data={"csrf": csrf(page.text), "alias": "staging", "version": "2"})
    assert r.status_code == 403 and "maintainer" in r.text
    assert "staging" not in c.get("/ui/models/clf").text
