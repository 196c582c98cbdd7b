"""Tables outside a terminal (CI logs, ``| cat``): every value in full, one line per row, never an ellipsis.

Each command is run with stdout not a TTY and a narrow ``COLUMNS`` (CliRunner; two through a real
pipe): before, rich squeezed the columns to a few characters ("g… … a…").
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app

SRC = str(Path(__file__).resolve().parents[2] / "src")
runner = CliRunner()
NARROW = {"COLUMNS": "40"}

EXPERIMENT = "customer-churn-experiment-with-a-long-name"
RUN = "gradient-boosting-with-early-stopping-and-a-long-name"
METRICS = {
    "validation_roc_auc_macro_average": 0.912345,
    "validation_accuracy_at_threshold_half": 0.87,
    "training_log_loss_after_last_epoch": 0.3125,
    "holdout_f1_score_of_the_positive_class": 0.55,
    "calibration_expected_error_ten_bins": 0.0425,
    "time_to_train_the_final_model_seconds": 12.5,
}
DESCRIPTION = "Predicts which customers cancel next month, trained on the 2026 snapshot of every plan"


def _plain(*args: str) -> str:
    res = runner.invoke(app, list(args), env=NARROW)
    assert res.exit_code in (0, 1, 3), res.output
    assert "…" not in res.stdout, (args, res.stdout)
    return res.stdout


def _line_with(out: str, *parts: str) -> str:
    """The one line holding every part (a value split over lines would fail here)."""
    lines = [line for line in out.splitlines() if all(p in line for p in parts)]
    assert lines, f"no line holds all of {parts} in:\n{out}"
    return lines[0]


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_tenure_in_whole_months": rng.integers(0, 72, n) + shift * 40,
            "monthly_charges_in_euros_incl_tax": rng.normal(70, 20, n).round(2) + shift * 30,
            "calls": rng.poisson(1.5, n),
        }
    )
    logit = -0.05 * df.iloc[:, 0] + 0.03 * (df.iloc[:, 1] - 70) + 0.6 * df["calls"]
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Runs, a model with a long description, evaluation data and a six-gate policy (default store)."""
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import RegistryService, register_model

    with yard.start_run(
        experiment=EXPERIMENT, name=RUN, params={"learning_rate_schedule": "cosine-with-warm-restarts"}
    ) as a:
        a.log_metrics(METRICS)
    with yard.start_run(experiment=EXPERIMENT, name=RUN + "-b", capture_env=False) as b:
        b.log_metrics({k: v / 2 for k, v in METRICS.items()})
    df = _frame(400, 1)
    features = list(df.columns[:3])
    model = LogisticRegression(max_iter=500).fit(df[features], df["churned"])
    register_model(model, "customer-churn-classifier", input_example=df[features].head(3))
    RegistryService().update_model("customer-churn-classifier", description=DESCRIPTION)
    df.to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "gates.yaml").write_text(
        "data: {dataset: eval.csv, label: churned}\n"
        "metrics: {roc_auc: {min: 0.6}, f1: {min: 0.1}, accuracy: {min: 0.5}, precision: {min: 0.1}, "
        "recall: {min: 0.99}, log_loss: {max: 1.0}}\n"
    )
    return {"a": a, "b": b, "dir": tmp_path}


def test_runs_tables_show_every_value_in_full(store) -> None:  # type: ignore[no-untyped-def]
    a, b = store["a"], store["b"]
    out = _plain("runs", "list")
    row = _line_with(out, a.id, EXPERIMENT, RUN, "finished")
    header = _line_with(out, "run id", "experiment", "validation_roc_auc_macro_average")
    for key in list(METRICS)[:6]:
        assert key in header
    assert "0.912345" in row and len(row) > 200
    out = _plain("runs", "show", a.id)
    _line_with(out, "learning_rate_schedule", "cosine-with-warm-restarts")
    _line_with(out, "holdout_f1_score_of_the_positive_class", "0.55")
    out = _plain("runs", "compare", a.id, b.id)
    _line_with(out, "metric", "calibration_expected_error_ten_bins", "0.0425", "0.02125", "-0.02125")


def test_models_and_gate_tables_show_every_value_in_full(store) -> None:  # type: ignore[no-untyped-def]
    d = store["dir"]
    out = _plain("models", "list")
    _line_with(out, "customer-churn-classifier", DESCRIPTION)  # no 48-character cap off a terminal
    out = _plain("gate", "customer-churn-classifier/1", "--policy", str(d / "gates.yaml"))
    for gate in ("roc_auc", "f1", "accuracy", "precision", "log_loss"):
        _line_with(out, f"metrics.{gate}", "passed", "on 400 rows; required")
    _line_with(out, "metrics.recall", "failed", "on 400 rows; required >= 0.99")
    assert len(out.splitlines()) < 20  # six gates: six rows, not 150 wrapped lines
    out = _plain(
        "evaluate", "customer-churn-classifier/1", "--data", str(d / "eval.csv"), "--label", "churned"
    )
    _line_with(out, "roc_auc")
    out = _plain("models", "show", "customer-churn-classifier")
    _line_with(out, "evaluations")
    _line_with(out, "1", "ready", "sklearn")
    out = _plain("evaluations", "list", "customer-churn-classifier")
    _line_with(out, "customer-churn-classifier/1", str(d / "eval.csv"), "400")


def test_monitor_tables_show_every_value_in_full(tmp_path: Path) -> None:
    from modelyard.monitoring._alerts import AlertRule, evaluate_rules, store_rules
    from modelyard.tracking._ids import now_ms

    _frame(500, 1).to_csv(tmp_path / "ref.csv", index=False)
    _frame(500, 2, shift=1.0).to_csv(tmp_path / "cur.csv", index=False)
    out = _plain("monitor", "drift", str(tmp_path / "ref.csv"), str(tmp_path / "cur.csv"))
    _line_with(out, "customer_tenure_in_whole_months", "drift: ks p-value past threshold")
    _line_with(out, "monthly_charges_in_euros_incl_tax", "drift: ks p-value past threshold")

    ws = yard.get_workspace()
    rules = [
        AlertRule(
            "tenure-drift-of-long-time-customers",
            "drift_score",
            0.2,
            column="customer_tenure_in_whole_months",
        ),
        AlertRule("too-many-drifted-columns", "share_drifted", 0.5, op=">=", severity="critical"),
    ]
    store_rules(ws, "customer-churn-classifier", rules, now_ms())
    evaluate_rules(
        ws, "customer-churn-classifier", rules, {"tenure-drift-of-long-time-customers": 0.61}, now_ms()
    )
    out = _plain("monitor", "alerts", "customer-churn-classifier")
    # the rule's column has its own column in the table (it was only inside the condition text)
    header = _line_with(out, "rule", "metric", "column", "condition", "severity", "state")
    assert header.index("metric") < header.index("column") < header.index("condition")
    _line_with(
        out,
        "tenure-drift-of-long-time-customers",
        "drift_score",
        " customer_tenure_in_whole_months ",
        "drift_score[customer_tenure_in_whole_months] > 0.2 over 1h",
        "warning",
        "FIRING",
    )
    _line_with(
        out,
        "too-many-drifted-columns",
        "share_drifted",
        " - ",
        "share_drifted >= 0.5 over 1h",
        "critical",
        "ok",
    )
    firing = _line_with(
        out, "tenure-drift-of-long-time-customers", "drift_score[customer_tenure_in_whole_months]", "0.61"
    )
    assert " 0.2 " in firing and "FIRING" not in firing
    data = json.loads(runner.invoke(app, ["monitor", "alerts", "customer-churn-classifier", "--json"]).stdout)
    assert [r["column"] for r in data["rules"]] == ["customer_tenure_in_whole_months", None]


def test_pipeline_tables_show_every_value_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "ptab"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    (folder / "ptab_pipe.py").write_text(
        textwrap.dedent("""
        import modelyard as yard

        @yard.step
        def load_the_customer_snapshot_of_this_month(n: int) -> list:
            return list(range(n))

        @yard.step
        def count_the_customers_in_the_snapshot(xs: list) -> int:
            return len(xs)

        @yard.pipeline(experiment="ptab")
        def pipe(n: int = 3):
            return count_the_customers_in_the_snapshot(load_the_customer_snapshot_of_this_month(n))
    """)
    )
    ref = f"{folder / 'ptab_pipe.py'}:pipe"
    out = _plain("pipeline", "status", ref)
    _line_with(
        out,
        "count_the_customers_in_the_snapshot",
        "run",
        "input from load_the_customer_snapshot_of_this_month",
    )
    res = runner.invoke(app, ["pipeline", "run", ref, "-x", "local", "--json"])
    assert res.exit_code == 0, res.output
    out = _plain("pipeline", "show", json.loads(res.stdout)["run_id"])
    _line_with(out, "load_the_customer_snapshot_of_this_month", "done", "never run before")


def test_through_a_real_pipe_with_a_narrow_columns(store) -> None:  # type: ignore[no-untyped-def]
    d = store["dir"]
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "40"}
    for args in (
        ["runs", "list"],
        ["gate", "customer-churn-classifier/1", "--policy", str(d / "gates.yaml")],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, env=env, timeout=120
        )
        assert proc.returncode in (0, 1), proc.stderr
        assert "…" not in proc.stdout and "\x1b[" not in proc.stdout  # no ellipsis, no colour codes in a log
        if args[0] == "runs":
            _line_with(proc.stdout, store["a"].id, EXPERIMENT, RUN, "finished", "0.912345")
        else:
            _line_with(proc.stdout, "metrics.recall", "failed", "recall = ", "on 400 rows; required >= 0.99")


def test_on_a_narrow_terminal_cells_fold_instead_of_ending_in_an_ellipsis() -> None:
    from rich.table import Table

    from modelyard.cli._common import PIPE_WIDTH, _make_console

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    value = "a-value-of-sixty-characters-that-cannot-fit-in-a-narrow-term"
    t = Table()
    t.add_column("key", no_wrap=True)
    t.add_column("value", overflow="ellipsis", max_width=20)
    t.add_row("k" * 30, value)
    out = Tty()
    con = _make_console(out, file=out, width=30)
    assert con.width == 30 and not con.soft_wrap
    con.print(t)
    text = out.getvalue()
    assert "…" not in text
    cells = "".join(line.split("│")[2].strip() for line in text.splitlines() if line.count("│") == 3)
    assert value in cells and "k" * 30 in "".join(
        line.split("│")[1].strip() for line in text.splitlines() if line.count("│") == 3
    )
    piped = io.StringIO()
    con = _make_console(piped, file=piped)
    assert con.width == PIPE_WIDTH and con.soft_wrap
    t2 = Table()
    t2.add_column("value", overflow="ellipsis", max_width=20)
    t2.add_row(value)
    con.print(t2)
    assert value in piped.getvalue()


def test_stored_text_that_looks_like_rich_markup_is_printed_as_it_is() -> None:
    with yard.start_run(
        experiment="exp[/]x", name="net[bold]", params={"activations": "[relu, tanh]"}, tags={"#t": "[@x]"}
    ) as r:
        r.log_metric("loss[val]", 0.5)
    out = _plain("runs", "list")
    _line_with(out, r.id, "exp[/]x", "net[bold]", "0.5")
    assert "loss[val]" in out
    out = _plain("runs", "show", r.id)
    _line_with(out, "net[bold]", r.id)
    _line_with(out, "activations", "[relu, tanh]")
    _line_with(out, "loss[val]", "0.5")
    _line_with(out, "#t", "[@x]")
