"""Inferred suites pass random splits of the same data and still catch each kind of corruption."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as yard
from modelyard.data._drift import auto_threshold, distribution_check
from modelyard.data._expectations import infer_suite, load_suite, range_bounds
from modelyard.data._profile import iter_batches_of, profile_batches
from modelyard.errors import InvalidArgumentError


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame["target"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


@pytest.fixture(scope="module")
def bc_split() -> tuple[pd.DataFrame, pd.DataFrame, object]:
    train, test = _split(_breast_cancer(), 0)
    return train, test, profile_batches(iter_batches_of(train))


def test_random_splits_of_breast_cancer_pass_the_inferred_suite() -> None:
    frame = _breast_cancer()
    failed: dict[int, list[str]] = {}
    for seed in range(12):
        train, test = _split(frame, seed)
        prof = profile_batches(iter_batches_of(train))
        report = yard.validate(test, reference=prof)
        assert len(report.results) == 1 + 31 * 6
        if not report.ok:
            failed[seed] = [f"{f.name}: {f.detail}" for f in report.failures]
    assert failed == {}


def test_the_old_fixed_threshold_on_fine_bins_cried_wolf(bc_split) -> None:
    """The same split under the previous defaults (PSI 0.2 on the fine grid) fails many columns."""
    from modelyard.data._drift import distance

    train, test, prof = bc_split
    cur = profile_batches(iter_batches_of(test))
    old = sum(distance(prof.columns[c], cur.columns[c], "psi") > 0.2 for c in train.columns)
    new = sum(
        not distribution_check(prof.columns[c], cur.columns[c], "psi", "auto", 31)["ok"]
        for c in train.columns
    )
    assert old >= 10 and new == 0


def _corrupt(kind: str, train: pd.DataFrame, test: pd.DataFrame) -> tuple[pd.DataFrame, str, str, str]:
    """(bad batch, column, the expectation that must fail, a fragment of its detail)."""
    bad = test.copy()
    if kind == "nulls":
        bad["mean radius"] = bad["mean radius"].astype(float)
        bad.loc[bad.index[:9], "mean radius"] = np.nan
        return bad, "mean radius", "max_null_fraction", "9 of 171 rows are null"
    if kind == "out_of_range":
        bad.loc[5, "area error"] = 10 * train["area error"].max()
        return bad, "area error", "max", "1 row(s) above"
    if kind == "sentinel":
        bad.loc[[7, 8], "mean texture"] = -999.0
        return bad, "mean texture", "min", "2 row(s) below"
    if kind == "renamed":
        bad = bad.rename(columns={"mean area": "mean_area"})
        return (
            bad,
            "mean area",
            "column_present",
            "column 'mean area' is not in the data. Did you mean 'mean_area'?",
        )
    if kind == "retyped":
        bad["mean smoothness"] = bad["mean smoothness"].astype(str)
        return bad, "mean smoothness", "type", ""
    if kind == "shifted":
        bad["worst radius"] = bad["worst radius"] + train["worst radius"].std()
        return bad, "worst radius", "distribution", "(auto for "
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["nulls", "out_of_range", "sentinel", "renamed", "retyped", "shifted"])
def test_each_kind_of_corruption_is_caught(bc_split, kind: str) -> None:
    train, test, prof = bc_split
    suite = infer_suite(prof)
    assert yard.validate(test, suite=suite, reference=prof).ok
    bad, column, expectation, detail = _corrupt(kind, train, test)
    report = yard.validate(bad, suite=suite, reference=prof)
    failed = {(f.column, f.expectation): f for f in report.failures}
    assert (column, expectation) in failed, sorted(failed)
    assert detail in failed[(column, expectation)].detail
    if kind == "retyped":
        assert failed[(column, expectation)].observed.startswith("string")


def test_auto_threshold_follows_the_sampling_distribution() -> None:
    from scipy.stats import chi2

    # PSI between two samples of one distribution ~ (1/n + 1/m) chi2(bins - 1); Bonferroni over checks
    assert auto_threshold("psi", 398, 171, 10, checks=31) == pytest.approx(
        chi2.isf(0.005 / 31, 9) * (1 / 398 + 1 / 171)
    )
    assert auto_threshold("psi", 398, 171, 10, checks=31) < auto_threshold("psi", 398, 45, 10, checks=31)
    assert auto_threshold("psi", 10**6, 10**6, 10) == 0.1  # the effect floor: large batches
    assert auto_threshold("js", 10**6, 10**6, 10) == 0.1


def test_distribution_bins_are_sized_for_the_batch() -> None:
    rng = np.random.default_rng(0)
    ref = profile_batches(iter_batches_of(pd.DataFrame({"x": rng.normal(size=4000)})))["x"]
    small = profile_batches(iter_batches_of(pd.DataFrame({"x": rng.normal(size=40)})))["x"]
    big = profile_batches(iter_batches_of(pd.DataFrame({"x": rng.normal(size=4000)})))["x"]
    s, b = distribution_check(ref, small), distribution_check(ref, big)
    assert s is not None and b is not None
    assert s["bins"] == 4 and b["bins"] == 10 and s["ok"] and b["ok"]
    assert s["threshold"] > b["threshold"]
    shifted = profile_batches(iter_batches_of(pd.DataFrame({"x": rng.normal(1.0, size=40)})))["x"]
    assert not distribution_check(ref, shifted)["ok"]
    fixed = distribution_check(ref, small, "psi", 0.01)
    assert fixed["threshold"] == 0.01


def test_range_bounds_learn_a_margin_from_the_tail() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "normal": rng.normal(50, 10, 1000),
            "heavy": rng.pareto(2.5, 1000) + 1,  # never negative, heavy right tail
            "counts": rng.poisson(2, 1000),  # min 0: 0 stays the floor
            "const": np.zeros(1000),
            "spike": np.r_[np.zeros(996), [3.0, 5.0, 1.0, 2.0]],  # under 1 % off the main value
        }
    )
    prof = profile_batches(iter_batches_of(frame))
    lo, hi = range_bounds(prof["normal"], checks=10)
    assert lo < frame["normal"].min() - 10 and frame["normal"].max() + 10 < hi < frame["normal"].max() + 120
    lo, hi = range_bounds(prof["heavy"], checks=10)
    assert hi is not None and 1.5 * frame["heavy"].max() < hi <= 5 * frame["heavy"].max() + 1e-9
    assert range_bounds(prof["counts"], checks=10)[0] == 0.0
    assert range_bounds(prof["spike"], checks=10) == (0.0, None)
    suite = infer_suite(prof)
    assert suite.columns["const"].min == 0.0 and suite.columns["const"].max is None


def test_threshold_auto_round_trips_through_yaml(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    prof = profile_batches(iter_batches_of(pd.DataFrame({"x": rng.normal(size=500)})))
    path = tmp_path / "s.yaml"
    path.write_text(infer_suite(prof).to_yaml(), encoding="utf-8")
    assert "threshold: auto" in path.read_text(encoding="utf-8")
    assert load_suite(path).columns["x"].distribution == {"statistic": "psi", "threshold": "auto"}
    path.write_text("columns:\n  x:\n    distribution: {statistic: psi, threshold: high}\n", encoding="utf-8")
    with pytest.raises(
        InvalidArgumentError,
        match=r"s\.yaml:3:36: 'threshold' of column 'x' must be a number or 'auto'\. Got 'high'\.",
    ):
        load_suite(path)
    path.write_text("columns:\n  x:\n    distribution: {statistic: psi}\n", encoding="utf-8")
    assert load_suite(path).columns["x"].distribution == {"statistic": "psi", "threshold": "auto"}


def test_a_never_negative_column_keeps_a_floor_of_zero(bc_split) -> None:
    """The margin learned from the tail never lets a column that is never negative go below 0:
    a negative (or zero) radius fails, although it is within 'one margin' of the observed minimum."""
    train, test, prof = bc_split
    for checks in (31, 62, 1000):  # more checks widen the margin, never below 0
        lo, _ = range_bounds(prof.columns["mean radius"], checks=checks)
        assert lo is not None and 0.0 <= lo < float(train["mean radius"].min())
    assert range_bounds(prof.columns["mean radius"], checks=10**9)[0] == 0.0
    bad = test.copy()
    bad.loc[0, "mean radius"] = -0.3
    report = yard.validate(bad, reference=prof)
    assert [f.name for f in report.failures] == ["mean radius.min"]
