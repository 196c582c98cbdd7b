"""One convention for non-finite numbers in every JSON modelyard writes (``--json``, reports, profiles):
NaN and ±inf become the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; null means "no value"."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard._json import json_float, strict_json


def strict_loads(text: str) -> object:
    """Parse like a strict JSON reader (JavaScript, Go, jq): the tokens NaN/Infinity are refused."""

    def refuse(token: str) -> None:
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def test_the_convention() -> None:
    assert [json_float(v) for v in (1.5, float("nan"), float("inf"), float("-inf"))] == [
        1.5,
        "NaN",
        "Infinity",
        "-Infinity",
    ]
    assert strict_json({"a": [float("nan"), (float("inf"), None)], 1: 2.0}, str_keys=True) == {
        "a": ["NaN", ["Infinity", None]],
        "1": 2.0,
    }
    # the strings read back as the same floats in Python (float()) and JavaScript (Number())
    assert math.isnan(float("NaN")) and float("Infinity") == math.inf and float("-Infinity") == -math.inf


def test_drift_report_json_follows_it() -> None:
    rng = np.random.default_rng(0)
    r = yard.drift(pd.DataFrame({"x": rng.normal(0, 1, 300)}), pd.DataFrame({"x": rng.normal(1, 1, 300)}))
    r.settings["custom"] = float("nan")
    r.domain_classifier = {"auc": float("-inf"), "drifted": False}
    doc = strict_loads(r.to_json())
    assert doc["settings"]["custom"] == "NaN" and doc["domain_classifier"]["auc"] == "-Infinity"
    assert r.to_dict()["settings"]["custom"] == "NaN"


def test_profile_json_follows_it() -> None:
    from modelyard.data._profile import ColumnProfile

    p = ColumnProfile(name="x", type="double", kind="numeric")
    p.min, p.max = float("nan"), float("inf")
    d = p.to_dict()
    assert (d["min"], d["max"]) == ("NaN", "Infinity")


def test_cli_json_and_the_drift_json_agree(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from modelyard.cli import app
    from modelyard.cli._common import print_json

    print_json({"nan": float("nan"), "inf": [float("inf")]})  # what every `--json` listing prints
    assert strict_loads(capsys.readouterr().out) == {"nan": "NaN", "inf": ["Infinity"]}
    rng = np.random.default_rng(1)
    ref = pd.DataFrame({"x": rng.normal(0, 1, 300)})
    cur = pd.DataFrame({"x": rng.normal(2, 1, 300)})
    cur.loc[3, "x"] = float("inf")
    ref.to_parquet(tmp_path / "ref.parquet")
    cur.to_parquet(tmp_path / "cur.parquet")
    yard.data.add(ref, name="ref")
    runner = CliRunner()
    res = runner.invoke(
        app, ["validate", "data", str(tmp_path / "cur.parquet"), "--against", "ref@v1", "--json"]
    )
    assert res.exit_code == 1, res.output
    checks = {(c["column"], c["expectation"]): c for c in strict_loads(res.output)["results"]}
    assert checks[("x", "max")]["observed"] == "Infinity"
    res = runner.invoke(
        app, ["monitor", "drift", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "--json"]
    )
    assert res.exit_code == 3, res.output  # drift found
    assert strict_loads(res.output)["summary"]["drifted_columns"] == ["x"]
