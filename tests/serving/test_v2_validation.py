"""Strict V2 request checks (the Open Inference Protocol's rules), the named outputs
``predict``/``probabilities`` and the metadata that lists them and the extensions."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.serving import build_app

WIDE = [f"f{i:02d}" for i in range(30)]


def call(app, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def wide_uri(served_store):  # type: ignore[no-untyped-def]
    """served_store plus wide/1: a LogisticRegression on 30 float columns."""
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import register_model

    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(120, 30)), columns=WIDE)
    y = (X["f00"] > 0).astype(int)
    register_model(LogisticRegression().fit(X, y), "wide", input_example=X.head(3), uri=served_store)
    return served_store


@pytest.fixture(scope="module")
def app(served_store):  # type: ignore[no-untyped-def]
    server = build_app({"models": {"primary": "clf/1"}}, uri=served_store, prediction_log=False)
    yield server
    server.close()


def infer(app, *tensors: dict, **top: object) -> httpx.Response:  # type: ignore[no-untyped-def]
    return call(app, "POST", "/v2/models/clf/infer", json={"inputs": list(tensors), **top})


ROW3 = {"name": "in", "shape": [1, 3], "datatype": "FP64", "data": [0.5, -0.2, 1.0]}


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (
            {"datatype": "BOOL", "data": [0.5, -0.2, 1.0]},
            "Input 'in' is BOOL but element 0 is a number with a fraction (0.5); BOOL data are true/false.",
        ),
        (
            {"datatype": "INT64", "data": [1, 2, 3.5]},
            "Input 'in' is INT64 but element 2 is a number with a fraction (3.5); INT64 data are integers.",
        ),
        (
            {"datatype": "BYTES", "data": ["a", 1.5, "c"]},
            "Input 'in' is BYTES but element 1 is a number with a fraction (1.5); BYTES data are strings.",
        ),
        (
            {"datatype": "FP64", "data": [1.0, True, 2.0]},
            "Input 'in' is FP64 but element 1 is true/false (True); FP64 data are numbers.",
        ),
        (
            {"datatype": "UINT8", "data": [1, 256, 3]},
            "Input 'in' is UINT8 but element 1 (256) is outside [0, 255].",
        ),
        (
            {"datatype": "INT8", "data": [[-129, 0, 1]]},
            "Input 'in' is INT8 but element 0 (-129) is outside [-128, 127].",
        ),
        (
            {"datatype": "FP64", "data": [1.0, {"a": 1}, 2.0]},
            "Input 'in' is FP64 but element 1 is an object (<dict of 1>); FP64 data are numbers.",
        ),
        (
            {"shape": [True]},
            "Input 'in' has a bad shape [True]; send a list of 1 to 8 non-negative integers like [2, 3].",
        ),
        (
            {"shape": [1, -3]},
            "Input 'in' has a bad shape [1, -3]; send a list of 1 to 8 non-negative integers like [2, 3].",
        ),
        ({"shape": [2, 3]}, "Input 'in' has 3 values but shape [2, 3] needs 6."),
        ({"datatype": "FP128"}, None),
    ],
)
def test_datatype_and_shape_are_checked_against_the_data(app, tensor, message) -> None:  # type: ignore[no-untyped-def]
    r = infer(app, {**ROW3, **tensor})
    assert r.status_code == 400, r.text
    if message is None:
        assert r.json()["error"].startswith("Input 'in' has unknown datatype 'FP128'; use one of ['BOOL',")
    else:
        assert r.json()["error"] == message


def test_integer_and_bool_data_that_fit_are_accepted(app) -> None:
    floats = infer(app, {**ROW3, "data": [1.0, 0.0, 1.0]}).json()["outputs"][0]["data"]
    for datatype, data in (("INT64", [1, 0, 1]), ("UINT8", [1, 0, 1]), ("BOOL", [True, False, True])):
        r = infer(app, {**ROW3, "datatype": datatype, "data": data})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == floats


def test_id_must_be_a_string(app) -> None:
    r = infer(app, ROW3, id=7)
    assert r.status_code == 400 and r.json()["error"] == "'id' must be a string. Got 7 instead."
    r = infer(app, ROW3, id="q-7")
    assert r.status_code == 200 and r.json()["id"] == "q-7"
    r = infer(app, ROW3)
    assert r.json()["id"] == r.headers["x-request-id"]


def test_unknown_outputs_are_400_naming_them(app) -> None:
    r = infer(app, ROW3, outputs=[{"name": "predict"}, {"name": "score"}, {"name": "proba"}])
    assert r.status_code == 400
    assert r.json() == {
        "error": "Unknown outputs 'score', 'proba'; the outputs are 'predict' and 'probabilities'.",
        "code": "unknown_output",
        "request_id": r.json()["request_id"],
    }
    r = infer(app, ROW3, outputs=[{"name": "predict"}, {"name": "predict"}])
    assert (
        r.status_code == 400
        and r.json()["error"] == "'outputs' names an output twice: ['predict', 'predict']."
    )
    r = infer(app, ROW3, outputs=[])
    assert r.status_code == 400 and r.json()["error"].startswith("'outputs' must be a non-empty list")
    r = infer(app, ROW3, outputs=[{"name": "probabilities", "parameters": {"classification": 2}}])
    assert r.status_code == 400 and "'classification', an extension this server does not have" in r.text
    r = infer(app, ROW3, outputs=[{"name": "predict", "parameters": {"binary_data": "yes"}}])
    assert r.status_code == 400 and r.json()["error"] == (
        "Parameter 'binary_data' of output 'predict' must be true or false. Got 'yes' instead."
    )
    r = infer(app, ROW3, parameters={"binary_data_output": 1})
    assert r.status_code == 400 and r.json()["error"] == (
        "Parameter 'binary_data_output' of the request must be true or false. Got 1 instead."
    )


def test_a_model_without_probabilities_has_only_predict(served_store) -> None:
    server = build_app(
        {"models": {"primary": "flaky/2"}, "allow_pickle": True}, uri=served_store, prediction_log=False
    )
    try:
        meta = call(server, "GET", "/v2/models/flaky").json()
        assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        r = call(
            server,
            "POST",
            "/v2/models/flaky/infer",
            json={"inputs": [{**ROW3, "name": "x"}], "outputs": [{"name": "probabilities"}]},
        )
        assert r.status_code == 400 and r.json()["error"] == (
            "Unknown output 'probabilities'; the outputs are 'predict'."
        )
    finally:
        server.close()


def test_predict_and_probabilities_in_one_answer(app, served_store) -> None:
    from modelyard.registry import load_model

    frame = pd.DataFrame([[0.5, -0.2, 1.0], [-3.0, -0.2, 1.0]], columns=["x", "y", "z"])
    model = load_model("clf/1", served_store)
    r = infer(
        app,
        {"name": "in", "shape": [2, 3], "datatype": "FP64", "data": frame.to_numpy().tolist()},
        outputs=[{"name": "probabilities"}, {"name": "predict"}],
    )
    assert r.status_code == 200, r.text
    probs, pred = r.json()["outputs"]
    assert probs == {
        "name": "probabilities",
        "shape": [2, 2],
        "datatype": "FP64",
        "data": model.predict_proba(frame).reshape(-1).tolist(),
        "parameters": {"classes": [0, 1]},
    }
    assert pred == {
        "name": "predict",
        "shape": [2],
        "datatype": "INT64",
        "data": model.predict(frame).tolist(),
    }


def test_metadata_lists_outputs_and_extensions(app) -> None:
    server = call(app, "GET", "/v2").json()
    assert server["name"] == "modelyard" and server["extensions"] == ["binary_tensor_data"]
    meta = call(app, "GET", "/v2/models/clf").json()
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2], "parameters": {"classes": [0, 1]}},
    ]
    assert [i["name"] for i in meta["inputs"]] == ["x", "y", "z"]


def test_a_flat_row_for_a_30_column_model_is_one_shape_problem(wide_uri) -> None:
    server = build_app({"models": {"primary": "wide/1"}}, uri=wide_uri, prediction_log=False)
    try:
        row = [0.1] * 30
        r = call(
            server,
            "POST",
            "/v2/models/wide/infer",
            json={"inputs": [{"name": "input-0", "shape": [30], "datatype": "FP64", "data": row}]},
        )
        assert r.status_code == 400
        body = r.json()
        assert body["code"] == "bad_shape" and body["problems"] == ["expected shape [rows, 30], got [30]"]
        assert body["error"] == (
            "Input 'input-0' has shape [30] but the model takes 30 columns; send shape [rows, 30] "
            "(one row: [1, 30]) or one [rows] tensor per column named ['f00', 'f01', 'f02', 'f03', 'f04'] ..."
            "."
        )
        r = call(
            server,
            "POST",
            "/v2/models/wide/infer",
            json={"inputs": [{"name": "input-0", "shape": [1, 30], "datatype": "FP64", "data": row}]},
        )
        assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [1]
        r = call(
            server,
            "POST",
            "/v2/models/wide/infer",
            json={"inputs": [{"name": "input-0", "shape": [1, 29], "datatype": "FP64", "data": row[:29]}]},
        )
        assert r.status_code == 400 and r.json()["problems"] == ["expected shape [rows, 30], got [1, 29]"]
        # one column tensor by name: the other 29 are missing columns (422, each named)
        r = call(
            server,
            "POST",
            "/v2/models/wide/infer",
            json={"inputs": [{"name": "f00", "shape": [1], "datatype": "FP64", "data": [0.1]}]},
        )
        assert r.status_code == 422 and len(r.json()["problems"]) == 29
    finally:
        server.close()


def test_several_tensors_must_be_columns(app) -> None:
    r = infer(
        app,
        {"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]},
        {"name": "y", "shape": [1], "datatype": "FP64", "data": [1]},
    )
    assert r.status_code == 400 and r.json()["error"] == (
        "Input 'x' has shape [1, 2]; when several input tensors are sent, each is one column of shape "
        "[rows] or [rows, 1]."
    )
    r = infer(
        app,
        {"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]},
        {"name": "y", "shape": [1], "datatype": "FP64", "data": [1]},
    )
    assert (
        r.status_code == 400 and r.json()["error"] == "All input tensors must have the same number of rows."
    )
    r = infer(app, {"name": "x", "shape": [1], "datatype": "FP64"})
    assert r.status_code == 400 and r.json()["error"] == (
        "Input 'x' has neither 'data' nor parameters.binary_data_size; send its elements one way."
    )


def test_mixed_outputs_in_one_batch_and_the_prediction_log(tmp_path) -> None:
    """Concurrent requests asking for predict, probabilities or both (batched together when they
    arrive together); each gets its own outputs, and the prediction log records the labels."""
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import register_model
    from modelyard.serving._predlog_read import read_prediction_log

    uri = str(tmp_path / "store")
    rng = np.random.default_rng(5)
    X = pd.DataFrame(rng.normal(size=(100, 3)), columns=["x", "y", "z"])
    model = LogisticRegression().fit(X, (X["x"] > 0).astype(int))
    register_model(model, "clf", input_example=X.head(3), uri=uri)
    spec = {
        "models": {"primary": "clf/1"},
        "batching": {"enabled": True, "max_batch_size": 64, "max_latency_ms": 20},
        "prediction_log": {"flush_rows": 1},
    }
    server = build_app(spec, uri=uri)
    asks = [None, [{"name": "probabilities"}], [{"name": "predict"}, {"name": "probabilities"}]] * 8

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://t") as c:
            return await asyncio.gather(
                *(
                    c.post(
                        "/v2/models/clf/infer",
                        json={
                            "id": f"r{i}",
                            "inputs": [
                                {
                                    "name": "in",
                                    "shape": [2, 3],
                                    "datatype": "FP64",
                                    "data": X.iloc[i : i + 2].to_numpy().tolist(),
                                }
                            ],
                            **({"outputs": ask} if ask else {}),
                        },
                    )
                    for i, ask in enumerate(asks)
                )
            )

    try:
        answers = asyncio.run(go())
    finally:
        server.close()
    for i, (ask, r) in enumerate(zip(asks, answers, strict=True)):
        assert r.status_code == 200, r.text
        rows = X.iloc[i : i + 2]
        outs = {o["name"]: o["data"] for o in r.json()["outputs"]}
        assert list(outs) == [o["name"] for o in ask] if ask else ["predict"]
        if "predict" in outs:
            assert outs["predict"] == model.predict(rows).tolist()
        if "probabilities" in outs:
            # batched with other rows: the same up to the last bits of BLAS's sums
            np.testing.assert_allclose(
                outs["probabilities"], model.predict_proba(rows).reshape(-1), rtol=1e-12
            )
    logged = read_prediction_log(uri, "clf")
    assert len(logged) == 2 * len(asks)
    by_id = logged.groupby("request_id")["output"].apply(list).to_dict()
    rid = [r.headers["x-request-id"] for r in answers]
    assert by_id[rid[2]] == model.predict(X.iloc[2:4]).tolist()  # both outputs: the labels are logged
    assert by_id[rid[1]] == model.predict(X.iloc[1:3]).tolist()  # probabilities only: the likeliest class
