"""Profiles: values against numpy, merge of two halves equals the profile of the whole."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import modelyard as yard
from modelyard.data import Profile
from modelyard.data._profile import MAX_TRACKED, ProfileBuilder


def _table(n: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.lognormal(3, 1, n)
    x[rng.random(n) < 0.05] = np.nan  # NaN values
    return pa.table(
        {
            "x": x,
            "signed": rng.normal(0, 5, n),
            "small_int": rng.integers(0, 30, n),
            "big_int": rng.integers(-(10**9), 10**9, n),
            "cat": pa.array(rng.choice(["a", "b", "c", None], n, p=[0.5, 0.3, 0.15, 0.05])),
            "dict": pa.array(rng.choice(["u", "v"], n)).dictionary_encode(),
            "ids": pa.array([f"id-{i}" for i in range(n)]),
            "flag": pa.array(rng.random(n) < 0.3),
            "when": pa.array(pd.date_range("2024-01-01", periods=n, freq="min")),
        }
    )


def _profile(table: pa.Table, chunk: int) -> Profile:
    b = ProfileBuilder(threads=1)
    for batch in table.to_batches(max_chunksize=chunk):
        b.add(batch)
    return b.result()


def test_profile_matches_numpy() -> None:
    t = _table(20_000)
    p = _profile(t, 4096)
    x = t["x"].to_numpy(zero_copy_only=False)
    fin = x[~np.isnan(x)]
    c = p["x"]
    assert c.count == 20_000 and c.nulls == 0 and c.nan == int(np.isnan(x).sum())
    assert c.min == fin.min() and c.max == fin.max()
    assert math.isclose(c.mean, fin.mean(), rel_tol=1e-12) and math.isclose(
        c.std, fin.std(ddof=1), rel_tol=1e-9
    )
    for q, v in c.quantiles.items():  # DDSketch: 1 % relative accuracy (plus rank slack)
        exact = np.quantile(fin, float(q))
        assert abs(v - exact) <= 0.02 * abs(exact) + 1e-9, (q, v, exact)
    edges, counts = c.histogram
    assert sum(counts) == fin.size and len(counts) <= 64 and edges[0] <= fin.min() and edges[-1] > fin.max()
    assert counts == np.histogram(fin, bins=edges)[0].tolist()
    assert p["small_int"].distinct == 30 and p["small_int"].distinct_exact
    assert abs(p["big_int"].distinct - 20_000) < 0.05 * 20_000 and not p["big_int"].distinct_exact
    assert abs(p["ids"].distinct - 20_000) < 0.05 * 20_000
    cat = p["cat"]
    assert cat.nulls == int(pd.isna(t["cat"].to_pandas()).sum())
    assert dict(cat.top()) == t["cat"].to_pandas().value_counts().to_dict()
    assert p["flag"].kind == "boolean" and dict(p["flag"].top())["true"] == int(
        t["flag"].to_numpy(zero_copy_only=False).sum()
    )
    assert p["dict"].kind == "categorical" and p["dict"].distinct == 2
    assert p["when"].kind == "datetime" and p["when"].max - p["when"].min == 19_999 * 60
    assert p.rows == 20_000


def test_merge_of_halves_equals_whole() -> None:
    t = _table(30_000, seed=3)
    whole = _profile(t, 8192)
    a = _profile(t.slice(0, 11_000), 5000)
    b = _profile(t.slice(11_000), 3000)
    merged = a.merge(b)
    assert merged.rows == whole.rows
    for name, w in whole.columns.items():
        m = merged[name]
        assert (m.count, m.nulls, m.nan, m.min, m.max) == (w.count, w.nulls, w.nan, w.min, w.max), name
        assert m.histogram == w.histogram, name  # aligned power-of-two bins: exact
        assert m.dd_pos == w.dd_pos and m.dd_neg == w.dd_neg and m.quantiles == w.quantiles, name
        if w.mean is not None:
            assert math.isclose(m.mean, w.mean, rel_tol=1e-9, abs_tol=1e-9) and math.isclose(
                m.std, w.std, rel_tol=1e-9
            ), name
        assert m.distinct_exact == w.distinct_exact, name
        if w.distinct_exact:
            assert m.distinct == w.distinct and m.values == w.values, name
        else:  # HyperLogLog registers merge exactly (max), so the estimate is identical
            assert np.array_equal(m.hll, w.hll) and m.distinct == w.distinct, name
    # JSON round trip keeps everything needed to merge again
    again = Profile.from_dict(json.loads(merged.to_json()))
    assert again.merge(Profile()).to_dict()["columns"] == merged.to_dict()["columns"]


def test_top_values_beyond_the_tracking_limit_are_lower_bounds() -> None:
    n = 3 * MAX_TRACKED
    vals = [f"v{i}" for i in range(n)] + ["hot"] * 500
    p = yard.data.profile(pd.DataFrame({"s": vals}))
    c = p["s"]
    assert not c.top_exact if hasattr(c, "top_exact") else not c.values_exact
    assert c.top(1) == [("hot", 500)]
    assert abs(c.distinct - (n + 1)) < 0.05 * n


def test_profile_of_files_and_bad_input(tmp_path) -> None:
    df = pd.DataFrame({"a": [1, 2, None], "b": ["x", "y", "x"]})
    df.to_csv(tmp_path / "d.csv", index=False)
    p = yard.data.profile(tmp_path / "d.csv")
    assert p["a"].nulls == 1 and p["b"].top() == [("x", 2), ("y", 1)]
    from modelyard.errors import InvalidArgumentError, NotFoundError, SerializationError

    with pytest.raises(NotFoundError, match=r"Cannot profile '.*nope\.parquet': no such file"):
        yard.data.profile(tmp_path / "nope.parquet")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InvalidArgumentError, match="not a Parquet, CSV or Arrow/Feather file"):
        yard.data.profile(tmp_path / "notes.txt")
    with pytest.raises(InvalidArgumentError, match="The 'data' parameter of profile must be"):
        yard.data.profile([1, 2, 3])
    with pytest.raises(SerializationError, match="not a modelyard profile"):
        Profile.from_dict({"type": "other"})
