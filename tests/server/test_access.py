"""Per-object role checks of operations that address a thing by id: a rollout is checked on its model,
so a grant on one model covers that model's rollouts and no other model's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from modelyard.errors import AuthenticationError
from modelyard.rollout import RolloutService
from modelyard.server._users import AuthService


@contextmanager
def _selects() -> Iterator[list[str]]:
    """The SELECT statements any engine runs inside the block."""
    selects: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    sa.event.listen(Engine, "before_cursor_execute", count)
    try:
        yield selects
    finally:
        sa.event.remove(Engine, "before_cursor_execute", count)


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


def test_a_metric_batch_is_checked_on_every_run_it_writes(server_uri: str, tmp_path: Path) -> None:
    from modelyard.tracking._service import TrackingService

    admin = TrackingService(server_uri)
    run_a = admin.create_run(experiment="exp-a").id
    run_b = admin.create_run(experiment="exp-b").id
    auth = AuthService(str(tmp_path / "server-store"))
    auth.add_user("wes", "reader")
    auth.grant("wes", "experiment", "exp-a", "writer")
    token = str(auth.create_token("wes", expires=None)["token"])

    def write(rows: list[list[object]], latest: list[list[object]]) -> httpx.Response:
        return httpx.post(
            f"{server_uri}/api/v1/tracking/write-metrics",
            json={"rows": rows, "latest": latest},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )

    def row(run_id: str, step: int) -> list[object]:
        return [run_id, "loss", step, 0.5, False, 1_700_000_000_000 + step]

    assert write([row(run_a, 0)], [row(run_a, 0)]).status_code == 200
    # a run of experiment B behind a run of A, in the points or only in the latest values: refused
    for rows, latest in (
        ([row(run_a, 1), row(run_b, 1)], [row(run_a, 1)]),
        ([row(run_a, 2)], [row(run_a, 2), row(run_b, 2)]),
    ):
        r = write(rows, latest)
        assert r.status_code == 403, r.text
        message = r.json()["error"]["message"]
        assert "needs role 'writer' on experiment 'exp-b'" in message and "wes has 'reader'" in message
    assert admin.metric_keys(run_b) == []
    assert [p.step for p in admin.metric_history(run_a, "loss")] == [0]


def test_the_runs_of_a_batch_are_looked_up_in_one_query(tmp_path: Path) -> None:
    from modelyard._workspace import Workspace
    from modelyard.server._access import ObjectNames
    from modelyard.tracking._service import TrackingService

    ws = Workspace(str(tmp_path / "store")).open()
    svc = TrackingService(ws)
    ids = {svc.create_run(experiment=f"exp-{i % 2}").id: f"exp-{i % 2}" for i in range(5)}
    names = ObjectNames(ws)
    with _selects() as selects:
        assert names.many({*ids, "no-such-run"}) == {**ids, "no-such-run": None}
        assert len(selects) == 1
        assert names(next(iter(ids))) == ids[next(iter(ids))] and len(selects) == 1  # cached
        assert names("no-such-run") is None and len(selects) == 2  # an unknown run is looked up again
    ws.close()


def test_a_principal_has_its_own_grants_and_its_groups_grants_only(tmp_path: Path) -> None:
    """Read in two statements per request (they run before every call the server answers)."""
    from modelyard._workspace import Workspace

    ws = Workspace(str(tmp_path / "store")).open()
    auth = AuthService(ws)
    for name in ("ann", "bob"):
        auth.add_user(name, "reader")
    auth.add_group_member("release", "ann")
    auth.add_group_member("ops", "ann")
    auth.add_group_member("other", "bob")
    auth.grant("ann", "model", "clf", "writer")
    auth.grant("group:release", "model", "clf", "maintainer")  # the higher role wins
    auth.grant("group:ops", "experiment", "churn", "writer")
    auth.grant("group:other", "dataset", "secret", "admin")  # not ann's group
    auth.grant("bob", "model", "reg", "writer")
    token = str(auth.create_token("ann", expires=None)["token"])
    with _selects() as selects:
        ann = auth.authenticate(token)
    assert len(selects) == 2, selects  # the token with its user, then the groups with every grant
    for who in (ann, auth.principal_for_user("ann")):
        assert (who.name, who.role, who.groups) == ("ann", "reader", ("ops", "release"))
        assert who.grants == {("model", "clf"): "maintainer", ("experiment", "churn"): "writer"}
    auth.disable_user("ann")  # a disabled user's token stands for nobody
    with pytest.raises(AuthenticationError, match="'ann' is disabled or removed"):
        auth.authenticate(token)
    ws.close()
