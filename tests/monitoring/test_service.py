"""Alert rules that are explained when wrong, and `yard monitor run` looping until Ctrl-C (the end-to-end
monitoring tests run on every backend in tests/contract/test_monitoring_contract.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.errors import InvalidArgumentError
from modelyard.monitoring import load_rules
from testkit.monitoring import churn_traffic

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "rules:\n  - name: x\n    metric: share_drifed\n    threshold: 1\n",
            "unknown metric 'share_drifed'. Did you mean 'share_drifted'?",
        ),
        (
            "rules:\n  - name: x\n    metric: drift_score\n    threshold: 1\n",
            "metric 'drift_score' needs a 'column'",
        ),
        (
            "rules:\n  - name: x\n    metric: rows\n    threshold: 1\n    window: soon\n",
            "'window' of rule 'x' must be a positive duration",
        ),
        (
            "rules:\n  - name: x\n    metric: rows\n    threshold: 1\n    severity: huge\n",
            "'severity' must be one of",
        ),
        (
            "rules:\n  - name: x\n    metric: rows\n    threshold: 1\n  - name: x\n    metric: "
            "rows\n    threshold: 2\n",
            "repeated: ['x']",
        ),
        ("rules:\n  - name: x\n    metric: rows\n    threshold: 1\n    when: now\n", "unknown keys ['when']"),
        ("nothing: here\n", "expected a top-level 'rules:' list"),
    ],
)
def test_bad_rules_are_explained(tmp_path: Path, doc: str, message: str) -> None:
    p = tmp_path / "r.yml"
    p.write_text(doc)
    with pytest.raises(InvalidArgumentError) as exc:
        load_rules(p)
    assert message in str(exc.value)


def test_monitor_run_loops_until_ctrl_c(tmp_path: Path) -> None:
    import signal

    ref = tmp_path / "ref.parquet"
    churn_traffic(200, 5).to_parquet(ref)
    env = {**os.environ, "PYTHONPATH": SRC, "YARD_URI": str(tmp_path / "store")}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelyard",
            "monitor",
            "run",
            "ghost",
            "--every",
            "1s",
            "--reference",
            str(ref),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = [p.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]  # two evaluations
        assert all(line.startswith("ghost: 0 rows") for line in lines), lines
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and "monitor stopped (Ctrl-C)" in err
