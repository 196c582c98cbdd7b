"""CI cannot turn green by skipping: with ``CI`` set, a missing service fails the tests that need it;
every test has a timeout (a hang fails with every thread's stack)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pytest(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "YARD_TEST_PG": "postgresql://postgres@127.0.0.1:9/test",
        **env,
    }
    full.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rsf",
            str(ROOT / "tests" / "test_smoke.py"),
            "-k",
            "postgresql",
            "--rootdir",
            str(ROOT),
        ],
        cwd=tmp_path,
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_missing_postgres_fails_under_ci_and_skips_otherwise(tmp_path: Path) -> None:
    out = _pytest(tmp_path, CI="1")
    assert out.returncode == 1, out.stdout[-2000:]
    assert (
        "CI is set, so a missing service fails the run instead of skipping it: PostgreSQL at "
        "postgresql://postgres@127.0.0.1:9/test did not answer"
    ) in out.stdout
    local = _pytest(tmp_path, CI="")  # a developer's machine without PostgreSQL: skipped, with the reason
    assert local.returncode == 0, local.stdout[-2000:]
    assert (
        "1 skipped" in local.stdout
        and "PostgreSQL at postgresql://postgres@127.0.0.1:9/test did not answer" in local.stdout
    )


def test_every_test_has_a_generous_timeout_that_dumps_stacks() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    ini = project["tool"]["pytest"]["ini_options"]
    assert ini["timeout"] == 600 and ini["timeout_method"] == "thread"
    assert any(
        dep.startswith("pytest-timeout") for dep in project["project"]["optional-dependencies"]["test"]
    )
