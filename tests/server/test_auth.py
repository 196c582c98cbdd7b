"""Who may call what: 401 vs 403, the role matrix over every operation, tokens, rate limits, modes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

import modelyard as yard
from modelyard._rpc import ROLES, operations
from modelyard.errors import ApiVersionError, AuthenticationError, PermissionDeniedError
from modelyard.server import ServerSettings, create_app
from modelyard.server._app import service_classes
from modelyard.server._users import AuthService
from yard_server_harness import running_server


def _store(tmp_path: Path) -> str:
    return str(tmp_path / "server-store")


def _token_for(tmp_path: Path, name: str, role: str) -> str:
    auth = AuthService(_store(tmp_path))
    auth.add_user(name, role)
    return str(auth.create_token(name, expires=None)["token"])


def test_401_without_or_with_a_bad_token_and_403_naming_the_role(server_uri: str, tmp_path: Path) -> None:
    url = f"{server_uri}/api/v1/tracking/create-run"
    body = {"experiment": "e"}
    r = httpx.post(url, json=body)
    assert r.status_code == 401 and "needs a token" in r.json()["error"]["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    r = httpx.post(url, json=body, headers={"Authorization": "Bearer yard_0123456789abcdef_" + "x" * 40})
    assert r.status_code == 401 and "not valid" in r.json()["error"]["message"]
    reader = _token_for(tmp_path, "rita", "reader")
    r = httpx.post(url, json=body, headers={"Authorization": f"Bearer {reader}"})
    assert r.status_code == 403
    assert "needs role 'writer'" in r.json()["error"]["message"] and "rita" in r.json()["error"]["message"]
    # the version handshake and health need no token
    assert httpx.get(f"{server_uri}/api/v1/version").json()["api"] == 1
    assert httpx.get(f"{server_uri}/health/ready").status_code == 200


def _example(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _example(defs[schema["$ref"].split("/")[-1]], defs)
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _example(options[0], defs) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _example(v, defs) for k, v in props.items() if k in schema.get("required", [])}
    if kind == "array":
        if "prefixItems" in schema:
            return [_example(s, defs) for s in schema["prefixItems"]]
        return []
    return {"string": "x", "integer": 1, "number": 1.0, "boolean": False}.get(kind, "x")


#: Operations that check more than their declared role for some arguments (e.g. acting on another user).
_SELF_OR_ADMIN = {"auth.create_token", "auth.list_tokens", "auth.revoke_token"}


def test_role_matrix_over_every_operation(server_uri: str, tmp_path: Path) -> None:
    tokens = {role: _token_for(tmp_path, f"user-{role}", role) for role in ROLES}
    checked = 0
    with httpx.Client(base_url=server_uri, timeout=60) as client:
        for cls in service_classes():
            for spec in operations(cls):
                from modelyard._remote import codec

                schema = codec(spec).args_model.model_json_schema()
                body = _example(schema, schema.get("$defs", {}))
                need = ROLES.index(spec.role)
                for i, role in enumerate(ROLES):
                    r = client.post(spec.path, json=body, headers={"Authorization": f"Bearer {tokens[role]}"})
                    where = f"{spec.service}.{spec.name} as {role}: {r.status_code} {r.text[:200]}"
                    assert r.status_code < 500, where
                    assert r.status_code != 401, where
                    if i < need:
                        assert r.status_code == 403, where
                        assert f"needs role {spec.role!r}" in r.json()["error"]["message"], where
                    elif f"{spec.service}.{spec.name}" not in _SELF_OR_ADMIN or role == "admin":
                        assert r.status_code != 403, where
                    checked += 1
    assert checked >= 4 * 30


def test_tokens_revoked_expired_and_never_shown_again(server_uri: str, tmp_path: Path) -> None:
    auth = AuthService(_store(tmp_path))
    auth.add_user("dana", "writer")
    made = auth.create_token("dana", expires="1h", description="laptop")
    token = made["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        httpx.post(f"{server_uri}/api/v1/auth/whoami", json={}, headers=headers).json()["result"]["name"]
        == "dana"
    )
    listed = auth.list_tokens("dana")
    assert listed[0]["last_used_at"] is not None  # recorded on use
    assert token not in repr(listed) and all("token" not in t for t in listed)
    with pytest.raises(AuthenticationError):  # an hour and a second later
        auth.authenticate(token, now=made["expires_at"] + 1)
    auth.revoke_token(made["id"])
    r = httpx.post(f"{server_uri}/api/v1/auth/whoami", json={}, headers=headers)
    assert r.status_code == 401
    auth.disable_user("dana")
    other = auth.create_token("dana", expires=None)["token"]
    r = httpx.post(f"{server_uri}/api/v1/auth/whoami", json={}, headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 401 and "disabled" in r.json()["error"]["message"]


def test_failed_logins_are_rate_limited_per_address(tmp_path: Path) -> None:
    now = [0.0]
    app = create_app(
        ServerSettings(uri=_store(tmp_path), failed_auth_burst=5, failed_auth_refill_s=10),
        clock=lambda: now[0],
    )
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        bad = {"Authorization": "Bearer yard_0123456789abcdef_" + "y" * 40}
        codes = [client.post("/api/v1/auth/whoami", json={}, headers=bad).status_code for _ in range(7)]
        assert codes == [401] * 5 + [429] * 2
        r = client.post("/api/v1/auth/whoami", json={}, headers=bad)
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
        now[0] += 10.0  # one try comes back per refill period
        assert client.post("/api/v1/auth/whoami", json={}, headers=bad).status_code == 401
        assert client.post("/api/v1/auth/whoami", json={}, headers=bad).status_code == 429


def test_trusted_header_mode(tmp_path: Path) -> None:
    AuthService(_store(tmp_path)).add_user("erin", "writer")
    app = create_app(ServerSettings(uri=_store(tmp_path), auth="header", user_header="X-Auth-User"))
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        assert client.post("/api/v1/auth/whoami", json={}).status_code == 401
        me = client.post("/api/v1/auth/whoami", json={}, headers={"X-Auth-User": "erin"}).json()["result"]
        assert me["name"] == "erin" and me["role"] == "writer"
        stranger = client.post(
            "/api/v1/tracking/create-run", json={"experiment": "e"}, headers={"X-Auth-User": "zed"}
        )
        assert stranger.status_code == 403  # unknown users read only


def test_bootstrap_admin_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "yard_00112233445566ff_" + "s" * 43
    monkeypatch.setenv("YARD_ADMIN_TOKEN", token)
    app = create_app(ServerSettings(uri=_store(tmp_path)))
    with running_server(app) as url:
        r = httpx.post(f"{url}/api/v1/auth/whoami", json={}, headers={"Authorization": f"Bearer {token}"})
        assert r.json()["result"] == {
            "name": "admin",
            "role": "admin",
            "groups": [],
            "grants": [],
            "local": False,
        }


def test_bad_bodies_are_4xx_naming_the_field(server_uri: str) -> None:
    headers = {"Authorization": f"Bearer {_env_token()}"}
    r = httpx.post(f"{server_uri}/api/v1/tracking/create-run", json={"experiment": 123}, headers=headers)
    assert r.status_code == 422 and "experiment" in r.json()["error"]["message"]
    r = httpx.post(
        f"{server_uri}/api/v1/tracking/create-run", json={"nope": 1, "experiment": "e"}, headers=headers
    )
    assert r.status_code == 422 and "nope" in r.json()["error"]["message"]
    r = httpx.post(
        f"{server_uri}/api/v1/tracking/create-run",
        content=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    r = httpx.post(f"{server_uri}/api/v1/tracking/get-run", json={"run_id": "nope"}, headers=headers)
    assert r.status_code == 404 and r.json()["error"]["type"] == "NotFoundError"
    assert "Traceback" not in r.text


def test_body_size_limit_and_cors_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _token_for(tmp_path, "fay", "admin")
    app = create_app(ServerSettings(uri=_store(tmp_path), max_body=1000))
    with running_server(app) as url, httpx.Client(base_url=url) as client:
        h = {"Authorization": f"Bearer {token}"}
        r = client.post("/api/v1/tracking/create-run", json={"experiment": "e" * 2000}, headers=h)
        assert r.status_code == 413 and "YARD_SERVER_MAX_BODY" in r.json()["error"]["message"]
        pre = client.options(
            "/api/v1/tracking/create-run",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert "access-control-allow-origin" not in pre.headers


def test_client_errors_name_both_api_versions(server_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import modelyard._remote as remote

    monkeypatch.setattr(remote, "API_VERSION", 2)
    with pytest.raises(ApiVersionError, match=r"speaks modelyard API v2 .* speaks v1"):
        remote.RemoteClient(server_uri).handshake()


def test_no_secret_in_reprs_errors_or_logs(
    server_uri: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _env_token()
    ws = yard.get_workspace(server_uri)
    assert token not in repr(ws) and token not in repr(ws.remote)
    with pytest.raises(PermissionDeniedError) as err:
        reader = _token_for(tmp_path, "gus", "reader")
        from modelyard._remote import RemoteClient
        from modelyard.tracking._service import TrackingService

        spec = next(s for s in operations(TrackingService) if s.name == "create_experiment")
        RemoteClient(server_uri, token=reader).call(spec, {"name": "e", "description": None})
    assert reader not in str(err.value)
    assert token not in caplog.text and reader not in caplog.text


def _env_token() -> str:
    import os

    return os.environ["YARD_TOKEN"]


def test_cli_refuses_open_binding_without_auth() -> None:
    from typer.testing import CliRunner

    from modelyard.cli import app

    result = CliRunner().invoke(app, ["server", "--host", "0.0.0.0", "--auth", "none"])
    assert result.exit_code == 1
    assert "Refusing to listen on 0.0.0.0 with --auth none" in result.output


def test_numbers_out_of_the_stores_range_are_400(server_uri: str) -> None:
    headers = {"Authorization": f"Bearer {_env_token()}"}
    run = httpx.post(f"{server_uri}/api/v1/tracking/create-run", json={"experiment": "e"}, headers=headers)
    run_id = run.json()["result"]["id"]
    row = [run_id, "loss", 2**70, 1.0, False, 1000]  # a step no 64-bit column holds
    r = httpx.post(
        f"{server_uri}/api/v1/tracking/write-metrics", json={"rows": [row], "latest": [row]}, headers=headers
    )
    assert r.status_code == 400 and "out of range" in r.json()["error"]["message"], r.text
    r = httpx.post(f"{server_uri}/api/v1/tracking/search-runs", json={"limit": 2**70}, headers=headers)
    assert r.status_code in (400, 422) and "limit" in r.text
