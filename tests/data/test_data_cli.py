"""``yard data ...`` and ``yard validate data ...`` from the command line, lineage in ``yard runs show``."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app
from testkit.cli import yard_subprocess


def _frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {"tenure": rng.integers(0, 72, n), "plan": rng.choice(["basic", "pro"], n), "x": rng.normal(0, 1, n)}
    )


def test_data_commands(tmp_path: Path) -> None:
    r = CliRunner()
    f = tmp_path / "train.parquet"
    _frame().to_parquet(f)
    out = r.invoke(app, ["data", "add", str(f), "--name", "churn-train"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("added churn-train@v1 ") and "1,000 rows" in out.output
    again = r.invoke(app, ["data", "add", str(f), "--name", "churn-train"])
    assert again.output.startswith("unchanged, still churn-train@v1")
    _frame(seed=2).to_parquet(f)
    v2 = json.loads(r.invoke(app, ["data", "add", str(f), "-n", "churn-train", "--json"]).output)
    assert v2["ref"] == "churn-train@v2" and v2["rows"] == 1000 and v2["new"] is True

    listed = json.loads(r.invoke(app, ["data", "list", "--json"]).output)
    assert [(d["name"], d["versions"]) for d in listed] == [("churn-train", 2)]
    assert "churn-train" in r.invoke(app, ["data", "list"]).output

    with yard.start_run(experiment="cli", name="train-it") as run:
        run.use_dataset("churn-train@v1")
    shown = r.invoke(app, ["data", "show", "churn-train@v1"])
    assert (
        shown.exit_code == 0
        and "tenure" in shown.output
        and "train-it" in shown.output
        and run.id[:12] in shown.output
    )
    info = json.loads(r.invoke(app, ["data", "show", "churn-train@v1", "--json"]).output)
    assert info["runs"][0]["id"] == run.id
    runs_show = r.invoke(app, ["runs", "show", run.id])
    assert "dataset inputs" in runs_show.output and "churn-train@v1" in runs_show.output
    assert (
        json.loads(r.invoke(app, ["runs", "show", run.id, "--json"]).output)["inputs"][0]["ref"]
        == "churn-train@v1"
    )

    d = r.invoke(app, ["data", "diff", "churn-train@v1", "churn-train@v2"])
    assert d.exit_code == 0 and "~ train.parquet" in d.output and "PSI" in d.output
    dj = json.loads(r.invoke(app, ["data", "diff", "churn-train@v1", "churn-train@v2", "--json"]).output)
    assert dj["files"]["changed"][0]["path"] == "train.parquet"

    got = r.invoke(app, ["data", "get", "churn-train@v1", str(tmp_path / "out")])
    assert got.exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out" / "train.parquet"), _frame())

    schema = r.invoke(app, ["data", "schema", "churn-train@v1"])
    assert (
        schema.exit_code == 0
        and "reference: churn-train@v1" in schema.output
        and "values: [basic, pro]" in schema.output
    )
    (tmp_path / "expectations.yaml").write_text(schema.output)

    good = tmp_path / "good.parquet"
    _frame(500, 5).to_parquet(good)
    ok = r.invoke(app, ["validate", "data", str(good), "--suite", str(tmp_path / "expectations.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "0 failed" in ok.output
    bad = _frame(500, 6)
    bad["x"] += 5
    bad.loc[0, "plan"] = "gold"
    bad.to_parquet(tmp_path / "bad.parquet")
    html, junit = tmp_path / "r.html", tmp_path / "r.xml"
    res = r.invoke(
        app,
        [
            "validate",
            "data",
            str(tmp_path / "bad.parquet"),
            "--against",
            "churn-train@v1",
            "--html",
            str(html),
            "--junit",
            str(junit),
        ],
    )
    assert res.exit_code == 1 and "x" in res.output and "failed" in res.output
    assert "<svg" in html.read_text() and ET.parse(junit).getroot().get("failures") != "0"
    js = r.invoke(
        app, ["validate", "data", str(tmp_path / "bad.parquet"), "--against", "churn-train@v1", "--json"]
    )
    assert js.exit_code == 1 and json.loads(js.output)["ok"] is False


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    env_uri = os.environ["YARD_URI"]
    assert env_uri
    p = yard_subprocess("data", "add", str(tmp_path / "missing.csv"), "--name", "x", cwd=tmp_path)
    assert (
        p.returncode == 1
        and p.stderr.strip().startswith("Error: Cannot add ")
        and "no such file or folder" in p.stderr
    )
    assert len(p.stderr.strip().splitlines()) == 1
    p = yard_subprocess(
        "validate", "data", str(tmp_path / "missing.csv"), "--against", "nope@v1", cwd=tmp_path
    )
    assert p.returncode == 1 and p.stderr.startswith("Error: Dataset 'nope' does not exist.")


def test_quickstart_data_chapter(tmp_path: Path) -> None:
    from modelyard.quickstart import run_quickstart

    lines: list[str] = []
    ctx = run_quickstart(str(tmp_path / "qs"), say=lines.append)
    assert ctx.state["dataset"] == "churn-train@v1"
    report = ctx.state["validation"]
    assert not report.ok and {"monthly_charges.distribution", "plan.values"} <= {
        f.name for f in report.failures
    }
    assert (tmp_path / "qs" / "quickstart-validation.html").read_text().count("<svg") == 5
    # the tracked run read it (the pipelines chapter's `features` step run reads it too)
    assert ctx.state["run_id"] in [
        r["id"] for r in yard.data.show("churn-train@v1", uri=str(tmp_path / "qs"))["runs"]
    ]
