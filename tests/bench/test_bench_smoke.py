"""Keep bench/tracking.py from rotting: run its --quick mode (no timing assertions)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_tracking_benchmark_quick_runs_every_section(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    env.pop("YARD_URI", None)
    out_json = tmp_path / "figures.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "tracking.py"),
            "--quick",
            "--no-peer",
            "--json",
            str(out_json),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for section in (
        "[1] ingestion to commit of",
        "[2] what a training loop waits on per log_metric call",
        "[3] search_runs over",
        "[4] CLI start-up",
        "ratio modelyard/raw",
    ):
        assert section in proc.stdout, proc.stdout
    import json

    figures = json.loads(out_json.read_text())
    assert figures["ingest"]["points"] == figures["raw_ingest"]["points"] == 50_000
    assert figures["search"]["found"] > 0
    assert figures["log_rate"]["rate"] > 0 and figures["yard_help"]["median"] > 0
