"""The drift engine: exact statistics, decisions stable in n, every bad input as a status."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import modelyard as yard
from modelyard.errors import InvalidArgumentError


def _frames(n: int, m: int, shift: float = 0.0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ref = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.exponential(size=n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
            "flag": rng.choice([True, False], n),
        }
    )
    cur = pd.DataFrame(
        {
            "x": rng.normal(shift, size=m),
            "y": rng.exponential(size=m),
            "plan": rng.choice(["basic", "pro", "team"], m, p=[0.5, 0.3, 0.2]),
            "flag": rng.choice([True, False], m),
        }
    )
    return ref, cur


def test_report_statistics_equal_scipy_on_the_columns() -> None:
    ref, cur = _frames(800, 600, shift=0.3)
    report = yard.drift(ref, cur)
    x = report.columns["x"]
    assert x.method == "ks" and x.method_choice == "auto"
    assert abs(x.statistic - stats.ks_2samp(ref.x, cur.x).statistic) < 1e-9
    assert abs(x.p_value - stats.ks_2samp(ref.x, cur.x).pvalue) < 1e-9
    assert abs(x.effect_size - stats.wasserstein_distance(ref.x, cur.x) / ref.x.std(ddof=0)) < 1e-9
    plan = report.columns["plan"]
    assert plan.method == "chisquare"
    table = pd.crosstab(np.r_[np.zeros(len(ref)), np.ones(len(cur))], np.r_[ref.plan, cur.plan])
    assert abs(plan.statistic - stats.chi2_contingency(table, correction=False).statistic) < 1e-9
    assert report.columns["flag"].method == "z"
    assert "x" in report.drifted_columns


# -- decisions ---------------------------------------------------------------------------------
def test_detects_shift_and_not_noise() -> None:
    ref, cur = _frames(5000, 5000, shift=0.5, seed=3)
    report = yard.drift(ref, cur)
    assert report.drifted_columns == ["x"]
    assert report.columns["x"].method == "wasserstein"  # large sample: decided on the effect size
    assert report.share_drifted == pytest.approx(0.25)
    assert report.dataset_drift is False
    assert yard.drift(ref, cur, drift_share=0.25).dataset_drift is True


def test_decision_does_not_flip_when_n_grows() -> None:
    """A negligible shift (0.02 sd) is never drift, at 2k or 400k rows, though KS p-values collapse."""
    decisions, pvalues = [], []
    for n in (2_000, 400_000):
        rng = np.random.default_rng(n)
        ref = pd.DataFrame({"x": rng.normal(size=n)})
        cur = pd.DataFrame({"x": rng.normal(0.02, size=n)})
        col = yard.drift(ref, cur).columns["x"]
        decisions.append(col.drifted)
        pvalues.append(col.p_value)
        assert col.effect_size < 0.05
    assert decisions == [False, False]
    assert pvalues[1] < 1e-6  # a p-value rule would have flipped


def test_methods_selectable_per_column_and_thresholds() -> None:
    ref, cur = _frames(3000, 3000, shift=0.15, seed=5)
    report = yard.drift(ref, cur, methods={"x": "psi", "plan": "psi", "y": "ks"}, thresholds={"x": 0.01})
    assert report.columns["x"].method == "psi" and report.columns["x"].method_choice == "selected"
    assert report.columns["x"].threshold == 0.01
    assert report.columns["y"].method == "ks"
    assert report.columns["plan"].method == "psi"
    assert report.columns["x"].drifted is True  # psi of a 0.15 sd shift is above 0.01
    jsr = yard.drift(ref, cur, method="jensenshannon")
    assert {c.method for c in jsr.columns.values()} == {"jensenshannon"}


def test_bad_method_names_the_choices() -> None:
    ref, cur = _frames(100, 100)
    with pytest.raises(
        InvalidArgumentError, match=r"'method' parameter of yard.drift must be one of \['chisquare'"
    ):
        yard.drift(ref, cur, method="kl")
    with pytest.raises(InvalidArgumentError, match=r"methods\['plan'\].*a method for categorical columns"):
        yard.drift(ref, cur, methods={"plan": "ks"})
    with pytest.raises(InvalidArgumentError, match="'drift_share' parameter"):
        yard.drift(ref, cur, drift_share=0)
    with pytest.raises(
        InvalidArgumentError, match=r"'reference' parameter of yard\.drift must be a pandas DataFrame"
    ):
        yard.drift([1, 2], cur)


def test_null_share_and_unseen_categories_are_signals() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    ref = pd.DataFrame({"x": rng.normal(size=n), "plan": rng.choice(["a", "b"], n)})
    cur = pd.DataFrame(
        {"x": rng.normal(size=n), "plan": rng.choice(["a", "b", "zzz"], n, p=[0.45, 0.45, 0.1])}
    )
    cur.loc[: n // 5, "x"] = np.nan  # 20% nulls, same distribution otherwise
    report = yard.drift(ref, cur)
    x, plan = report.columns["x"], report.columns["plan"]
    assert x.null_drift and x.drifted and not x.distribution_drift and "null share" in x.reason
    assert (
        plan.unseen_drift
        and plan.unseen_categories == ["zzz"]
        and plan.unseen_share == pytest.approx(0.1, abs=0.02)
    )


# -- bad input: a status per column, never a crash, never NaN ----------------------------------
def test_every_bad_input_gets_a_status() -> None:
    rng = np.random.default_rng(2)
    n = 200
    ref = pd.DataFrame(
        {
            "ok": rng.normal(size=n),
            "only_ref": 1.0,
            "all_null": np.nan,
            "one_cat": "x",
            "const": 3.0,
            "mixed": rng.normal(size=n),
            "numtext": rng.integers(0, 5, n).astype(float),
            "infs": rng.normal(size=n),
        }
    )
    cur = pd.DataFrame(
        {
            "ok": rng.normal(size=n),
            "only_cur": "new",
            "all_null": [None] * n,
            "one_cat": "x",
            "const": 3.0,
            "mixed": rng.choice(["a", "b"], n),
            "numtext": rng.integers(0, 5, n).astype(str),
            "infs": np.where(rng.random(n) < 0.5, np.inf, rng.normal(size=n)),
        }
    )
    r = yard.drift(ref, cur)
    st = {name: c.status for name, c in r.columns.items()}
    assert st["only_ref"] == "missing_in_current" and st["only_cur"] == "missing_in_reference"
    assert st["all_null"] == "all_null" and r.columns["all_null"].drifted is None
    assert st["one_cat"] == "constant" and r.columns["one_cat"].drifted is False
    assert st["const"] == "constant"
    assert st["mixed"] == "type_mismatch" and "float64" in r.columns["mixed"].reason
    assert r.columns["numtext"].kind == "numeric" and st["numtext"] in ("ok", "drift")  # text that parses
    assert r.columns["infs"].inf_count_current > 50 and r.columns["infs"].null_drift
    assert not math.isnan(r.share_drifted)
    data = json.loads(r.to_json())  # strict JSON: no NaN anywhere
    assert data["summary"]["problems"]["mixed"] == "type_mismatch"


def test_too_few_rows_says_so() -> None:
    ref, cur = _frames(500, 10)
    r = yard.drift(ref, cur)
    assert {c.status for c in r.columns.values()} == {"too_few_rows"}
    assert "10 non-null values" in r.columns["x"].reason and "min_rows=30" in r.columns["x"].reason
    assert r.share_drifted == 0.0 and r.dataset_drift is False and r.status == "no_columns_evaluated"
    empty = yard.drift(ref, cur.iloc[:0])
    assert empty.share_drifted == 0.0 and empty.columns["x"].status == "all_null"


def test_prediction_drift_is_reported_apart() -> None:
    ref, cur = _frames(2000, 2000, seed=4)
    ref["pred"] = (ref.x > 0).astype(int)
    cur["pred"] = (cur.x > -0.8).astype(int)
    r = yard.drift(ref, cur, prediction="pred")
    assert r.prediction_drift == {"pred": True}
    assert "pred" not in r.drifted_columns and r.share_drifted == 0.0


def test_domain_classifier_option() -> None:
    ref, cur = _frames(1500, 1500, shift=1.0, seed=6)
    r = yard.drift(ref, cur, domain_classifier=True)
    assert r.domain_classifier["auc"] > 0.6 and r.domain_classifier["drifted"]
    same = yard.drift(*_frames(1500, 1500, seed=7), domain_classifier=True)
    assert same.domain_classifier["auc"] < 0.58 and not same.domain_classifier["drifted"]


def test_renderings() -> None:
    ref, cur = _frames(400, 400, shift=0.8)
    r = yard.drift(ref, cur)
    r.history = [
        {"time_ms": 1_700_000_000_000 + i * 3_600_000, "share_drifted": s}
        for i, s in enumerate([0, 0.25, 0.5])
    ]
    html = r.to_html()
    assert (
        html.startswith("<!doctype html>")
        and "<script" not in html
        and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    )
    assert html.count("<svg") == 1 + 4  # drift over time + one histogram per column
    d = r.to_dict()
    assert d["columns"]["x"]["histogram"]["reference"] and d["summary"]["drifted_columns"] == ["x"]
    from rich.console import Console

    console = Console(record=True, width=160)
    r.print_table(console)
    text = console.export_text()
    assert "x" in text and "drift: ks p-value" in text


def test_cli_drift_of_two_files(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from modelyard.cli import app

    ref, cur = _frames(500, 500, shift=1.0)
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_csv(tmp_path / "cur.csv", index=False)
    runner = CliRunner()
    html = tmp_path / "d.html"
    out = runner.invoke(
        app,
        [
            "monitor",
            "drift",
            str(tmp_path / "ref.parquet"),
            str(tmp_path / "cur.csv"),
            "--json",
            "--html",
            str(html),
        ],
    )
    assert out.exit_code == 0, out.output  # 1 of 4 columns: no dataset drift
    assert json.loads(out.output)["summary"]["drifted_columns"] == ["x"] and html.exists()
    out = runner.invoke(
        app,
        [
            "monitor",
            "drift",
            str(tmp_path / "ref.parquet"),
            str(tmp_path / "cur.csv"),
            "--drift-share",
            "0.2",
        ],
    )
    assert out.exit_code == 3 and "dataset drift: YES" in out.output
    out = runner.invoke(app, ["monitor", "drift", str(tmp_path / "nope.parquet"), str(tmp_path / "cur.csv")])
    assert out.exit_code == 1 and "does not exist" in str(out.exception)


def test_prepared_reference_gives_the_same_report() -> None:
    ref, cur = _frames(3000, 2000, shift=0.3, seed=9)
    ref.loc[:100, "y"] = np.nan
    ref["plan"] = ref["plan"].astype("category")
    prepared = yard.monitoring.DriftReference(ref)
    assert prepared.prepared == {}
    for batch in (cur, cur.iloc[:500]):
        a = yard.drift(ref, batch).to_dict()
        b = yard.drift(prepared, batch).to_dict()
        assert a["columns"] == b["columns"] and a["summary"] == b["summary"]
    kinds = {"x": "numeric", "y": "numeric", "plan": "categorical", "flag": "categorical"}
    assert prepared.prepared == kinds  # kept for the next batch


def test_quickstart_monitoring_chapter(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from modelyard.quickstart import QuickstartContext, chapter_monitoring

    lines: list[str] = []
    ctx = QuickstartContext(uri=str(tmp_path / "qs"), say=lines.append)
    chapter_monitoring(ctx)
    report = ctx.state["drift"]
    assert set(report.drifted_columns) == {"monthly_charges", "support_calls"}
    assert (
        report.columns["support_calls"].null_drift and not report.columns["support_calls"].distribution_drift
    )
    assert any("monthly_charges" in line and "drift" in line for line in lines)
    assert (tmp_path / "qs" / "quickstart-drift.html").read_text().startswith("<!doctype html>")


# -- false alarms on samples of one distribution -------------------------------------------------
def _bc_split(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    frame = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(frame, test_size=0.3, random_state=seed, stratify=frame["target"])
    return train.reset_index(drop=True), test.reset_index(drop=True)


def test_random_splits_flag_no_column_once_corrected_for_many_columns() -> None:
    uncorrected = 0
    for seed in range(12):
        train, test = _bc_split(seed)
        report = yard.drift(train, test)
        assert report.drifted_columns == [], (seed, report.drifted_columns)
        assert all(
            c.p_value_adjusted >= c.p_value for c in report.columns.values() if c.p_value_adjusted is not None
        )
        assert report.settings["correction"] == "holm"
        uncorrected += len(yard.drift(train, test, correction="none", min_effect=0).drifted_columns)
    assert uncorrected >= 4  # 31 columns at p < 0.05 each: the per-column rule cries wolf


def test_replayed_rows_count_once() -> None:
    """398-row reference, a 2,405-row window replaying the 171 held-out rows: no drift, a real shift still
    is."""
    train, test = _bc_split(0)
    window = test.sample(2405, replace=True, random_state=0).reset_index(drop=True)
    naive = sum(stats.ks_2samp(train[c], window[c]).pvalue < 0.05 for c in train.columns if c != "target")
    report = yard.drift(train, window)
    col = report.columns["mean radius"]
    assert naive >= 5 and report.drifted_columns == []
    assert 150 <= col.rows_current_effective <= 200 and col.rows_current == 2405 and col.method == "ks"
    window["mean radius"] = window["mean radius"] + train["mean radius"].std()
    assert yard.drift(train, window).drifted_columns == ["mean radius"]


def test_method_is_chosen_from_both_sizes() -> None:
    rng = np.random.default_rng(4)

    def method(n: int, m: int) -> str | None:
        return (
            yard.drift(pd.DataFrame({"x": rng.normal(size=n)}), pd.DataFrame({"x": rng.normal(size=m)}))
            .columns["x"]
            .method
        )

    # harmonic mean 2nm/(n+m): 683, 995 -> test; 5000, 1412 -> effect size
    assert method(398, 2405) == "ks" and method(500, 100_000) == "ks"
    assert method(5000, 5000) == "wasserstein" and method(100_000, 710) == "wasserstein"


def test_effect_floor_and_correction_are_settings() -> None:
    ref, cur = _frames(800, 600, shift=0.3, seed=8)
    assert yard.drift(ref, cur).columns["x"].drifted is True
    floored = yard.drift(ref, cur, min_effect=0.5).columns["x"]
    assert floored.drifted is False and floored.p_value_adjusted < 0.05 and floored.effect_floor == 0.5
    with pytest.raises(
        InvalidArgumentError,
        match=r"'correction' parameter of yard\.drift must be one of 'holm', 'bh', 'none'",
    ):
        yard.drift(ref, cur, correction="bonferroni")
    with pytest.raises(
        InvalidArgumentError, match=r"'min_effect' parameter of yard\.drift must be a number >= 0 or None"
    ):
        yard.drift(ref, cur, min_effect=-1)
