"""``yard models`` errors from a real process (the commands and model cards run on every backend in
tests/contract/test_registry_contract.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_cli_errors_are_one_line(tmp_path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC), "YARD_URI": str(tmp_path / "s")}
    p = subprocess.run(
        [sys.executable, "-m", "modelyard", "models", "show", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 1
    assert p.stderr.strip() == (
        "Error: Model 'nope' is not registered. List models with `yard models list`; register one with "
        "run.log_model(model, name=...)."
    )
