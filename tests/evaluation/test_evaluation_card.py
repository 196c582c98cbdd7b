"""The model card's Evaluations section after a champion comparison (a roc_auc-only record of the
champion)."""

from __future__ import annotations

import re

from modelyard.evaluation import evaluate, list_evaluations, parse_policy, run_gates
from testkit.evaluation import register


def test_champion_comparison_does_not_hide_the_full_evaluation_or_its_slice_chart(
    churn, good_model, weak_model
):
    from modelyard.registry import model_card, set_alias

    register(good_model, None)  # v1: the champion
    register(weak_model, None)  # v2: the candidate
    evaluate("churn-clf/1", churn, label="churned", slices="plan")
    set_alias("churn-clf", "production", 1)
    policy = parse_policy("champion: {roc_auc: {max_drop: 0.5}}\ndata: {label: churned}\n", source="g.yaml")
    run_gates("churn-clf/2", policy, data=churn)
    newest = list_evaluations("churn-clf/1")[0]
    assert set(newest.metrics) == {"roc_auc"} and newest.slices == {}  # what used to become the "latest" row

    card = model_card("churn-clf", 1)
    page, md = card.to_html(), card.to_markdown()
    section = page.split("<h2>Evaluations</h2>")[1].split("<h2>")[0]
    assert "<td></td>" not in section  # no blank cells
    assert (
        "<svg" in section and "roc_auc by plan on frame" in section
    )  # the slice chart of the full evaluation
    full_table, rest = section.split("</table>", 1)
    assert (
        "<th>log_loss</th>" in full_table and full_table.count("<tr>") == 2
    )  # header + the one full evaluation
    assert "Comparisons and partial evaluations" in rest
    assert re.search(r"<td>roc_auc 0\.\d+</td>", rest)
    md_section = md.split("## Evaluations")[1].split("\n## ")[0]
    rows = [line for line in md_section.splitlines() if line.startswith("| ")]
    assert len(rows) == 4 and all("|  |" not in line and "| |" not in line for line in rows), md_section
    assert "roc_auc by plan: plan=basic" in md_section


def test_card_with_only_a_partial_evaluation_shows_it_without_blank_cells(churn, good_model):
    from modelyard.registry import model_card

    register(good_model, None)
    evaluate("churn-clf/1", churn, label="churned", metrics=["f1", "accuracy"])
    page = model_card("churn-clf", 1).to_html()
    section = page.split("<h2>Evaluations</h2>")[1].split("<h2>")[0]
    assert "<td></td>" not in section and section.count("<table>") == 1
    assert re.search(r"<td>f1 0\.\d+, accuracy 0\.\d+</td>", section)


def test_models_show_marks_metrics_an_evaluation_did_not_compute(churn, good_model):
    from typer.testing import CliRunner

    from modelyard.cli import app

    register(good_model, None)
    evaluate("churn-clf/1", churn, label="churned", metrics=["roc_auc"])
    evaluate("churn-clf/1", churn, label="churned", metrics=["accuracy"])
    res = CliRunner().invoke(app, ["models", "show", "churn-clf"], env={"COLUMNS": "250"})
    assert res.exit_code == 0, res.output
    rows = [line.split() for line in res.output.splitlines() if " frame " in line]
    # id, version, data, rows, when (date time), gates, accuracy, roc_auc: each row one value and one "-"
    assert [len(r) for r in rows] == [9, 9], rows
    assert rows[0][-2] != "-" and rows[0][-1] == "-" and rows[1][-2] == "-" and rows[1][-1] != "-", rows
