"""Per-object role checks of operations that address a thing by id: a rollout is checked on its model,
so a grant on one model covers that model's rollouts and no other model's."""

from __future__ import annotations

from pathlib import Path

import httpx

from modelyard.rollout import RolloutService
from modelyard.server._users import AuthService


def _post(url: str, op: str, token: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/rollout/{op}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def test_a_model_grant_covers_that_models_rollouts_only(server_uri: str, tmp_path: Path) -> None:
    admin = RolloutService(server_uri)  # YARD_TOKEN is an admin's
    ids = {
        model: admin.create(model, "canary", 1, 2, {}, {}, {"local": True}).id
        for model in ("model-a", "model-b")
    }
    auth = AuthService(str(tmp_path / "server-store"))
    auth.add_user("mia", "reader")
    auth.grant("mia", "model", "model-a", "maintainer")
    token = str(auth.create_token("mia", expires=None)["token"])

    # her own model's rollout: the grant counts
    ok = _post(server_uri, "take-lease", token, rollout_id=ids["model-a"], owner="mia-ctl", lease_ms=60_000)
    assert ok.status_code == 200 and ok.json()["result"] is True
    assert (
        _post(server_uri, "release-lease", token, rollout_id=ids["model-a"], owner="mia-ctl").status_code
        == 200
    )

    # another model's rollout by id: refused, naming that model and the role
    for op, body in (
        ("take-lease", {"owner": "mia-ctl", "lease_ms": 60_000}),
        ("release-lease", {"owner": "other"}),
    ):
        r = _post(server_uri, op, token, rollout_id=ids["model-b"], **body)
        assert r.status_code == 403, (op, r.text)
        message = r.json()["error"]["message"]
        assert "needs role 'writer' on model 'model-b'" in message and "mia has 'reader'" in message
    assert admin.take_lease(ids["model-b"], "admin-ctl", 60_000)  # she took nothing

    # naming her model but another model's rollout id: no such rollout of her model
    r = _post(
        server_uri,
        "record-hold",
        token,
        model="model-a",
        rollout_id=ids["model-b"],
        revision=None,
        reason="not mine",
    )
    assert r.status_code == 404 and "no rollout" in r.json()["error"]["message"]
    # reads stay open to readers; an unknown id is the global role's call, then not found
    assert _post(server_uri, "get", token, rollout_id=ids["model-b"]).status_code == 200
    assert (
        _post(server_uri, "take-lease", token, rollout_id=999_999, owner="x", lease_ms=1).status_code == 403
    )
