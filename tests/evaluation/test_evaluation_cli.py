"""``yard evaluate`` / ``yard gate`` errors and model cards with evaluations. ``yard evaluate``, ``yard
gate``, ``yard policy`` and ``yard evaluations`` run on every backend in
tests/contract/test_evaluation_contract.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.errors import InvalidArgumentError
from testkit.evaluation import register

SRC = str(Path(__file__).resolve().parents[2] / "src")
runner = CliRunner()


def _setup(tmp_path, churn, model):  # type: ignore[no-untyped-def]
    register(model, None)
    churn.to_csv(tmp_path / "eval.csv", index=False)
    return tmp_path / "eval.csv"


def test_cli_errors_are_one_line_naming_the_problem(tmp_path, churn, good_model):
    _setup(tmp_path, churn, good_model)
    (tmp_path / "typo.yaml").write_text("metrics:\n  roc_auc: {min: 0.8}\nchampoin: {alias: production}\n")
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run(
        [sys.executable, "-m", "modelyard", "gate", "churn-clf/1", "--policy", str(tmp_path / "typo.yaml")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: The gate policy")
    assert "typo.yaml:3: champoin: unknown key 'champoin'. Did you mean 'champion'?" in proc.stderr
    assert "Traceback" not in proc.stderr
    res = runner.invoke(
        app, ["evaluate", "churn-clf/1", "--data", str(tmp_path / "eval.csv"), "--label", "churnd"]
    )
    assert res.exit_code != 0
    assert "The label column 'churnd' is not in the evaluation data. Did you mean 'churned'?" in str(
        res.exception
    )


def test_models_show_card_and_alias_force_show_the_gates(tmp_path, churn, good_model, weak_model):
    from modelyard.registry import model_card

    _setup(tmp_path, churn, good_model)
    register(weak_model, None)
    (tmp_path / "gates.yaml").write_text(
        "data: {dataset: eval.csv, label: churned, slices: [plan]}\nmetrics: {roc_auc: {min: 0.7}}\n"
    )
    assert runner.invoke(app, ["policy", "attach", "churn-clf", str(tmp_path / "gates.yaml")]).exit_code == 0
    res = runner.invoke(app, ["models", "alias", "churn-clf", "production", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["models", "alias", "churn-clf", "production", "2"])
    assert res.exit_code != 0 and "Refusing to move alias 'production'" in str(res.exception)
    res = runner.invoke(
        app,
        [
            "models",
            "alias",
            "churn-clf",
            "production",
            "2",
            "--force",
            "--reason",
            "hotfix, approved by on-call",
        ],
    )
    assert res.exit_code == 0, res.output

    res = runner.invoke(app, ["models", "show", "churn-clf", "--version", "2", "--json"])
    shown = json.loads(res.stdout)
    assert [e["gates"]["trigger"] for e in shown["evaluations"]] == ["forced", "promotion"]
    assert shown["evaluations"][0]["gates"]["failed"] == ["metrics.roc_auc"]
    assert shown["audit"][-1]["detail"]["gates"]["forced"] is True
    res = runner.invoke(app, ["models", "show", "churn-clf"], env={"COLUMNS": "250"})
    assert (
        res.exit_code == 0
        and "evaluations" in res.stdout
        and "failed: metrics.roc_auc (forced)" in res.stdout
    )

    card = model_card("churn-clf", 1)
    md, page = card.to_markdown(), card.to_html()
    assert "## Evaluations" in md and "passed (promotion)" in md and "roc_auc by plan: plan=basic" in md
    assert "<h2>Evaluations</h2>" in page and "<svg" in page.split("<h2>Evaluations</h2>")[1]


def test_a_mistyped_metric_suggests_one_that_fits_the_task(tmp_path, churn, good_model):
    from modelyard.evaluation._metrics import metric_spec

    data = _setup(tmp_path, churn, good_model)
    # yard evaluate: the binary task is inferred, then f1_scor is matched to f1 (sklearn's f1_score), not
    # f1_macro
    res = runner.invoke(
        app, ["evaluate", "churn-clf/1", "--data", str(data), "--label", "churned", "--metrics", "f1_scor"]
    )
    assert res.exit_code == 1
    message = str(res.exception)
    assert message.startswith("unknown metric 'f1_scor'. Did you mean 'f1'? Metrics for binary: accuracy, ")
    assert "mae" not in message  # only the metrics of the task are listed
    # a gate policy that names its task
    (tmp_path / "g.yaml").write_text(
        "task: binary\ndata: {dataset: eval.csv, label: churned}\nmetrics:\n  f1_scor: {min: 0.5}\n"
    )
    res = runner.invoke(app, ["policy", "check", str(tmp_path / "g.yaml")])
    assert res.exit_code == 1
    assert "g.yaml:4: metrics.f1_scor: unknown metric 'f1_scor'. Did you mean 'f1'?" in str(res.exception)
    (tmp_path / "m.yaml").write_text(
        "task: multiclass\nmetrics:\n  f1_scor: {min: 0.5}\n  recal: {min: 0.5}\n"
    )
    res = runner.invoke(app, ["policy", "check", str(tmp_path / "m.yaml")])
    assert "m.yaml:3: metrics.f1_scor: unknown metric 'f1_scor'. Did you mean 'f1_macro'?" in str(
        res.exception
    )
    assert "m.yaml:4: metrics.recal: unknown metric 'recal'. Did you mean 'recall_macro'?" in str(
        res.exception
    )
    # the library call, per task; keys of the gate itself still win when they are closer
    for task, typed, meant in [
        ("binary", "f1_scor", "f1"),
        ("multiclass", "f1_scor", "f1_macro"),
        ("regression", "mean_absolute_eror", "mae"),
        ("binary", "roc_auc_scor", "roc_auc"),
        ("regression", "rsme", "rmse"),
        (None, "f1_scor", "f1"),
    ]:
        with pytest.raises(InvalidArgumentError) as info:
            metric_spec(typed, task)
        assert f"unknown metric {typed!r}. Did you mean {meant!r}?" in str(info.value), (
            task,
            typed,
            str(info.value),
        )
    (tmp_path / "k.yaml").write_text("metrics:\n  f1: {mni: 0.5}\n")
    res = runner.invoke(app, ["policy", "check", str(tmp_path / "k.yaml")])
    assert (
        "k.yaml:2: metrics.f1.mni: unknown key 'mni'. Did you mean 'min'? Allowed keys here: min, max."
        in str(res.exception)
    )
