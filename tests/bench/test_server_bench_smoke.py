"""Keep bench/server.py from rotting: run --quick against a real `yard server` (no timing assertions)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_server_benchmark_quick_runs_every_section(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("YARD_URI", None)
    out_json = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "server.py"), "--quick", "--no-peer", "--json", str(out_json)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for section in (
        "[1] remote metric ingestion through the server",
        "[2] search_runs through the server over 2,000 runs",
        "[3] 6 concurrent clients",
        "[4] one 16 MiB artifact up and down",
        "ratio modelyard/raw: upload",
    ):
        assert section in proc.stdout, proc.stdout
    figures = json.loads(out_json.read_text())
    assert figures["ingest"]["run"]["points"] == figures["ingest"]["raw"]["points"] == 50_000
    assert figures["search"]["ours"]["found"] > 0
    mix = figures["mix"]["ours"]
    assert mix["errors"] == 0 and all(v["n"] > 0 for v in mix["by_kind"].values())
    assert figures["big"]["ours"]["bytes"] == figures["big"]["raw"]["bytes"] == 16 << 20
