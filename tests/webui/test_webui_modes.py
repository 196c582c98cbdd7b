"""``yard ui`` (loopback, no login) and the trusted-header mode of the UI."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_yard_ui_serves_the_local_store_without_a_login(tmp_path: Path) -> None:
    import modelyard as yard

    store = tmp_path / "store"
    with yard.start_run(experiment="local-exp", uri=str(store)) as r:
        r.log_metric("m", 1.0)
    env = {**os.environ, "YARD_URI": str(store), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelyard", "ui", "--no-browser"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        for _ in range(50):  # lines before the address (warnings) are skipped
            line = proc.stderr.readline()
            if "modelyard UI on" in line or not line:
                break
        m = re.search(r"(http://127\.0\.0\.1:\d+/ui/)", line)
        assert m, line
        with urllib.request.urlopen(m.group(1) + "experiments/local-exp", timeout=60) as resp:
            html = resp.read().decode()
        assert resp.status == 200 and "local-exp" in html and "anonymous · admin" in html
        assert "Log out" not in html  # nothing to log out of
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def test_yard_ui_refuses_a_server_url() -> None:
    from typer.testing import CliRunner

    from modelyard.cli import app

    result = CliRunner().invoke(app, ["ui", "--uri", "http://example.invalid:8080", "--no-browser"])
    assert result.exit_code == 1 and "team server" in result.output


def test_header_mode_takes_the_user_from_the_proxy(server: dict[str, Any], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from modelyard.server import ServerSettings, create_app

    app = create_app(ServerSettings(auth="header"), workspace=server["ws"])
    c = TestClient(app)
    assert c.get("/ui/").status_code == 401
    page = c.get("/ui/experiments/exp", headers={"X-Forwarded-User": "rita"})
    assert page.status_code == 200 and "rita · reader" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is None  # no log-out form: the proxy owns the session
