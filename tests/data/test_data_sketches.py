"""The sketches apart from the profile builder: stored profiles still load and merge; allocator tuning is
opt-in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from modelyard.data import Profile
from modelyard.data import _sketches as sk
from modelyard.data._profile import ProfileBuilder
from modelyard.errors import SerializationError

FIXTURE = Path(__file__).parent / "fixtures" / "profile_format1.json"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _table() -> (
    pa.Table
):  # the table tests/data/fixtures/profile_format1.json was made from (before the split)
    n = 6000
    i = np.arange(n)
    return pa.table(
        {
            "x": (i % 97) * 1.5 - 20.0,
            "ids": pa.array([f"id-{k}" for k in i]),
            "big": i * 7919 % 100003,
            "cat": pa.array(np.array(["a", "b", "c"])[i % 3]),
        }
    )


def _profile(t: pa.Table, chunk: int) -> Profile:
    b = ProfileBuilder(threads=1)
    for batch in t.to_batches(max_chunksize=chunk):
        b.add(batch)
    return b.result()


def test_a_profile_stored_before_the_split_loads_and_merges_unchanged() -> None:
    stored = json.loads(FIXTURE.read_text())
    old = Profile.from_dict(stored)
    new = _profile(_table(), 2500)
    assert [c.to_dict() for c in old.columns.values()] == stored["columns"]  # loads back to the same JSON
    # today's builder writes the same state, except which 1000 of the 6000 ids (all seen once) are kept:
    # the old builder kept an arbitrary subset (numpy's argpartition among equal counts, which varies
    # with the numpy version and the CPU); today's keeps the smallest ids, the same on every install
    written = {c["name"]: c for c in new.to_dict()["columns"]}
    for c in stored["columns"]:
        if c["name"] == "ids":
            kept = sorted(f"id-{k}" for k in range(6000))[:1000]
            assert sorted(written["ids"]["_state"].pop("values")) == kept
            assert written["ids"].pop("top") == [[v, 1] for v in kept[:20]]
            c = {k: v for k, v in c.items() if k != "top"} | {
                "_state": {k: v for k, v in c["_state"].items() if k != "values"}
            }
        assert written[c["name"]] == c
    both = Profile.from_dict(stored).merge(new)
    assert (
        both.rows == 12_000 and both["ids"].distinct == old["ids"].distinct
    )  # HLL max-merge of equal registers
    assert both["x"].dd_pos == {k: 2 * c for k, c in old["x"].dd_pos.items()}
    summed = {
        v: (v in old["ids"].values) + (v in new["ids"].values)
        for v in {*old["ids"].values, *new["ids"].values}
    }
    assert both["ids"].values == dict(sorted(summed.items(), key=lambda vc: (-vc[1], vc[0]))[:1000])


@pytest.mark.parametrize("chunk", [6000, 2500, 999, 1001])
def test_the_values_kept_past_max_tracked_do_not_depend_on_row_order_or_batches(chunk: int) -> None:
    t = _table()
    reverse = t.take(pa.array(np.arange(t.num_rows)[::-1]))
    want = dict.fromkeys(sorted(f"id-{k}" for k in range(6000))[:1000], 1)
    for table in (t, reverse):
        ids = _profile(table, chunk)["ids"]
        assert (ids.values_exact, ids.values) == (False, want)


def test_a_stored_profile_with_infinite_values_merges_after_a_json_round_trip() -> None:
    t = pa.table({"x": [1.0, float("inf"), 2.0, float("-inf"), 3.0, float("nan")]})
    a = Profile.from_dict(json.loads(_profile(t.slice(0, 3), 3).to_json()))
    b = Profile.from_dict(json.loads(_profile(t.slice(3), 3).to_json()))
    m = a.merge(b)["x"]  # raised TypeError ('<' between float and str) before
    assert (m.min, m.max, m.count, m.nan, m.n_num) == (float("-inf"), float("inf"), 6, 1, 3)
    assert m.to_dict()["min"] == "-Infinity" and m.to_dict()["max"] == "Infinity"


def test_damaged_sketch_state_is_refused_with_a_clear_message() -> None:
    stored = json.loads(FIXTURE.read_text())
    ids = next(c for c in stored["columns"] if c["name"] == "ids")
    for bad in (
        "not base64!",
        base64.b64encode(b"\x01" * 100).decode(),
        base64.b64encode(b"\xff" * sk.HLL_M).decode(),
        42,
    ):
        ids["_state"]["hll"] = bad
        with pytest.raises(SerializationError) as err:
            Profile.from_dict(stored)
        assert str(err.value) == (
            "This profile's HyperLogLog state is damaged (expected base64 of 4096 registers of at most 53); "
            "profile the data again."
        )


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        (lambda d: d.pop("rows"), "KeyError: 'rows'"),
        (
            lambda d: d["columns"][0]["_state"].update(dd_pos={"x": 1}),
            "ValueError: invalid literal for int() with base 10: 'x'",
        ),
        (lambda d: d["columns"][1].update(count=None), "TypeError: int() argument must be a string"),
        (lambda d: d.update(columns=[7]), "TypeError: 'int' object is not subscriptable"),
    ],
)
def test_a_damaged_stored_profile_is_refused_not_crashed_on(damage, why: str) -> None:  # type: ignore[no-untyped-def]
    stored = json.loads(FIXTURE.read_text())
    damage(stored)
    with pytest.raises(SerializationError) as err:
        Profile.from_dict(stored)
    assert str(err.value).startswith(f"This modelyard profile is damaged ({why}")
    assert str(err.value).endswith("; profile the data again.")


def test_sketch_functions_agree_with_numpy() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(0, 3, 50_000)
    pos: dict[int, int] = {}
    neg: dict[int, int] = {}
    zero = sk.dd_add(pos, neg, x, float(np.abs(x).max()))
    for q in (0.05, 0.5, 0.95):
        exact = float(np.quantile(x, q))
        assert abs(sk.dd_quantile(pos, neg, zero, q) - exact) <= 0.02 * abs(exact) + 1e-9
    assert sk.dd_quantile({}, {}, 0, 0.5) is None
    reg = sk.hll_new()
    sk.hll_floats(reg, rng.integers(0, 20_000, 200_000).astype(np.float64))
    assert abs(sk.hll_estimate(reg) - 20_000) < 0.05 * 20_000
    assert np.array_equal(sk.hll_loads(sk.hll_dumps(reg)), reg)
    k, start, counts = sk.hist_of(x, float(x.min()), float(x.max()))
    edges = [(start + i) * 2.0**k for i in range(len(counts) + 1)]
    assert len(counts) <= sk.MAX_BINS and counts == np.histogram(x, bins=edges)[0].tolist()


_CHILD = r"""
import sys
import numpy as np, pyarrow as pa
from modelyard.data import _allocator
from modelyard.data._profile import ProfileBuilder
arg = {"none": None, "true": True, "false": False}[sys.argv[1]]
b = ProfileBuilder(threads=1, tune_allocator=arg)
b.add(pa.record_batch({"x": np.arange(60_000, dtype=np.float64)}))
b.result()
print("tuned" if _allocator.tuned() else "untouched")
"""


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        ("none", None, "untouched"),
        ("none", "1", "tuned"),
        ("true", None, "tuned"),
        ("false", "1", "untouched"),
        ("none", "0", "untouched"),
    ],
)
def test_a_library_user_s_allocator_is_tuned_only_when_asked(
    arg: str, env: str | None, expected: str
) -> None:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "YARD_TUNE_MALLOC"))}
    e["PYTHONPATH"] = SRC
    if env is not None:
        e["YARD_TUNE_MALLOC"] = env
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, arg], capture_output=True, text=True, env=e, timeout=120
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == expected


_CLI_CHILD = r"""
import sys
from modelyard.data import _allocator
from modelyard.cli import main
sys.argv = ["yard", "--uri", sys.argv[1], "data", "add", sys.argv[2], "--name", "t"]
try:
    main()
except SystemExit:
    pass
print("tuned" if _allocator.tuned() else "untouched")
"""


@pytest.mark.parametrize(("env", "expected"), [(None, "tuned"), ("0", "untouched")])
def test_the_yard_command_opts_in(tmp_path: Path, env: str | None, expected: str) -> None:
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": np.arange(60_000, dtype=np.float64)}), tmp_path / "t.parquet")
    e = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "YARD_TUNE_MALLOC"))}
    e["PYTHONPATH"] = SRC
    if env is not None:
        e["YARD_TUNE_MALLOC"] = env
    p = subprocess.run(
        [sys.executable, "-c", _CLI_CHILD, str(tmp_path / "s"), str(tmp_path / "t.parquet")],
        capture_output=True,
        text=True,
        env=e,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0].startswith("added t@v1") and p.stdout.strip().splitlines()[-1] == expected
