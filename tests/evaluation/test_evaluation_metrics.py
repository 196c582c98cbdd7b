"""Metrics match scikit-learn overall and per slice; bad metric names and tasks give clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from modelyard.errors import InvalidArgumentError
from modelyard.evaluation import METRICS, compute_metrics, prepare_targets, slice_codes
from modelyard.evaluation._metrics import metric_spec


def _slices(df: pd.DataFrame, *specs: str) -> dict:
    out = {}
    for spec in specs:
        name, codes, labels = slice_codes(df, spec)
        out[name] = (codes, labels)
    return out


def _sk(name: str, y, pred, score, **extra):
    spec = METRICS[name]
    kw = {**spec.kwargs, **extra}
    return spec.sklearn_function()(y, score if spec.needs == "score" else pred, **kw)


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    n = 4000
    y = rng.integers(0, 2, n)
    score = np.round(np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1), 2)  # rounded: many ties
    pred = (score > 0.5).astype(int)
    seg = rng.choice(["north", "south", "east", "west", None], n)
    return y, pred, score, pd.DataFrame({"seg": seg, "num": rng.normal(size=n)})


def test_binary_metrics_match_sklearn_overall_and_per_slice(binary):
    y, pred, score, frame = binary
    names = [
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
        "balanced_accuracy",
        "mcc",
        "average_precision",
    ]
    p = prepare_targets("binary", y, pred, score)
    out = compute_metrics(p, names, _slices(frame, "seg", "num:3"))
    for name in names:
        assert out.overall[name] == pytest.approx(_sk(name, y, pred, score), abs=1e-10), name
    # slices, including the <missing> slice made of None values
    seg = frame["seg"].fillna("<missing>").to_numpy()
    assert set(out.slices["seg"]) == {"north", "south", "east", "west", "<missing>"}
    for value, stats in out.slices["seg"].items():
        m = seg == value
        assert stats["n"] == m.sum()
        for name in names:
            assert stats[name] == pytest.approx(_sk(name, y[m], pred[m], score[m]), abs=1e-10), (value, name)
    assert sum(s["n"] for s in out.slices["num:3"].values()) == len(y)


def test_string_labels_and_two_column_probabilities():
    y = np.array(["no", "yes", "yes", "no", "yes", "no"])
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3], [0.1, 0.9], [0.4, 0.6]])
    pred = np.where(proba[:, 1] > 0.5, "yes", "no")
    p = prepare_targets("binary", y, pred, proba, classes=["no", "yes"])
    out = compute_metrics(p, ["f1", "roc_auc", "log_loss"], None)
    assert out.overall["f1"] == pytest.approx(skm.f1_score(y, pred, pos_label="yes"))
    assert out.overall["roc_auc"] == pytest.approx(skm.roc_auc_score(y == "yes", proba[:, 1]))
    assert out.overall["log_loss"] == pytest.approx(skm.log_loss(y, proba, labels=["no", "yes"]))


def test_multiclass_matches_sklearn():
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4)) + np.eye(4)[y] * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    pred = proba.argmax(axis=1)
    g = pd.DataFrame({"g": rng.choice(["a", "b"], n)})
    names = [
        "accuracy",
        "f1_macro",
        "f1_weighted",
        "precision_macro",
        "recall_macro",
        "precision_weighted",
        "recall_weighted",
        "roc_auc",
        "log_loss",
    ]
    out = compute_metrics(prepare_targets("multiclass", y, pred, proba), names, _slices(g, "g"))
    for name in names:
        kw = {"multi_class": "ovr"} if name == "roc_auc" else {}
        assert out.overall[name] == pytest.approx(_sk(name, y, pred, proba, **kw), abs=1e-10), name
    m = g["g"].to_numpy() == "a"
    assert out.slices["g"]["a"]["f1_macro"] == pytest.approx(skm.f1_score(y[m], pred[m], average="macro"))


def test_macro_average_uses_only_labels_present_like_sklearn():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 0])
    slice_frame = pd.DataFrame({"s": ["x", "x", "x", "x", "y", "y"]})  # slice x has no class 2 at all
    out = compute_metrics(
        prepare_targets("multiclass", y, pred), ["f1_macro", "precision_macro"], _slices(slice_frame, "s")
    )
    assert out.slices["s"]["x"]["f1_macro"] == pytest.approx(skm.f1_score(y[:4], pred[:4], average="macro"))
    assert out.slices["s"]["y"]["precision_macro"] == pytest.approx(
        skm.precision_score(y[4:], pred[4:], average="macro", zero_division=0)
    )


def test_regression_matches_sklearn():
    rng = np.random.default_rng(2)
    y = rng.normal(10, 3, 2000)
    pred = y + rng.normal(0, 1, 2000)
    frame = pd.DataFrame({"k": rng.choice(["a", "b", "c"], 2000)})
    names = ["mae", "mse", "rmse", "r2", "mape", "medae", "max_error", "explained_variance"]
    out = compute_metrics(prepare_targets("regression", y, pred), names, _slices(frame, "k"))
    for name in names:
        assert out.overall[name] == pytest.approx(_sk(name, y, pred, None), rel=1e-9), name
    m = frame["k"].to_numpy() == "b"
    assert out.slices["k"]["b"]["r2"] == pytest.approx(skm.r2_score(y[m], pred[m]))


def test_undefined_auc_on_a_one_class_slice_is_nan():
    y = np.array([0, 0, 1, 1, 1, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8, 0.7, 0.9])
    frame = pd.DataFrame({"s": ["a", "a", "a", "a", "b", "b"]})
    out = compute_metrics(
        prepare_targets("binary", y, (score > 0.5).astype(int), score), ["roc_auc"], _slices(frame, "s")
    )
    assert out.slices["s"]["a"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y[:4], score[:4]))
    assert np.isnan(out.slices["s"]["b"]["roc_auc"])


def test_unknown_metric_suggests_the_closest_name():
    with pytest.raises(InvalidArgumentError, match=r"unknown metric 'roc_acu'\. Did you mean 'roc_auc'\?"):
        metric_spec("roc_acu")


def test_auc_on_regression_is_refused_with_the_metrics_that_fit():
    with pytest.raises(
        InvalidArgumentError,
        match=r"metric 'roc_auc' does not fit a regression task.*Metrics for regression: mae",
    ):
        metric_spec("roc_auc", "regression")
    with pytest.raises(InvalidArgumentError, match=r"Use 'f1_macro' or 'f1_weighted' for multiclass"):
        metric_spec("f1", "multiclass")


def test_scored_metric_without_scores_and_unknown_labels_are_explained():
    p = prepare_targets("binary", np.array([0, 1, 1]), np.array([0, 1, 0]))
    with pytest.raises(
        InvalidArgumentError, match=r"'roc_auc' needs scores or probabilities, and the model gives none"
    ):
        compute_metrics(p, ["roc_auc"])
    with pytest.raises(
        InvalidArgumentError, match=r"labels \['maybe'\] that are not among the model's classes"
    ):
        prepare_targets("binary", np.array(["no", "maybe"]), np.array(["no", "yes"]), classes=["no", "yes"])
    with pytest.raises(InvalidArgumentError, match=r"A binary task needs at most 2 classes"):
        prepare_targets("binary", np.array([0, 1, 2]), np.array([0, 1, 2]))


def test_slice_errors_name_the_column():
    frame = pd.DataFrame({"plan": ["a", "b"], "id": [1, 2]})
    with pytest.raises(
        InvalidArgumentError,
        match=r"Slice column 'plann' is not in the evaluation data\. Did you mean 'plan'\?",
    ):
        slice_codes(frame, "plann")
    many = pd.DataFrame({"id": np.arange(500)})
    with pytest.raises(InvalidArgumentError, match=r"has 500 distinct values.*'id:4'"):
        slice_codes(many, "id")
    with pytest.raises(InvalidArgumentError, match=r"only numeric columns can be binned"):
        slice_codes(frame, "plan:3")


def test_quantile_slice_labels_are_short_and_distinct():
    # pd.qcut widens the lowest edge by 0.1 % of the range: (6.9799999999999995, ...] in a report
    df = pd.DataFrame({"radius": np.linspace(6.981, 28.11, 200)})
    name, codes, labels = slice_codes(df, "radius:4")
    assert sorted(set(codes.tolist())) == [0, 1, 2, 3]
    assert name == "radius:4"
    assert labels[0].startswith("(6.98,") and labels[0].endswith("]")
    assert all(len(label) <= 20 for label in labels), labels
    assert "99999" not in " ".join(labels)
    close = pd.DataFrame({"x": np.r_[np.full(50, 1.00001), np.full(50, 1.00002), np.full(50, 1.00003)]})
    _, _, close_labels = slice_codes(close, "x:3")
    assert len(set(close_labels)) == len(close_labels) == 3, close_labels
    assert all(label.split(", ")[0][1:] != label.split(", ")[1][:-1] for label in close_labels), close_labels
