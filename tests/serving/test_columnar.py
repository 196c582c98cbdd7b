"""All-number request tables decoded straight into a float matrix: the same payload, the same
answers and the same errors as the regular decoders, and the regular path for anything else."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import orjson
import pytest

from modelyard.serving import build_app
from modelyard.serving._codec import _may_nest_deep, decode_mlflow, decode_native
from modelyard.serving._columnar import NumericPayload, numeric_payload

NAMES = ["x", "y", "z"]
ROWS = [{"x": 0.5, "y": -2, "z": 1.25}, {"x": -1.5, "y": 3, "z": 0.0}, {"x": 2.0, "y": 0, "z": -0.5}]
SPLIT = {"columns": NAMES, "data": [list(r.values()) for r in ROWS]}
COLUMNS = {c: [r[c] for r in ROWS] for c in NAMES}

BODIES = [
    ("native", {"records": ROWS}),
    ("native", SPLIT),
    ("native", {"inputs": COLUMNS}),
    ("native", {"records": ROWS, "version": 2}),
    ("invocations", {"dataframe_split": SPLIT}),
    ("invocations", {"dataframe_records": ROWS}),
    ("invocations", {"instances": SPLIT["data"]}),
    ("invocations", {"inputs": COLUMNS}),
    ("invocations", {"instances": ROWS}),
]


def regular(api: str, obj: dict) -> tuple:  # type: ignore[type-arg]
    if api == "native":
        return decode_native(obj, NAMES)
    return decode_mlflow(obj, NAMES), None


@pytest.mark.parametrize(("api", "obj"), BODIES)
def test_numeric_tables_equal_the_regular_payload(api: str, obj: dict) -> None:  # type: ignore[type-arg]
    got = numeric_payload(obj, api, NAMES, orjson.dumps(obj))
    assert got is not None
    payload, version = got
    want, want_version = regular(api, obj)
    assert version == want_version
    assert isinstance(payload, NumericPayload) and payload.n == want.n == 3
    assert payload.key == want.key
    assert np.array_equal(payload.array, np.array([want.columns[c] for c in want.columns], float).T)
    assert payload.columns == want.columns  # built by the regular decoder, from the JSON values
    assert [type(v) for v in payload.columns["y"]] == [int, int, int]  # ints stay ints


@pytest.mark.parametrize(
    "obj",
    [
        {"records": [{"x": 1.0, "y": True}, {"x": 2.0, "y": False}]},  # booleans
        {"records": [{"x": 1.0, "y": None}, {"x": 2.0, "y": 1.0}]},  # a null
        {"records": [{"x": 1.0, "y": 2.0}, {"y": 2.0, "x": 1.0}]},  # keys in another order
        {"records": [{"x": "a", "y": 1.0}, {"x": "b", "y": 2.0}]},  # strings
        {"records": [{"x": "1.5", "y": 1.0}, {"x": "2.5", "y": 2.0}]},  # numbers as strings
        {"records": [{"x": 1.0, "y": True}, {"x": 2.0, "y": 1}]},  # a bool among numbers
        {"records": [{"x": [1.0], "y": 1.0}, {"x": [2.0], "y": 2.0}]},  # lists in cells
        {"records": [{"x": 1.0, "y": 2.0}]},  # one row: the lists are as cheap
        {"columns": ["x", "y"], "data": [[1.0, 2.0], [3.0]]},  # ragged
        {"columns": ["x", "x"], "data": [[1.0, 2.0], [3.0, 4.0]]},  # repeated names
        {"columns": ["x", "y"], "data": [[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]]},  # too wide
        {"inputs": {"x": [1.0, 2.0], "y": 3.0}},  # a scalar column
        {"records": ROWS, "version": "2"},  # the regular decoder answers the 400
        {"records": ROWS, "version": True},
    ],
)
def test_anything_else_takes_the_regular_path(obj: dict) -> None:  # type: ignore[type-arg]
    assert numeric_payload(obj, "native", NAMES, json.dumps(obj).encode()) is None


def test_integers_beyond_64_bits_take_the_regular_path() -> None:
    obj = {"records": [{"x": 2**70, "y": 1.5}, {"x": 1, "y": 2.5}]}
    assert numeric_payload(obj, "native", NAMES, json.dumps(obj).encode()) is None


def test_checked_numeric_selects_refuses_and_keeps_options() -> None:
    obj = {"records": [{"b": 1.0, "a": 2, "extra": 3.0}, {"b": 4.0, "a": 5, "extra": 6.0}]}
    got = numeric_payload(obj, "native", None, json.dumps(obj).encode())
    assert got is not None
    p = got[0]
    p.options = {"proba": True}
    sel = p.checked_numeric(["a", "b"])
    assert sel is not None and sel.names == ["a", "b"] and sel.options == {"proba": True}
    assert sel.array.tolist() == [[2.0, 1.0], [5.0, 4.0]]
    assert sel.columns == {"a": [2, 5], "b": [1.0, 4.0]}
    assert p.checked_numeric(["b", "a", "extra"]) is p  # already in that order
    assert p.checked_numeric(["a", "missing"]) is None  # the regular check lists what is missing
    for bad in (float("nan"), float("inf"), 2.0**64):
        q = NumericPayload(["a"], np.array([[1.0], [bad]]), lambda: None)  # type: ignore[arg-type,return-value]
        assert q.checked_numeric(["a"]) is None


def test_nesting_check_peels_levels_exactly() -> None:
    for depth, deep in ((3, False), (64, False), (65, True), (300, True)):
        body = b"[" * depth + b"1" + b"]" * depth
        assert _may_nest_deep(body) is deep
    rows = orjson.dumps({"records": [{"a": 1.0}] * 200})
    assert _may_nest_deep(rows) is False
    assert _may_nest_deep(orjson.dumps({"a": "]" * 100, "b": [[1]] * 80})) is True  # unbalanced: check


@pytest.fixture(scope="module")
def app(served_store):  # type: ignore[no-untyped-def]
    server = build_app({"models": {"primary": "clf@production"}}, uri=served_store, prediction_log=False)
    yield server
    server.close()


def post(app, path: str, body: object):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post(path, json=body)

    return asyncio.run(go())


def test_every_body_format_gives_the_same_predictions(app) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    rows = [dict(zip(NAMES, map(float, r), strict=True)) for r in rng.normal(size=(50, 3))]
    split = {"columns": NAMES, "data": [list(r.values()) for r in rows]}
    native = [
        {"records": rows},
        split,
        {"inputs": {c: [r[c] for r in rows] for c in NAMES}},
        {"records": [{**r, "y": None} if i == 7 else r for i, r in enumerate(rows)]},  # regular path
    ]
    answers = [post(app, "/v1/models/clf/predict", b) for b in native]
    answers.append(post(app, "/invocations", {"dataframe_split": split}))
    assert [a.status_code for a in answers] == [200, 200, 200, 422, 200]
    preds = [a.json()["predictions"] for a in answers if a.status_code == 200]
    assert len(preds[0]) == 50 and all(p == preds[0] for p in preds)


def test_a_bad_value_in_a_table_gets_the_regular_message(app) -> None:  # type: ignore[no-untyped-def]
    rows = ['{"x": 1.0, "y": 2.0, "z": NaN}'] + ['{"x": 1.0, "y": 2.0, "z": 3.0}'] * 4
    r = post_raw(app, '{"records": [' + ", ".join(rows) + "]}")
    assert r.status_code == 422
    assert r.json()["problems"] == [
        "column 'z' row 0 is NaN; numbers must be finite (send null for a missing value)"
    ]
    r = post(app, "/v1/models/clf/predict", {"columns": ["x", "y"], "data": [[1.0, 2.0], [3.0, 4.0]]})
    assert r.status_code == 422 and "missing column 'z'" in r.json()["problems"]


def post_raw(app, body: str):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post(
                "/v1/models/clf/predict", content=body, headers={"content-type": "application/json"}
            )

    return asyncio.run(go())


def test_a_huge_number_in_a_table_gets_the_regular_checks(app) -> None:  # type: ignore[no-untyped-def]
    """Beyond 2**63 the table leaves the float matrix for the regular checks (was a 503: the
    table lacked the payload's ``checked`` columns), and answers as those rows one by one do."""
    rows = [{"x": 1e300 if i == 3 else 0.5, "y": 0.25, "z": 1.0} for i in range(40)]
    r = post(app, "/v1/models/clf/predict", {"records": rows})
    assert r.status_code == 200, r.text
    one_by_one = [
        post(app, "/v1/models/clf/predict", {"records": [row]}).json()["predictions"][0] for row in rows[:5]
    ]
    assert r.json()["predictions"][:5] == one_by_one
