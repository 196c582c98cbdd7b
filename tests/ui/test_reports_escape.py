"""Every HTML report escapes what comes from data: a ``<script>`` column name, an ``<img onerror>``
category value, a description with markup. None of them may reach the page as markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace

import numpy as np
import pandas as pd

import modelyard as yard

SCRIPT = "<script>alert('col')</script>"
IMG = '<img src=x onerror="alert(1)">'


def assert_inert(page: str) -> None:
    assert "<script" not in page and "<img" not in page and 'onerror="' not in page
    assert "&lt;script&gt;" in page and "&lt;img src=x onerror=" in page


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            SCRIPT: rng.normal(shift, 1, n),
            "plan": rng.choice(["basic", IMG], n),
            "y": rng.integers(0, 2, n),
        }
    )


def test_validation_report_escapes_column_names_and_values() -> None:
    yard.data.add(_frame(300, 0), name="xss-train")
    bad = _frame(200, 1, shift=5.0)
    bad.loc[:20, "plan"] = IMG + "-new"
    report = yard.validate(bad, against="xss-train@v1")
    assert not report.ok and any(r.column == SCRIPT for r in report.failures)
    assert_inert(report.to_html())


def test_drift_report_escapes_column_names_and_categories() -> None:
    r = yard.drift(_frame(300, 0), _frame(300, 1, shift=2.0))
    r.title = SCRIPT
    assert SCRIPT in r.drifted_columns
    assert_inert(r.to_html())


def test_model_card_escapes_descriptions_signature_params_and_slices() -> None:
    from sklearn.linear_model import LogisticRegression

    from modelyard.evaluation import evaluate
    from modelyard.registry import model_card, update_model

    df = _frame(300, 0)
    X = df[[SCRIPT]]
    with yard.start_run(experiment="xss") as run:
        run.log_params({"note": IMG})
        run.log_model(LogisticRegression().fit(X, df["y"]), name="xss-clf", input_example=X[:5])
    update_model("xss-clf", description=SCRIPT)
    evaluate("xss-clf/1", df, label="y", slices="plan")
    card = model_card("xss-clf", 1)
    page = card.to_html()
    assert_inert(page)
    assert "plan=&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page  # the slice chart's bar label


def test_dag_svg_escapes_step_names() -> None:
    from modelyard.pipelines._graph import Graph, Node
    from modelyard.pipelines._render import dag_svg

    edges = {SCRIPT: [], IMG: [SCRIPT]}
    nodes = {n: Node(n, lambda: None, SimpleNamespace(name=n), {}, ups) for n, ups in edges.items()}
    svg = dag_svg(Graph(SCRIPT, SCRIPT, {}, nodes), {SCRIPT: "done"})
    assert_inert(svg)
    root = ET.fromstring(svg)  # well-formed: quotes in attributes escaped too
    assert [g.get("data-node") for g in root.iter("{http://www.w3.org/2000/svg}g")] == [SCRIPT, IMG]
