"""Evaluation records, gates against the champion, protected aliases, and reports, on a real store."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from modelyard.errors import InvalidArgumentError
from modelyard.evaluation import (
    GateStatus,
    attach_policy,
    evaluate,
    list_evaluations,
    parse_policy,
    run_gates,
    to_junit_xml,
)
from testkit.evaluation import FEATURES, register


def test_evaluation_is_stored_and_linked_to_model_and_dataset_versions(workspace, churn, good_model):
    import modelyard.data as ydata

    register(good_model, workspace)
    ydata.add(churn, name="churn-test", uri=workspace)
    ev = evaluate("churn-clf/1", "churn-test@v1", label="churned", slices="plan", uri=workspace)
    assert ev.task == "binary" and ev.n_rows == len(churn)
    expected = roc_auc_score(churn["churned"], good_model.predict_proba(churn[FEATURES])[:, 1])
    assert ev.metrics["roc_auc"] == pytest.approx(expected)
    assert set(ev.slices["plan"]) == {"basic", "pro", "team"}

    stored = list_evaluations("churn-clf/1", uri=workspace)
    assert [e.id for e in stored] == [ev.id]
    got = stored[0]
    assert (got.model_name, got.model_version, got.dataset_name, got.dataset_version) == (
        "churn-clf",
        1,
        "churn-test",
        "v1",
    )
    assert got.metrics["roc_auc"] == pytest.approx(expected)
    assert got.slices["plan"]["pro"]["n"] == int((churn["plan"] == "pro").sum())
    assert got.data_digest == ev.data_digest and len(got.data_digest) == 64
    assert list_evaluations("churn-clf/2", uri=workspace) == []


def test_label_errors_name_the_column(churn, good_model):
    with pytest.raises(
        InvalidArgumentError,
        match=r"The label column 'churn' is not in the evaluation data\. Did you mean 'churned'\?",
    ):
        evaluate(good_model, churn, label="churn")
    with pytest.raises(InvalidArgumentError, match=r"Name the label column with label=\.\.\. \(--label\)"):
        evaluate(good_model, churn)


def test_first_model_passes_the_champion_gate_by_policy_and_says_so(churn, good_model):
    register(good_model, None)
    policy = parse_policy(
        "metrics: {roc_auc: {min: 0.6}}\nchampion: {roc_auc: {max_drop: 0.01}}\ndata: {label: churned}\n",
        source="g.yaml",
    )
    report = run_gates("churn-clf/1", policy, data=churn)
    assert report.passed
    champ = next(r for r in report.results if r.gate == "champion.roc_auc")
    assert champ.status is GateStatus.WAIVED
    assert "no version of 'churn-clf' holds alias 'production' yet (first model)" in champ.explanation
    assert "passed by policy (champion.if_missing: pass)" in champ.explanation

    strict = parse_policy(
        "champion: {if_missing: fail, roc_auc: {max_drop: 0.01}}\ndata: {label: churned}\n", source="g.yaml"
    )
    report = run_gates("churn-clf/1", strict, data=churn)
    assert not report.passed
    assert "failed by policy (champion.if_missing: fail)" in report.failed[0].explanation


def test_champion_comparison_is_direction_aware(churn, good_model, weak_model):
    from modelyard.registry import set_alias

    register(good_model, None)  # v1: the champion
    register(weak_model, None)  # v2: worse
    set_alias("churn-clf", "production", 1)
    policy = parse_policy(
        "champion: {roc_auc: {max_drop: 0.01}, log_loss: {max_drop: 0.01}, accuracy: {max_drop: "
        "0.5, relative: true}}\n"
        "data: {label: churned}\n",
        source="g.yaml",
    )
    report = run_gates("churn-clf/2", policy, data=churn)
    by = {r.gate: r for r in report.results}
    assert report.champion == "churn-clf/1"
    assert by["champion.roc_auc"].status is GateStatus.FAILED
    assert by["champion.roc_auc"].observed < -0.01
    assert "(higher is better)" in by["champion.roc_auc"].explanation
    # log_loss: lower is better, so a higher loss is a negative change
    assert by["champion.log_loss"].status is GateStatus.FAILED and by["champion.log_loss"].observed < 0
    assert "(lower is better)" in by["champion.log_loss"].explanation
    assert (
        by["champion.accuracy"].status is GateStatus.PASSED
        and "(relative)" in by["champion.accuracy"].explanation
    )
    # the other way round the candidate improves
    set_alias("churn-clf", "production", 2)
    report = run_gates("churn-clf/1", policy, data=churn)
    assert report.passed and all(r.observed > 0 for r in report.results if r.gate != "champion.accuracy")


def test_slice_latency_and_behavior_gates_on_a_loaded_model(churn, good_model):
    register(good_model, None)
    policy = parse_policy(
        """\
data: {label: churned}
slices: {plan: {roc_auc: {min: 0.99}, min_rows: 150}}
latency: {p95_ms: {max: 10000}, batch: 4, runs: 10}
behavior:
  rows: 100
  invariance: [{column: customer_id}, {column: calls, perturb: noise, scale: 1.0}]
  monotonic: [{column: tenure, direction: decreasing}, {column: monthly, direction: decreasing}]
""",
        source="g.yaml",
    )
    report = run_gates("churn-clf/1", policy, data=churn)
    by = {r.gate: r for r in report.results}
    sl = by["slices.plan.roc_auc"]
    assert sl.status is GateStatus.FAILED and "below the floor: plan=" in sl.explanation
    small = [p for p in ("basic", "pro", "team") if (churn["plan"] == p).sum() < 150]
    assert small and all(p in sl.explanation.split("not judged:")[1] for p in small)
    assert by["latency.p95_ms"].status is GateStatus.PASSED and by["latency.p95_ms"].observed > 0
    assert by["behavior.invariance.customer_id"].status is GateStatus.PASSED  # not a model input
    assert by["behavior.invariance.calls"].status is GateStatus.FAILED
    assert by["behavior.monotonic.tenure"].status is GateStatus.PASSED
    assert by["behavior.monotonic.monthly"].status is GateStatus.FAILED  # churn rises with the bill
    assert "100 rows" in by["behavior.monotonic.monthly"].explanation


def test_gate_errors_name_the_policy_line(churn, good_model):
    register(good_model, None)
    policy = parse_policy(
        "data: {label: churned}\nbehavior:\n  monotonic:\n    - {column: tenur, direction: increasing}\n",
        source="g.yaml",
    )
    with pytest.raises(
        InvalidArgumentError,
        match=r"g.yaml:4: behavior.monotonic.0: column 'tenur' is not in the evaluation data\. Did you "
        r"mean 'tenure'\?",
    ):
        run_gates("churn-clf/1", policy, data=churn)
    regression_metric = parse_policy(
        "data: {label: monthly}\nmetrics:\n  roc_auc: {min: 0.5}\n", source="g.yaml"
    )
    reg_model = _regressor(churn)
    with pytest.raises(
        InvalidArgumentError,
        match=r"g.yaml:3: metrics.roc_auc: metric 'roc_auc' does not fit a regression task",
    ):
        run_gates(reg_model, regression_metric, data=churn)
    no_data = parse_policy("metrics: {f1: {min: 0.5}}\n", source="g.yaml")
    with pytest.raises(InvalidArgumentError, match=r"g.yaml: the policy names no evaluation data"):
        run_gates("churn-clf/1", no_data)


def _regressor(churn):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(churn[["tenure", "calls"]], churn["monthly"])


def test_junit_xml_has_one_test_case_per_gate(churn, good_model):
    import junitparser

    register(good_model, None)
    policy = parse_policy(
        "data: {label: churned}\nmetrics: {roc_auc: {min: 0.5}, f1: {min: 0.99}}\nchampion: {f1: "
        "{max_drop: 0}}\n",
        source="g.yaml",
    )
    report = run_gates("churn-clf/1", policy, data=churn)
    xml = to_junit_xml(report)
    root = ET.fromstring(xml)
    assert (
        root.tag == "testsuites"
        and root.get("tests") == "3"
        and root.get("failures") == "1"
        and root.get("skipped") == "1"
    )
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "gates: churn-clf/1"
    cases = suites[0].findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("gates.metrics", "roc_auc"),
        ("gates.metrics", "f1"),
        ("gates.champion", "f1"),
    ]
    assert cases[0].find("failure") is None and cases[0].find("system-out") is not None
    failure = cases[1].find("failure")
    assert (
        failure is not None
        and failure.get("type") == "GateFailed"
        and "required >= 0.99" in failure.get("message")
    )
    assert cases[2].find("skipped") is not None
    props = {p.get("name"): p.get("value") for p in suites[0].find("properties")}
    assert props["model"] == "churn-clf/1" and props["policy"] == "g.yaml"
    # a JUnit reader (the format CI systems consume) agrees
    parsed = junitparser.JUnitXml.fromstring(xml)
    suite = next(iter(parsed))
    assert (suite.tests, suite.failures, suite.skipped) == (3, 1, 1)
    results = [(case.classname, case.name, [type(r).__name__ for r in case.result]) for case in suite]
    assert results == [
        ("gates.metrics", "roc_auc", []),
        ("gates.metrics", "f1", ["Failure"]),
        ("gates.champion", "f1", ["Skipped"]),
    ]
    assert json.loads(json.dumps(report.to_dict()))["passed"] is False
    assert np.isfinite(report.to_dict()["gates"][0]["observed"])


def test_data_gate_validates_the_evaluation_data_with_the_suite(tmp_path, churn, good_model):
    import modelyard.data as ydata
    from modelyard.data._expectations import infer_suite

    register(good_model, None)
    ydata.add(churn, name="churn-ref")
    (tmp_path / "expectations.yaml").write_text(infer_suite("churn-ref@v1").to_yaml())
    (tmp_path / "gates.yaml").write_text(
        "data: {suite: expectations.yaml, label: churned}\nmetrics: {roc_auc: {min: 0.5}}\n"
    )
    report = run_gates("churn-clf/1", str(tmp_path / "gates.yaml"), data=churn)
    gate = report.results[0]
    assert gate.gate == "data.suite" and gate.status is GateStatus.PASSED and "passed all" in gate.explanation

    broken = churn.copy()
    broken["monthly"] = broken["monthly"] + 500  # far outside the reference's range
    report = run_gates("churn-clf/1", str(tmp_path / "gates.yaml"), data=broken)
    gate = report.results[0]
    assert gate.status is GateStatus.FAILED and "monthly." in gate.explanation and not report.passed


def test_multiclass_and_regression_models_are_evaluated_by_their_task(churn):
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.metrics import f1_score, r2_score

    frame = churn.assign(
        segment=np.where(churn["tenure"] < 24, "new", np.where(churn["tenure"] < 48, "mid", "old"))
    )
    clf = LogisticRegression(max_iter=500).fit(frame[["monthly", "calls", "tenure"]], frame["segment"])
    ev = evaluate(clf, frame, label="segment", slices="plan", log=False)
    assert ev.task == "multiclass" and ev.classes == ["mid", "new", "old"]
    pred = clf.predict(frame[["monthly", "calls", "tenure"]])
    assert ev.metrics["f1_macro"] == pytest.approx(f1_score(frame["segment"], pred, average="macro"))
    assert set(ev.metrics) >= {"accuracy", "f1_macro", "roc_auc", "log_loss"}
    assert ev.to_dict()["classes"] == ["mid", "new", "old"]

    reg = LinearRegression().fit(frame[["tenure", "calls"]], frame["monthly"])
    ev = evaluate(reg, frame, label="monthly", slices="plan")
    assert ev.task == "regression" and set(ev.metrics) == {"mae", "mse", "rmse", "r2"}
    assert ev.metrics["r2"] == pytest.approx(
        r2_score(frame["monthly"], reg.predict(frame[["tenure", "calls"]]))
    )
    with pytest.raises(InvalidArgumentError, match=r"metric 'roc_auc' does not fit a regression task"):
        evaluate(reg, frame, label="monthly", metrics=["roc_auc"])
    with pytest.raises(InvalidArgumentError, match=r"unknown metric 'rsme'\. Did you mean 'rmse'\?"):
        evaluate(reg, frame, label="monthly", metrics=["rsme"])


def test_attaching_a_policy_without_data_is_refused(tmp_path, churn, good_model):
    """It could never pass: an alias move runs the gates with no --data, so every promotion was refused."""
    from modelyard.evaluation import attached_policy

    register(good_model, None)
    (tmp_path / "gates.yaml").write_text("protected: [production]\nmetrics: {roc_auc: {min: 0.5}}\n")
    with pytest.raises(InvalidArgumentError) as info:
        attach_policy("churn-clf", tmp_path / "gates.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'gates.yaml'}: an attached policy runs its gates when a protected alias "
        f"moves, so it must "
        "name its evaluation data: add 'data: {dataset: NAME@VERSION, label: COLUMN}'."
    )
    assert attached_policy("churn-clf") is None
