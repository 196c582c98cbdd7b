"""The README's breast-cancer walk-through (examples/breast_cancer.py) runs end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "breast_cancer.py"


@pytest.mark.slow
def test_breast_cancer_walkthrough_no_false_alarm_corruption_caught(tmp_path: Path) -> None:
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}
    out = tmp_path / "walk"
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text
    assert "Traceback" not in text, text
    assert "FAIL" not in proc.stdout, text
    # no false alarm: the clean test split and replayed test traffic
    assert "▸ validate the test split: 0 failed" in proc.stdout
    assert "ok    the clean test split passes every inferred expectation (no false alarm)" in proc.stdout
    assert "columns drifted" in proc.stdout and "0 of 30 columns drifted" in proc.stdout
    # the corruption is caught, each break named
    assert "✗ mean texture.max_null_fraction: 171 of 171 rows are null" in proc.stdout
    assert "✗ mean radius.max: 1 row(s) above" in proc.stdout
    assert (
        "✗ worst area.column_present: column 'worst area' is not in the data. Did you mean 'worst_area'?"
        in proc.stdout
    )
    # the requests a client sends: answered, or refused with the reason
    assert (
        "a misspelt column      → 422: [\"missing column 'mean radius'\", \"unexpected column 'mean raduis'. "
        "Did you mean 'mean radius'?\"]" in proc.stdout
    )
    assert (
        "a null value           → 422: [\"column 'mean area' has 1 missing value(s) but the "
        'signature allows none"]' in proc.stdout
    )
    assert proc.stdout.rstrip().endswith("walk-through passed")
    reports = sorted(p.name for p in out.glob("*.html"))
    assert reports == ["drift.html", "model-card.html", "validation-corrupt.html", "validation-test.html"]
    for name in reports:
        html = (out / name).read_text()
        assert html.lstrip().lower().startswith("<!doctype html") and "<script" not in html.lower(), name
