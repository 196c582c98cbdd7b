"""Alert webhooks: env:/file: references, and neither the logs nor the store quote the URL's token."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from modelyard.monitoring._alerts import deliver, evaluate_rules, load_rules, recent_firings
from testkit.cli import yard_subprocess

TOKEN = "T0AAAA/B0BBBB/hunter2secret"
RULES = "rules:\n  - name: drift\n    metric: share_drifted\n    threshold: 0.5\n"


@pytest.fixture
def hook():  # type: ignore[no-untyped-def]
    """A loopback webhook: 200 on /services/<token>, 404 on /gone/<token>; yields (base URL, bodies)."""
    bodies: list[dict[str, Any]] = []

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

    server = HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", bodies
    server.shutdown()
    server.server_close()


def _fire(workspace: Any, t: int, value: float) -> list[Any]:
    rules, _ = load_rules({"rules": [{"name": "drift", "metric": "share_drifted", "threshold": 0.5}]})
    return evaluate_rules(workspace, "m", rules, {"drift": value}, t)


def test_failed_delivery_logs_and_stores_the_host_only(
    workspace, hook, caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = hook
    caplog.set_level(logging.INFO, logger="modelyard")
    deliver(workspace, _fire(workspace, 1_800_000_000_000, 0.9), f"{base}/gone/{TOKEN}")
    firing = recent_firings(workspace, "m")[0]
    assert firing["delivered"] is False
    assert firing["delivery_error"] == (
        f"HTTPStatusError: Client error '404 Not Found' for url '{base}/***'\n"
        "For more information check: https://developer.mozilla.org/***"
    )
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [f"alert webhook {base}/*** failed: {firing['delivery_error']}"]
    assert "hunter2" not in caplog.text


def test_references_resolve_at_each_delivery(
    workspace, hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    base, bodies = hook
    monkeypatch.setenv("YARD_TEST_ALERT_HOOK", f"{base}/services/{TOKEN}")
    deliver(workspace, _fire(workspace, 1_800_000_000_000, 0.9), "env:YARD_TEST_ALERT_HOOK")
    assert len(bodies) == 1 and bodies[0]["text"].startswith("[WARNING] m: drift firing")
    secret = tmp_path / "slack.url"
    secret.write_text(f"{base}/services/{TOKEN}\n")
    deliver(workspace, _fire(workspace, 1_800_000_060_000, 0.1), f"file:{secret}")
    assert len(bodies) == 2 and bodies[1]["text"].startswith("[RESOLVED]")
    monkeypatch.delenv("YARD_TEST_ALERT_HOOK")
    caplog.set_level(logging.INFO, logger="modelyard")
    deliver(workspace, _fire(workspace, 1_800_000_120_000, 0.9), "env:YARD_TEST_ALERT_HOOK")
    firing = recent_firings(workspace, "m")[0]
    assert firing["delivered"] is False and firing["delivery_error"] == (
        "The alert webhook 'env:YARD_TEST_ALERT_HOOK' is empty: the environment variable "
        "YARD_TEST_ALERT_HOOK is not set."
    )
    assert "hunter2" not in caplog.text


def test_cli_monitor_run_refuses_a_reference_that_does_not_resolve(workspace, tmp_path: Path) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text("webhook: file:/nonexistent/slack.url\n" + RULES)
    env = {"YARD_URI": workspace.location.uri, "YARD_ALERT_WEBHOOK": ""}  # "": not set
    p = yard_subprocess("monitor", "run", "m", "--once", "--rules", str(rules), timeout=120, **env)
    assert p.returncode == 1
    assert p.stderr == (
        "Error: The alert webhook 'file:/nonexistent/slack.url' cannot be read: No such file or directory.\n"
    )
    p = yard_subprocess("monitor", "run", "m", "--once", "--webhook", "env:YARD_NOPE", timeout=120, **env)
    assert p.returncode == 1
    assert p.stderr == (
        "Error: The alert webhook 'env:YARD_NOPE' is empty: the environment variable YARD_NOPE is not set.\n"
    )
