"""``yard automate``: apply, list --json, trigger --now, history, show; errors exit 1 naming the line."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from modelyard.cli import app

from .conftest import add_data, write

FILE = """
- name: nightly
  model: clf
  on:
    - schedule: {cron: "0 4 * * *", timezone: America/New_York}
  run: pipelines/train.py:train_pipeline
  then:
    gate: strict.yaml
"""


def test_apply_list_trigger_history_show(project: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    add_data(str(tmp_path / ".yard"))  # the test's default store (YARD_URI)
    add_data(str(tmp_path / ".yard"), name="test", seed=2)
    path = write(project, FILE)
    res = runner.invoke(app, ["automate", "apply", str(path)])
    assert res.exit_code == 0, res.output
    assert "created automation nightly" in res.output
    res = runner.invoke(app, ["automate", "list", "--json"])
    (a,) = json.loads(res.output)
    assert a["triggers"] == ["schedule 0 4 * * * (America/New_York)"] and a["steps"] == ["pipeline", "gate"]
    # the next tick in the automation's own zone, named, with its offset (never bare UTC)
    import datetime as dt
    from zoneinfo import ZoneInfo

    at = dt.datetime.fromisoformat(a["next_tick_at"])
    assert a["next_tick_zone"] == "America/New_York" and (at.hour, at.minute) == (4, 0)
    assert at.utcoffset() == at.astimezone(ZoneInfo("America/New_York")).utcoffset()
    assert int(at.timestamp() * 1000) == a["next_tick"]
    res = runner.invoke(app, ["automate", "list"], terminal_width=200)
    offset = at.strftime("%z")
    assert f"{at:%Y-%m-%d} 04:00 America/New_York (UTC{offset[:3]}:{offset[3:]})" in res.output, res.output
    res = runner.invoke(app, ["automate", "trigger", "nightly", "--reason", "try it", "--now"])
    assert res.exit_code == 0, res.output
    # the strict gate (accuracy ≥ 0.999) fails: the run stops there, saying why
    assert "FAILED — gates failed on version 1 (metrics.accuracy); no rollout starts" in res.output
    assert "run 1: failed" in res.output
    res = runner.invoke(app, ["automate", "history", "nightly", "--json"])
    (run,) = json.loads(res.output)
    assert run["state"] == "failed" and [s["state"] for s in run["steps"]] == ["ok", "failed"]
    assert run["reason"] == "manual by " + run["created_by"] + ": try it"
    res = runner.invoke(app, ["automate", "history", "nightly"], terminal_width=200)
    assert res.exit_code == 0 and "pipeline:ok → gate:failed" in res.output and "clf v1" in res.output
    res = runner.invoke(app, ["automate", "show", "1"])
    assert "2. gate: failed — gates failed on version 1" in res.output


def test_errors_exit_1_with_the_file_and_line(project: Path) -> None:
    runner = CliRunner()
    path = write(project, FILE.replace("0 4 * * *", "0 25 * * *"))
    res = runner.invoke(app, ["automate", "trigger", "nigthly", "--reason", "x"])
    assert res.exit_code != 0 and "There is no automation 'nigthly'" in str(res.exception)
    # the console script prints the error and exits 1
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "modelyard", "automate", "apply", str(path)], capture_output=True, text=True
    )
    assert out.returncode == 1, out
    assert f"{path}:4: automation 'nightly': invalid cron expression '0 25 * * *'" in out.stderr + out.stdout
