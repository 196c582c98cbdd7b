"""Rollout webhooks are references (env:NAME / file:PATH): a literal URL is refused, the stored
config and `yard rollout status --json` hold only the reference, failures never quote the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from modelyard.errors import InvalidArgumentError
from modelyard.rollout import RolloutService
from modelyard.rollout._config import load_config
from modelyard.serving import build_app

from .conftest import BASE, register

SRC = str(Path(__file__).resolve().parents[2] / "src")
TOKEN = "T0AAAA/B0BBBB/hunter2secret"
SLACK = f"https://hooks.slack.com/services/{TOKEN}"
REFUSED = (
    "The rollout is not valid: the webhook https://hooks.slack.com/*** is a URL, which would be stored in "
    "plain text with the rollout (a Slack or Teams webhook URL holds its token); put it in an environment "
    "variable or a file and pass env:NAME or file:PATH instead, e.g. --webhook env:SLACK_WEBHOOK_URL."
)


class Hook:
    """A loopback webhook: records bodies POSTed to /services/<token>; answers 404 to /gone/<token>."""

    def __init__(self) -> None:
        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                if self.path.startswith("/gone/"):
                    self.send_response(404)
                else:
                    bodies.append(body)
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _yard(store: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": SRC, "YARD_URI": store, **env},
    )


def test_a_literal_webhook_url_is_refused_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        load_config(webhooks=[SLACK])
    assert str(info.value) == REFUSED and "hunter2" not in str(info.value)
    with pytest.raises(
        InvalidArgumentError,
        match=r"the webhook '\*\*\*' must be env:NAME \(an environment variable "
        r"holding the URL\) or file:PATH \(a file holding it\)",
    ):
        load_config(webhooks=["xoxb-hunter2"])  # not a URL nor a reference: maybe a token, so not repeated
    with pytest.raises(InvalidArgumentError, match=r"the webhook 'env:' must be env:NAME"):
        load_config(webhooks=["env:"])
    # a file reference is stored with its absolute path (the driver may run in another folder)
    monkeypatch.chdir(tmp_path)
    assert load_config(webhooks=["file:slack.url", "env:SLACK"]).webhooks == [
        f"file:{tmp_path / 'slack.url'}",
        "env:SLACK",
    ]
    # other URLs in the config keep working but are shown without their password
    from modelyard.rollout._reads import _shown_config

    cfg = load_config(
        prometheus=[{"name": "p", "url": "http://ml:hunter2@prom:9090", "query": "up", "max": 1}]
    )
    assert _shown_config(cfg)["prometheus"][0]["url"] == "http://ml:***@prom:9090"
    # from the CLI: refused before anything is stored or contacted
    out = _yard(
        str(tmp_path / "store"),
        "rollout",
        "start",
        "m",
        "--to",
        "2",
        "--server",
        "http://127.0.0.1:9",
        "--webhook",
        SLACK,
    )
    assert out.returncode == 1 and out.stderr == f"Error: {REFUSED}\n"
    # a reference that does not resolve fails at start, not at the first event
    out = _yard(
        str(tmp_path / "store"),
        "rollout",
        "start",
        "m",
        "--to",
        "2",
        "--server",
        "http://127.0.0.1:9",
        "--webhook",
        "env:YARD_TEST_NO_SUCH_HOOK",
    )
    assert out.returncode == 1
    assert out.stderr == (
        "Error: The webhook 'env:YARD_TEST_NO_SUCH_HOOK' is empty: the environment variable "
        "YARD_TEST_NO_SUCH_HOOK is not set.\n"
    )


def test_references_are_stored_resolved_at_delivery_and_never_printed(
    store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(store_uri)
    hook = Hook()
    app = build_app(BASE, uri=store_uri)
    try:
        monkeypatch.setenv("YARD_TEST_HOOK", f"{hook.base}/services/{TOKEN}")
        gone = tmp_path / "gone.url"
        gone.write_text(f"{hook.base}/gone/{TOKEN}\n")
        svc = RolloutService(store_uri)
        r = svc.start(
            "m",
            2,
            target=app,
            steps=[50, 100],
            interval_s="1h",
            min_requests=5,
            webhooks=["env:YARD_TEST_HOOK", f"file:{gone}"],
        )
        assert [b["modelyard"]["event"] for b in hook.bodies] == [
            "start",
            "step",
        ]  # delivered to the resolved URL
        assert r.config.webhooks == ["env:YARD_TEST_HOOK", f"file:{gone}"]
        assert "hunter2" not in repr(r)
        # the failing one is an event naming the reference and the host, not the token
        failed = [e.message for e in svc.events(r.id) if e.kind == "webhook_failed"]
        assert failed == 2 * [
            f"webhook file:{gone} failed: HTTPStatusError: Client error '404 Not Found' for url "
            f"'{hook.base}/***'\nFor more information check: https://developer.mozilla.org/***"
        ]
        # nothing in the store holds the token
        with svc.store.read() as conn:
            dump = json.dumps(
                [
                    list(map(str, row))
                    for t in ("rollouts", "rollout_events")
                    for row in conn.execute(sa.text(f"SELECT * FROM {t}"))
                ]
            )
        assert "hunter2" not in dump and "env:YARD_TEST_HOOK" in dump
        status = _yard(store_uri, "rollout", "status", "m", "--json")
        assert status.returncode == 0, status.stderr
        assert "hunter2" not in status.stdout
        assert json.loads(status.stdout)["config"]["webhooks"] == ["env:YARD_TEST_HOOK", f"file:{gone}"]
        assert "hunter2" not in _yard(store_uri, "rollout", "status", "m").stdout
        # the variable unset in the driving process: an event saying so, not a traceback
        monkeypatch.delenv("YARD_TEST_HOOK")
        gone.unlink()
        svc.abort("m", target=app)
        failed = [e.message for e in svc.events(r.id) if e.kind == "webhook_failed"][2:]
        assert failed == [
            "webhook env:YARD_TEST_HOOK failed: The webhook 'env:YARD_TEST_HOOK' is empty: the "
            "environment variable "
            "YARD_TEST_HOOK is not set.",
            f"webhook file:{gone} failed: The webhook 'file:{gone}' cannot be read: No such file "
            f"or directory.",
        ]
    finally:
        app.close()
        hook.close()


def test_a_url_stored_by_an_older_version_still_works_but_is_shown_redacted(
    store_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(store_uri)
    hook = Hook()
    app = build_app(BASE, uri=store_uri)
    try:
        svc = RolloutService(store_uri)
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="1h", min_requests=5)
        config = r.config.model_dump(mode="json")
        config["webhooks"] = [f"{hook.base}/services/{TOKEN}"]
        svc.store.write(
            lambda conn: conn.execute(
                sa.text("UPDATE rollouts SET config = :c WHERE id = :i"), {"c": json.dumps(config), "i": r.id}
            )
        )
        r = svc.get(r.id)
        assert r.to_dict()["config"]["webhooks"] == [f"{hook.base}/***"] and "hunter2" not in repr(r)
        svc.abort("m", target=app)
        assert [b["modelyard"]["event"] for b in hook.bodies] == ["abort"]
        status = _yard(store_uri, "rollout", "status", "m", "--json")
        assert "hunter2" not in status.stdout and json.loads(status.stdout)["config"]["webhooks"] == [
            f"{hook.base}/***"
        ]
    finally:
        app.close()
        hook.close()
