"""`yard rollout` and `yard rollback` as a user runs them, against a real server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelyard.serving import build_app
from modelyard.serving._server import running

from .conftest import BASE, Load

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _yard(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # a bound only: `rollout start` returns as soon as its steps saw their samples
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], env=env, capture_output=True, text=True, timeout=900
    )


@pytest.fixture
def server(store: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARD_SERVE_ADMIN_TOKEN", "tok")
    app = build_app(BASE, uri=store)
    with running(app) as h:
        env = {
            **os.environ,
            "PYTHONPATH": SRC,
            "YARD_URI": store,
            "YARD_SERVE_URL": h.url,
            "YARD_SERVE_ADMIN_TOKEN": "tok",
        }
        yield app, h.url, env
    app.close()


def test_blue_green_from_the_cli_prints_each_decision(server: Any) -> None:
    app, url, env = server
    with Load(url, clients=3, headers=lambda i: {"X-Yard-Preview": "1"} if i % 2 else None) as load:
        out = _yard(
            env,
            "rollout",
            "start",
            "m",
            "--to",
            "2",
            "--strategy",
            "blue-green",
            "--preview-analysis",
            "700ms",
            "--interval",
            "700ms",
            "--min-requests",
            "20",
            "--max-error-rate",
            "1%",
        )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(
        "[rollout 1] started: rollout 1 of 'm' (blue_green, version 1 → 2); steps preview → switch"
    )
    assert any("step 1/2 (preview): SUCCESSFUL" in ln for ln in lines)
    assert any("step 2/2 (switch): SUCCESSFUL" in ln for ln in lines)
    assert "promoted version 2 of 'm'" in lines[-1]
    assert load.failed == [] and app.deployment.primary.version == 2
    status = json.loads(_yard(env, "rollout", "status", "m", "--json").stdout)
    assert status["state"] == "promoted" and [e["kind"] for e in status["events"]][-1] == "promote"
    text = _yard(env, "rollout", "status", "m").stdout
    assert "Rollout 1 of m: blue_green, version 1 → 2: PROMOTED" in text and "error_rate" in text
    assert _yard(env, "rollout", "list").stdout.split()[:5] == ["1", "m", "blue_green", "1→2", "promoted"]
    # after a promotion, `yard rollback` moves the alias and the traffic back in one command
    back = _yard(env, "rollback", "m")
    assert (
        back.returncode == 0 and "production alias moved back; m version 1 serves all traffic" in back.stdout
    )
    assert app.deployment.primary.version == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--to", "2", "--max-error-rate", "5"],
            "Error: The rollout is not valid: max-error-rate must be a fraction",
        ),
        (
            ["--to", "2", "--steps", "5,x"],
            "Error: --steps must be percentages separated by commas, like 5,25,50,100.",
        ),
        (
            ["--to", "2", "--strategy", "linear"],
            "Error: The rollout is not valid: strategy: Input should be 'canary', 'blue_green', "
            "'shadow' or 'ab'",
        ),
    ],
)
def test_bad_input_exits_with_one_line(server: Any, args: list[str], message: str) -> None:
    app, _, env = server
    before = app.deployment
    out = _yard(env, "rollout", "start", "m", *args)
    assert out.returncode == 1 and out.stderr.startswith(message), out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
    assert app.deployment is before
