"""Validation: inferred and YAML suites, every failure kind, reports, bad suites (file:line:col)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as yard
from modelyard.errors import InvalidArgumentError, NotFoundError


def _frame(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.35, 0.15]),
            "active": rng.random(n) < 0.8,
        }
    )


def _shifted(df: pd.DataFrame) -> pd.DataFrame:
    bad = df.copy()
    bad["charges"] = bad["charges"] + 40  # distribution shift (2 sd)
    bad.loc[[20], "charges"] = 1000.0  # a value far above the learned range
    bad.loc[[3, 9], "tenure"] = [-5, 400]
    bad.loc[bad.index[:200], "plan"] = "platinum"  # 6.7 % unseen category
    bad.loc[[10, 11], "customer_id"] = 5  # duplicates
    return bad


def test_validate_against_reference_on_both_backends(workspace, tmp_path: Path) -> None:
    ref = _frame()
    v = yard.data.add(ref, name="churn-train")
    same = yard.validate(_frame(seed=1), against=v.ref)
    assert same.ok, [f.to_dict() for f in same.failures]
    before = _shifted(ref)
    snapshot = before.copy()
    report = yard.validate(before, against="churn-train@v1")
    pd.testing.assert_frame_equal(before, snapshot)  # validation never modifies the data
    assert not report.ok
    failed = {(f.column, f.expectation) for f in report.failures}
    assert {
        ("charges", "max"),
        ("charges", "distribution"),
        ("tenure", "min"),
        ("tenure", "max"),
        ("plan", "values"),
    } <= failed
    tmin = next(f for f in report.failures if f.name == "tenure.min")
    assert tmin.samples == [{"row": 3, "value": -5}] and tmin.failing_rows == 1 and tmin.observed == -5
    plan = next(f for f in report.failures if f.name == "plan.values")
    assert plan.failing_rows == 200 and plan.samples[0] == {"row": 0, "value": "platinum"}
    dist = next(f for f in report.failures if f.name == "charges.distribution")
    assert dist.expected["statistic"] == "psi" and dist.expected["auto"] is True
    assert dist.observed > dist.expected["threshold"] >= 0.1 and "3,000 vs 3,000 rows)" in dist.detail

    # JSON, JUnit, HTML
    doc = json.loads(report.to_json())
    assert doc["ok"] is False and doc["failed"] == len(report.failures) and doc["rows"] == 3000
    junit = ET.fromstring(report.to_junit())
    cases = junit.findall(".//testcase")
    assert len(cases) == len(report.results)
    failing = [c for c in cases if c.find("failure") is not None]
    assert len(failing) == len(report.failures)
    assert any(
        c.get("classname").endswith(".tenure")
        and c.get("name") == "min"
        and "row 3: -5" in c.find("failure").text
        for c in failing
    )
    html = report.to_html()
    assert (
        html.startswith("<!doctype html>")
        and "<script" not in html
        and "http" not in html.split("<svg", 1)[0].split("</style>")[1]
    )
    assert html.count("<svg") == 5 and "platinum" in html and "failed" in html

    with pytest.raises(yard.errors.ValidationFailed, match="expectations failed on <DataFrame>") as exc:
        report.raise_for_failures()
    assert exc.value.report is report


def test_yaml_suite_unique_rowcount_extra_columns(workspace, tmp_path: Path) -> None:
    yard.data.add(_frame(), name="churn-train")
    suite = tmp_path / "expectations.yaml"
    suite.write_text(
        "suite: churn-checks\n"
        "reference: churn-train@v1\n"
        "row_count: {min: 10, max: 2000}\n"
        "allow_extra_columns: false\n"
        "columns:\n"
        "  customer_id: {unique: true, type: integer}\n"
        "  charges:\n"
        "    type: number\n"
        "    distribution: {statistic: js, threshold: 0.1}\n"
        "  active: {values: [true, false]}\n"
        "  plan: {type: string, max_null_fraction: 0.0}\n"
        "  tenure:\n"
    )
    bad = _shifted(_frame())
    bad["extra"] = 1
    bad.loc[5, "plan"] = None
    r = yard.validate(bad, suite=suite)
    failed = {f.name for f in r.failures}
    assert failed == {
        "row_count",
        "no_extra_columns",
        "customer_id.unique",
        "charges.distribution",
        "plan.max_null_fraction",
    }
    uniq = next(f for f in r.failures if f.name == "customer_id.unique")
    assert uniq.failing_rows == 3 and [s["row"] for s in uniq.samples] == [5, 10, 11]
    assert r.suite == "churn-checks" and r.reference == "churn-train@v1"
    # a path to a parquet file works, and --against overrides the suite's reference
    p = tmp_path / "batch.parquet"
    _frame(1500, 4).to_parquet(p)
    ok = yard.validate(p, against="churn-train@v1", suite=suite)
    assert [f.name for f in ok.failures] == [] and ok.rows == 1500

    # a missing column in the data is a failed check naming the closest column
    r2 = yard.validate(_frame(100).rename(columns={"tenure": "tenur"}), against="churn-train@v1")
    miss = next(f for f in r2.failures if f.name == "tenure.column_present")
    assert "Did you mean 'tenur'?" in miss.detail


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "columns:\n  tenure:\n    max_nul_fraction: 0.1\n",
            r"s\.yaml:3:5: unknown expectation 'max_nul_fraction' for column 'tenure'\. Did you "
            r"mean 'max_null_fraction'\?",
        ),
        (
            "columns:\n  tenur:\n    type: integer\n",
            r"s\.yaml:2:3: column 'tenur' is not in churn-train@v1\. Did you mean 'tenure'\?",
        ),
        ("colums: {}\n", r"s\.yaml:1:1: unknown suite key 'colums'\. Did you mean 'columns'\?"),
        (
            "columns:\n  tenure: {type: int}\n",
            r"s\.yaml:2:12: 'type' of column 'tenure' must be one of integer, float.*Got 'int'\. "
            r"Did you mean 'integer'\?",
        ),
        (
            "columns:\n  plan:\n    max_null_fraction: lots\n",
            r"s\.yaml:3:5: 'max_null_fraction' of column 'plan' must be a number\. Got 'lots'\.",
        ),
        (
            "columns:\n  plan:\n    max_null_fraction: 2\n",
            r"s\.yaml:3:5: 'max_null_fraction' of column 'plan' must be between 0 and 1",
        ),
        (
            "columns:\n  charges:\n    distribution: {statistic: ks}\n",
            r"s\.yaml:3:20: the drift statistic of column 'charges' must be one of psi, js\. Got 'ks'\.",
        ),
        (
            "columns:\n  charges: {min: 5, max: 1}\n",
            r"s\.yaml:2:13: column 'charges' has min 5 greater than max 1\.",
        ),
        ("columns:\n  tenure: [1, 2\n", r"s\.yaml:3:1: YAML syntax error"),
    ],
)
def test_bad_suites_name_file_line_column(tmp_path: Path, yaml_text: str, message: str) -> None:
    yard.data.add(_frame(50), name="churn-train")
    s = tmp_path / "s.yaml"
    s.write_text(yaml_text)
    with pytest.raises(InvalidArgumentError, match=message):
        yard.validate(_frame(50), against="churn-train@v1", suite=s)


def test_validate_bad_input(tmp_path: Path) -> None:
    yard.data.add(_frame(50), name="churn-train")
    with pytest.raises(InvalidArgumentError, match="validate needs expectations"):
        yard.validate(_frame(50))
    with pytest.raises(NotFoundError, match=r"Cannot validate '.*nope\.parquet': no such file or folder"):
        yard.validate(tmp_path / "nope.parquet", against="churn-train@v1")
    with pytest.raises(NotFoundError, match=r"Cannot read the suite '.*missing\.yaml': no such file"):
        yard.validate(_frame(50), suite=tmp_path / "missing.yaml")
    with pytest.raises(NotFoundError, match=r"Dataset 'churn' does not exist\. Did you mean 'churn-train'\?"):
        yard.validate(_frame(50), against="churn@v1")
    (tmp_path / "bad.parquet").write_bytes(b"garbage")
    with pytest.raises(InvalidArgumentError, match=r"Cannot read '.*bad\.parquet' as parquet"):
        yard.validate(tmp_path / "bad.parquet", against="churn-train@v1")
    yard.data.add(tmp_path / "bad.parquet", name="blob", profile=False) if False else None
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "x.bin").write_bytes(b"1")
    yard.data.add(tmp_path / "f", name="files")
    with pytest.raises(InvalidArgumentError, match=r"files@v1 has no profile"):
        yard.validate(_frame(50), against="files@v1")


def test_validate_with_a_reference_profile_needs_no_store() -> None:
    ref = yard.data.profile(_frame())
    assert yard.validate(_frame(seed=9), reference=ref).ok
    r = yard.validate(_shifted(_frame()), reference=ref)
    assert "charges.distribution" in {f.name for f in r.failures} and r.reference == "the given profile"


def test_null_and_type_failures_count_rows_and_keep_sample_rows(tmp_path: Path) -> None:
    df = _frame(400)
    df.loc[[4, 7, 8, 20, 30, 31, 399], "plan"] = None
    df["customer_id"] = df["customer_id"].astype(str)
    suite = {
        "columns": {
            "plan": {"max_null_fraction": 0.0},
            "customer_id": {"type": "integer"},
            "tenure": {"max_null_fraction": 0.5},
        }
    }
    suite["columns"]["plan"]["values"] = ["basic", "pro", "team"]
    r = yard.validate(df, suite=suite)
    values = next(x for x in r.results if x.name == "plan.values")  # nulls are max_null_fraction's business
    assert values.ok and values.failing_rows == 0 and values.samples == []
    nulls = next(f for f in r.failures if f.name == "plan.max_null_fraction")
    assert nulls.failing_rows == 7 and nulls.samples == [
        {"row": i, "value": None} for i in (4, 7, 8, 20, 30)
    ]  # the first 5
    assert nulls.detail == "7 of 400 rows are null"
    typ = next(f for f in r.failures if f.name == "customer_id.type")
    assert (
        typ.failing_rows == 400
        and typ.samples[:2] == [{"row": 0, "value": "0"}, {"row": 1, "value": "1"}]
        and len(typ.samples) == 5
    )
    assert typ.detail == "every non-null value (400 rows) is string, not integer"
    ok = next(x for x in r.results if x.name == "tenure.max_null_fraction")
    assert ok.ok and ok.failing_rows == 0 and ok.samples == []
    doc = json.loads(r.to_json())
    got = {x["column"] + "." + x["expectation"]: x for x in doc["results"]}
    assert got["plan.max_null_fraction"]["failing_rows"] == 7 and got["plan.max_null_fraction"]["samples"][
        0
    ] == {"row": 4, "value": None}
    # a folder: row numbers run on across its files
    (tmp_path / "parts").mkdir()
    _frame(10).to_parquet(tmp_path / "parts" / "a.parquet")
    second = _frame(5)
    second.loc[[1, 3], "plan"] = None
    second.to_parquet(tmp_path / "parts" / "b.parquet")
    r = yard.validate(tmp_path / "parts", suite={"columns": {"plan": {"max_null_fraction": 0.1}}})
    nulls = next(f for f in r.failures if f.name == "plan.max_null_fraction")
    assert nulls.failing_rows == 2 and [s["row"] for s in nulls.samples] == [11, 13]


def _validate_cli(*args: str) -> tuple[int, str]:
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-m", "modelyard", "validate", "data", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_cli_shows_failures_and_a_count_of_passes_and_all_with_all(tmp_path: Path) -> None:
    ref = _frame()
    yard.data.add(
        ref, name="churn-train"
    )  # the test's own default store (YARD_URI), which the CLI subprocess reads
    bad = ref.copy()
    bad.loc[[3], "tenure"] = -5
    bad.loc[[4, 7, 8], "plan"] = None
    bad.to_parquet(tmp_path / "bad.parquet")
    uri = ["--against", "churn-train@v1"]
    report = yard.validate(bad, against="churn-train@v1")
    n_pass = len(report.results) - len(report.failures)
    code, out = _validate_cli(str(tmp_path / "bad.parquet"), *uri)
    assert code == 1, out
    lines = out.splitlines()
    assert not [
        line for line in lines if line.lstrip().startswith("✓ ") and "passed" not in line
    ]  # no passed check listed
    assert f"✓ {n_pass} other checks passed (not listed; --all shows every check)" in out
    assert f"{n_pass} passed, {len(report.failures)} failed" in out
    assert any("tenure" in line and " min " in line and "1 row(s) below 0" in line for line in lines)
    assert "plan.max_null_fraction sample rows: row 4: None, row 7: None, row 8: None" in out
    code, out_all = _validate_cli(str(tmp_path / "bad.parquet"), *uri, "--all")
    assert code == 1
    listed = [line for line in out_all.splitlines() if line.lstrip().startswith(("✓ ", "✗ "))]
    assert len(listed) == len(report.results) and "other checks passed" not in out_all
    code, js = _validate_cli(str(tmp_path / "bad.parquet"), *uri, "--json")
    assert code == 1 and len(json.loads(js)["results"]) == len(report.results)
    good = tmp_path / "good.parquet"
    _frame(500, 3).to_parquet(good)
    code, out = _validate_cli(str(good), *uri)
    assert code == 0 and "passed, 0 failed (--all lists them)" in out and "✓ " not in out
