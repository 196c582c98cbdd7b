"""``yard models`` commands and model cards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def registered(workspace, churn_frame, sk_model, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARD_URI", workspace.location.uri)
    X, _ = churn_frame
    with yard.start_run(experiment="cli", params={"depth": 2}, uri=workspace) as run:
        for i in range(5):
            run.log_metric("val_loss", 1.0 / (i + 1), step=i)
        run.log_metric("auc", 0.81)
        run.log_model(sk_model, name="churn-clf", input_example=X[:5])
        run.log_model(sk_model, name="churn-clf", input_example=X[:5])
    yard.registry.update_model("churn-clf", description="Predicts churn <next month>", uri=workspace)
    return run


def test_models_cli(registered, tmp_path) -> None:
    r = CliRunner()
    out = r.invoke(app, ["models", "list", "--json"])
    assert out.exit_code == 0, out.output
    (m,) = json.loads(out.output)
    assert m["name"] == "churn-clf" and m["latest_version"] == 2 and m["versions"] == 2

    out = r.invoke(app, ["models", "alias", "churn-clf", "production", "1", "--reason", "first"])
    assert out.exit_code == 0 and "churn-clf@production → version 1" in out.output
    assert r.invoke(app, ["models", "alias", "churn-clf", "production", "2", "-r", "better"]).exit_code == 0
    out = r.invoke(app, ["models", "rollback", "churn-clf", "production", "--reason", "regressed"])
    assert out.exit_code == 0 and "rolled back → version 1" in out.output
    assert r.invoke(app, ["models", "archive", "churn-clf", "2", "--reason", "bad"]).exit_code == 0

    out = r.invoke(app, ["models", "show", "churn-clf", "--json"])
    doc = json.loads(out.output)
    assert doc["aliases"] == {"production": 1}
    assert [v["status"] for v in doc["versions"]] == ["archived", "ready"]
    assert [e["action"] for e in doc["audit"]][-4:] == [
        "alias.set",
        "alias.set",
        "alias.rollback",
        "version.archive",
    ]
    assert doc["versions"][1]["metrics"]["auc"] == pytest.approx(0.81)

    out = r.invoke(app, ["models", "show", "churn-clf", "--version", "production", "--json"])
    doc = json.loads(out.output)
    assert doc["version"] == 1 and doc["aliases"] == ["production"] and doc["run_id"] == registered.id
    assert doc["signature"]["inputs"][0] == {"name": "tenure", "dtype": "int64"}

    out = r.invoke(app, ["models", "show", "churn-clf"])
    assert out.exit_code == 0 and "alias.rollback" in out.output and "regressed" in out.output
    out = r.invoke(app, ["models", "show", "churn-clf@production"])
    assert out.exit_code == 0 and "version 1" in out.output


def test_model_card_markdown_and_html(registered, tmp_path) -> None:
    yard.registry.set_alias("churn-clf", "production", version=1, reason="ship it")
    r = CliRunner()
    out = r.invoke(app, ["models", "card", "churn-clf", "production"])
    assert out.exit_code == 0, out.output
    md = out.output
    for needle in (
        "# Model card: churn-clf version 1",
        "Predicts churn <next month>",
        "| tenure | int64 |",
        "**experiment**: cli",
        "| depth | 2 |",
        "| auc | 0.81 |",
        "scikit-learn==",
        "ship it",
        "alias.set",
    ):
        assert needle in md, needle
    dest = tmp_path / "card.html"
    out = r.invoke(app, ["models", "card", "churn-clf", "1", "--html", str(dest)])
    assert out.exit_code == 0, out.output
    page = dest.read_text()
    assert (
        page.startswith("<!doctype html>")
        and "<script" not in page
        and "http" not in page.split("</style>")[0]
    )
    assert page.count("<svg") == 2  # the metric bars, and val_loss over steps (auc has one point: no line)
    assert "Predicts churn &lt;next month&gt;" in page and "val_loss over steps" in page


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
