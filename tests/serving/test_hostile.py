"""One client cannot take the service down or poison what others see: bad values, deep JSON,
wrong JSON types, misspelt columns, headerless CSV (issues 12 and 13)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from modelyard.serving import build_app

ROW = {"x": 0.5, "y": -0.2, "z": 1.0}
JSON = {"content-type": "application/json"}


def call(app, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def strict_app(served_store):  # type: ignore[no-untyped-def]
    """clf/1 (sklearn, numeric fast path) with a breaker that opens after 4 failures of 5."""
    spec = {
        "models": {"primary": "clf/1"},
        "breaker": {"error_rate": 0.5, "window": 10, "min_requests": 4, "open_s": 600},
    }
    server = build_app(spec, uri=served_store, prediction_log=False)
    yield server
    server.close()


BAD_VALUES = [
    (
        b'{"records": [{"x": NaN, "y": 1, "z": 1}]}',
        "column 'x' row 0 is NaN; numbers must be finite (send null for a missing value)",
    ),
    (
        b'{"records": [{"x": 1, "y": Infinity, "z": 1}]}',
        "column 'y' row 0 is Infinity; numbers must be finite (send null for a missing value)",
    ),
    (
        b'{"columns": ["x", "y", "z"], "data": [[1, 2, 3], [1, 2, -Infinity]]}',
        "column 'z' row 1 is -Infinity; numbers must be finite (send null for a missing value)",
    ),
    (
        b'{"records": [{"x": {"a": 1}, "y": 1, "z": 1}]}',
        "column 'x' row 0 holds an object; send one number, string, true/false or null per cell",
    ),
    (
        b'{"records": [{"x": 1, "y": [1, 2], "z": 1}]}',
        "column 'y' row 0 holds a list; send one number, string, true/false or null per cell",
    ),
]


def test_bad_values_are_422_and_never_count_as_model_failures(strict_app) -> None:
    from modelyard.rollout._analysis import snapshot, version_stats

    for _ in range(3):  # far more bad requests than the breaker needs to open
        for body, problem in BAD_VALUES:
            r = call(strict_app, "POST", "/v1/models/clf/predict", content=body, headers=JSON)
            assert r.status_code == 422, (body, r.text)
            assert r.json()["code"] == "invalid_input"
            assert r.json()["error"] == "The input holds values no model can take; see 'problems'."
            assert r.json()["problems"] == [problem]
        r = call(
            strict_app,
            "POST",
            "/v1/models/clf/predict",
            content=b'{"records": [{"x": "\\ud800", "y": 1, "z": 1}]}',
            headers=JSON,
        )
        assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        assert r.json()["error"] == (
            "The body holds a string with a lone surrogate escape (like \\ud800); "
            "strings must be valid Unicode."
        )
    r = call(
        strict_app,
        "POST",
        "/v1/models/clf/predict",
        headers=JSON,
        content=b'{"records": [{"x": NaN, "y": 1, "z": 123456789012345678901234567890}]}',
    )
    assert r.status_code == 422 and r.json()["problems"] == [
        "column 'x' row 0 is NaN; numbers must be finite (send null for a missing value)",
        "column 'z' row 0 is an integer beyond 64 bits (12345678901234567890...)",
    ]
    rt = strict_app.deployment.primary
    assert rt.breaker.state.value == "closed" and rt.breaker.to_dict()["window_failures"] == 0
    assert rt.batcher.cost.a == pytest.approx(0.0005)  # no batch ever ran: the checks came first
    ok = call(strict_app, "POST", "/v1/models/clf/predict", json={"records": [ROW]})
    assert ok.status_code == 200 and ok.json()["fallback"] is False
    # the rollout analysis sees them as invalid requests, not errors of the version
    stats = version_stats(snapshot(strict_app.metrics.render()[0].decode(), "clf"), 1)
    assert stats["outcomes"]["invalid"] == 3 * len(BAD_VALUES) + 1 and stats["errors"] == 0
    assert stats["requests"] == 1 and stats["error_rate"] == 0


def test_bad_values_on_every_wire_format(strict_app) -> None:
    cases = [
        ("/invocations", b'{"dataframe_split": {"columns": ["x", "y", "z"], "data": [[NaN, 1, 1]]}}', "x"),
        ("/invocations", b'{"inputs": {"x": [1], "y": [{"deep": 1}], "z": [1]}}', "y"),
        (
            "/v2/models/clf/infer",
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]},'
            b'{"name": "y", "shape": [1], "datatype": "FP64", "data": [1]},'
            b'{"name": "z", "shape": [1], "datatype": "FP64", "data": [Infinity]}]}',
            "z",
        ),
    ]
    for path, body, col in cases:
        r = call(strict_app, "POST", path, content=body, headers=JSON)
        assert r.status_code == 422, (path, r.text)
        assert r.json()["problems"][0].startswith(f"column {col!r} row 0 ")
    csv = call(
        strict_app, "POST", "/invocations", content=b"x,y,z\n1,2,inf\n", headers={"content-type": "text/csv"}
    )
    assert csv.status_code == 422
    assert csv.json()["problems"] == [
        "column 'z' row 0 is Infinity; numbers must be finite (send null for a missing value)"
    ]


def test_bad_values_reach_neither_model_nor_fallback(served_store, metric) -> None:
    """A pyfunc model (no fast path) with a model fallback: a bad value is the client's 422."""
    spec = {
        "models": {"primary": "flaky/1"},
        "fallback": {"model": "flaky/2"},
        "allow_pickle": True,
        "breaker": {"error_rate": 0.5, "window": 10, "min_requests": 2, "open_s": 600},
    }
    server = build_app(spec, uri=served_store, prediction_log=False)
    try:
        for _ in range(4):
            r = call(
                server,
                "POST",
                "/v1/models/flaky/predict",
                content=b'{"records": [{"x": Infinity, "y": 1, "z": 1}]}',
                headers=JSON,
            )
            assert r.status_code == 422 and r.json()["code"] == "invalid_input"
        assert metric(server, "yard_serving_fallbacks_total", model="flaky") == 0
        assert metric(server, "yard_serving_requests_total", endpoint="native", status="422") == 4
        assert server.deployment.primary.breaker.state.value == "closed"
    finally:
        server.close()


def test_deep_json_and_wrong_json_types_are_4xx(strict_app) -> None:
    deep = b'{"records": [{"x": ' + b"[" * 5000 + b"]" * 5000 + b', "y": 1, "z": 1}]}'
    for path in ("/v1/models/clf/predict", "/invocations", "/v2/models/clf/infer", "/v1/models/clf/feedback"):
        r = call(strict_app, "POST", path, content=deep, headers=JSON)
        assert r.status_code == 400, (path, r.text)
        assert r.json() == {
            "error": "The request body nests arrays/objects deeper than 64 levels.",
            "code": "too_deep",
            "request_id": r.json()["request_id"],
        }
    moderately = b'{"records": [{"x": ' + b"[" * 200 + b"1" + b"]" * 200 + b', "y": 1, "z": 1}]}'
    r = call(strict_app, "POST", "/v1/models/clf/predict", content=moderately, headers=JSON)
    assert r.status_code == 400 and r.json()["code"] == "too_deep"

    def v2(**t):  # type: ignore[no-untyped-def]
        tensor = {"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3], **t}
        return call(strict_app, "POST", "/v2/models/clf/infer", json={"inputs": [tensor]})

    r = v2(name=["x"])
    assert r.status_code == 400
    assert r.json()["error"] == "An input tensor's 'name' must be a non-empty string. Got ['x'] instead."
    r = v2(datatype=["FP64"])
    assert r.status_code == 400
    assert r.json()["error"].startswith("Input 'x' has unknown datatype ['FP64']; use one of ['BOOL', ")
    r = v2(shape=[1, 3.0])
    assert r.status_code == 400 and "has a bad shape [1, 3.0]" in r.json()["error"]
    r = v2(shape={"a": 1})
    assert r.status_code == 400 and "has a bad shape <dict of 1>" in r.json()["error"]
    r = call(
        strict_app,
        "POST",
        "/v2/models/clf/infer",
        json={
            "id": {"a": 1},
            "inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}],
        },
    )
    assert r.status_code == 400 and r.json()["error"] == "'id' must be a string. Got <dict of 1> instead."


def test_feedback_answers_4xx_and_keeps_the_connection(served_store) -> None:
    spec = {"models": {"a": "clf/1", "b": "clf/2"}, "traffic": {"kind": "ab", "arms": {"a": 50, "b": 50}}}
    server = build_app(spec, uri=served_store, prediction_log=False)

    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=server, raise_app_exceptions=True), base_url="http://t"
        ) as c:
            out = []
            for body in (
                b'{"key": "u1", "value": 1' + b"0" * 400 + b"}",
                b'{"key": ' + b"[" * 3000 + b"]" * 3000 + b"}",
                b'{"feedback": [{"key": "u1", "value": NaN}]}',
            ):
                out.append(await c.post("/v1/models/clf/feedback", content=body, headers=JSON))
            return out

    try:
        big, deep, nan = asyncio.run(go())  # raise_app_exceptions: a re-raised error would fail here
        assert big.status_code == 400 and big.json()["code"] == "bad_value"
        assert big.json()["error"].startswith(
            "feedback[0].value must be a finite number (0/1 for conversions). Got '1000"
        )
        assert deep.status_code == 400 and deep.json()["code"] == "too_deep"
        assert nan.status_code == 400 and nan.json()["error"] == (
            "feedback[0].value must be a finite number (0/1 for conversions). Got 'nan' instead."
        )
    finally:
        server.close()


def test_misspelt_column_names_the_unexpected_one_and_the_near_match(strict_app) -> None:
    r = call(
        strict_app, "POST", "/v1/models/clf/predict", json={"records": [{"x": 1, "yy": 2, "z": 3, "junk": 1}]}
    )
    assert r.status_code == 422
    body = r.json()
    assert (
        body["error"]
        == "The input is missing 1 of the model's 3 columns and has 2 it does not know; see 'problems'."
    )
    assert body["problems"] == [
        "missing column 'y'",
        "unexpected column 'yy'. Did you mean 'y'?",
        "unexpected column 'junk'",
    ]
    many = {f"c{i}": [1] for i in range(50_000)}
    r = call(strict_app, "POST", "/invocations", json={"inputs": many})
    assert r.status_code == 422
    assert r.json()["problems"][:3] == ["missing column 'x'", "missing column 'y'", "missing column 'z'"]
    assert (
        r.json()["problems"][-1] == "... and 49980 more unexpected columns"
        and len(r.json()["problems"]) == 24
    )


def test_headerless_csv_says_the_first_row_looks_like_data(strict_app) -> None:
    r = call(
        strict_app,
        "POST",
        "/invocations",
        content=b"0.5,-0.2,1.0\n1,2,3\n",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422
    assert r.json()["error"] == (
        "The first row of the CSV looks like data, not a header; start the body with a "
        "header row naming the columns: x,y,z."
    )
    r = call(
        strict_app, "POST", "/invocations", content=b"1,1,1\n1,2,3\n", headers={"content-type": "text/csv"}
    )
    assert r.status_code == 422 and r.json()["error"].startswith("The first row of the CSV looks like data")
    r = call(
        strict_app,
        "POST",
        "/invocations",
        content=b"x,y,z\n0.5,,1\n1,2,3\n",
        headers={"content-type": "text/csv"},
    )
    assert r.status_code == 422  # an empty cell is a missing value, which the signature does not allow
    assert r.json()["problems"] == ["column 'y' has 1 missing value(s) but the signature allows none"]


def test_prediction_log_keeps_what_the_model_received(served_store) -> None:
    """Extra columns and int values for float columns do not reach the log: one request cannot
    add 50,000 columns or turn a feature's type."""
    from modelyard.serving import read_prediction_log
    from modelyard.serving._predlog import features_and_outputs

    for ref, name in (("flaky/2", "flaky"), ("clf/2", "clf")):  # pyfunc (regular path), sklearn (fast path)
        server = build_app({"models": {"primary": ref}, "allow_pickle": True}, uri=served_store)
        try:
            rids = []
            for body in (
                {"records": [{"x": 1, "y": 2, "z": 3, "junk": "a"}]},
                {
                    "inputs": {
                        "x": [1, 2],
                        "y": [1, 0.5],
                        "z": [0, 1],
                        **{f"c{i}": [1, 2] for i in range(50_000)},
                    }
                },
                {"records": [ROW]},
            ):
                r = call(
                    server,
                    "POST",
                    f"/v1/models/{name}/predict" if "records" in body else "/invocations",
                    json=body,
                )
                assert r.status_code == 200, r.text
                rids.append(r.headers["x-request-id"])
        finally:
            server.close()
        df = read_prediction_log(served_store, name, model_version=2)
        df = df[df["request_id"].isin(rids)]
        assert len(df) == 4
        assert sorted(c for c in df.columns if c.startswith("input.")) == ["input.x", "input.y", "input.z"]
        assert {str(df[c].dtype) for c in ("input.x", "input.y", "input.z")} == {"float64"}
        assert df["input.y"].tolist() == [2.0, 1.0, 0.5, -0.2]
        frame, _ = features_and_outputs(df)
        assert list(frame.columns)[:3] == ["x", "y", "z"]


def test_class_probabilities_over_http(strict_app, served_store) -> None:
    import pandas as pd

    from modelyard.registry import load_model

    want = load_model("clf/1", served_store).predict_proba(pd.DataFrame([ROW, {**ROW, "x": -3.0}])).tolist()
    r = call(
        strict_app,
        "POST",
        "/v1/models/clf/predict",
        json={"records": [ROW, {**ROW, "x": -3.0}], "params": {"proba": True}},
    )
    assert r.status_code == 200 and r.json()["predictions"] == want and r.json()["classes"] == [0, 1]
    q = call(
        strict_app, "POST", "/v1/models/clf/predict?proba=true", json={"records": [ROW, {**ROW, "x": -3.0}]}
    )
    assert q.json()["predictions"] == want
    inv = call(
        strict_app,
        "POST",
        "/invocations?proba=1",
        content=b"x,y,z\n0.5,-0.2,1.0\n-3,-0.2,1.0\n",
        headers={"content-type": "text/csv"},
    )
    assert inv.json() == {"predictions": want, "classes": [0, 1]}
    v2 = call(
        strict_app,
        "POST",
        "/v2/models/clf/infer",
        json={
            "outputs": [{"name": "probabilities"}],
            "inputs": [
                {"name": "in", "shape": [2, 3], "datatype": "FP64", "data": [0.5, -0.2, 1.0, -3.0, -0.2, 1.0]}
            ],
        },
    )
    out = v2.json()["outputs"][0]
    assert (
        out["name"] == "probabilities" and out["shape"] == [2, 2] and out["parameters"] == {"classes": [0, 1]}
    )
    assert out["data"] == [p for row in want for p in row]
    plain = call(
        strict_app, "POST", "/v1/models/clf/predict", json={"records": [ROW], "params": {"proba": False}}
    )
    assert plain.json()["predictions"] in ([0], [1]) and "classes" not in plain.json()
    bad = call(
        strict_app, "POST", "/v1/models/clf/predict", json={"records": [ROW], "params": {"proba": "yes"}}
    )
    assert (
        bad.status_code == 400 and bad.json()["error"] == "'params' must be an object like {\"proba\": true}."
    )
    bad = call(
        strict_app,
        "POST",
        "/v2/models/clf/infer",
        json={
            "outputs": [{"name": "probabilitys"}],
            "inputs": [{"name": "in", "shape": [1, 3], "datatype": "FP64", "data": [0.5, -0.2, 1.0]}],
        },
    )
    assert bad.status_code == 400 and bad.json()["error"] == (
        "Unknown output 'probabilitys'; the outputs are 'predict' and 'probabilities'. Did you "
        "mean 'probabilities'?"
    )


def test_probabilities_of_a_model_without_them_is_422(served_store) -> None:
    server = build_app(
        {"models": {"primary": "flaky/2"}, "allow_pickle": True}, uri=served_store, prediction_log=False
    )
    try:
        r = call(server, "POST", "/v1/models/flaky/predict?proba=true", json={"records": [ROW]})
        assert r.status_code == 422 and r.json()["error"] == (
            "Model flaky/2 (pyfunc) has no class probabilities (predict_proba); ask without 'proba'."
        )
    finally:
        server.close()


def test_a_warning_on_every_predict_is_logged_once_and_counted(register_extra, caplog, metric) -> None:
    import logging
    import warnings

    uri = register_extra("warner")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # the worst case: nothing holds repeats back
        server = build_app(
            {"models": {"primary": "warner/1"}, "allow_pickle": True}, uri=uri, prediction_log=False
        )
        try:
            with caplog.at_level(logging.WARNING, logger="modelyard.serving"):
                for _ in range(40):
                    assert (
                        call(server, "POST", "/v1/models/warner/predict", json={"records": [ROW]}).status_code
                        == 200
                    )
            calls = server.deployment.primary.model.raw.calls
            count = metric(
                server,
                "yard_serving_model_warnings_total",
                model="warner",
                version="1",
                category="UserWarning",
            )
        finally:
            server.close()
    logged = [r.getMessage() for r in caplog.records if "warned" in r.getMessage()]
    assert calls >= 40 and count == calls
    assert logged == [
        "model warner/1 warned: UserWarning: X does not have valid feature names, but Warner was fitted with "
        "feature names (logged once; repeats are counted in yard_serving_model_warnings_total)"
    ]
    assert not [w for w in seen if "valid feature names" in str(w.message)]  # none reached the process's hook


def test_dates_are_parsed_at_the_codec_without_pandas_warnings(register_extra) -> None:
    import warnings

    uri = register_extra("dated")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        server = build_app({"models": {"primary": "dated/1"}, "allow_pickle": True}, uri=uri)
        seen.clear()
        try:
            r = call(
                server,
                "POST",
                "/v1/models/dated/predict",
                json={"records": [{"d": "01/03/2024 10:00", "x": 1}]},
            )
            assert r.status_code == 200 and r.json()["predictions"] == [3.0]
            r = call(
                server,
                "POST",
                "/v1/models/dated/predict",
                json={"records": [{"d": "2024-01-02", "x": 0}, {"d": "2024-01-05T10:00:00", "x": 0}]},
            )
            assert r.status_code == 200 and r.json()["predictions"] == [1.0, 4.0]
            r = call(server, "POST", "/v1/models/dated/predict", json={"records": [{"d": "someday", "x": 0}]})
            assert r.status_code == 422
            assert r.json()["problems"] == ["column 'd' row 0 ('someday') does not parse as a date"]
            assert (
                server.deployment.primary.warnings.counts == {}
            )  # pandas never warned in the predict thread
        finally:
            server.close()
    assert [str(w.message) for w in seen if "format" in str(w.message)] == []
