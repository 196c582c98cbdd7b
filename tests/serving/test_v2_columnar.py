"""V2 requests whose one ``[rows, k]`` tensor holds numbers decode straight into a float matrix
(JSON data or binary bytes): the same columns, predictions and errors as the regular decoding."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest

from modelyard.serving import build_app
from modelyard.serving._columnar import NumericPayload
from modelyard.serving._v2_request import decode_v2

NAMES = ["x", "y", "z"]
RNG = np.random.default_rng(5)
XS = RNG.normal(size=(40, 3)).round(4)
BIN = {"content-type": "application/octet-stream"}


def tensor(data: object, shape: list[int], datatype: str = "FP64") -> dict:  # type: ignore[type-arg]
    return {"name": "input-0", "shape": shape, "datatype": datatype, "data": data}


def binary(arr: np.ndarray, datatype: str) -> tuple[bytes, dict[str, str]]:
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": list(arr.shape),
                    "datatype": datatype,
                    "parameters": {"binary_data_size": arr.nbytes},
                }
            ]
        }
    ).encode()
    return head + arr.tobytes(), {**BIN, "inference-header-content-length": str(len(head))}


def per_column(xs: np.ndarray) -> dict:  # type: ignore[type-arg]
    """The same rows as one [rows] tensor per column: the regular decoding."""
    return {
        "inputs": [
            {"name": c, "shape": [len(xs)], "datatype": "FP64", "data": xs[:, j].tolist()}
            for j, c in enumerate(NAMES)
        ]
    }


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [tensor(XS.ravel().tolist(), [40, 3])]},  # flat data
        {"inputs": [tensor(XS.tolist(), [40, 3])]},  # nested rows
    ],
)
def test_a_json_table_is_the_regular_payload_as_a_matrix(body: dict) -> None:  # type: ignore[type-arg]
    payload, _ = decode_v2(json.dumps(body).encode(), {}, NAMES)
    regular, _ = decode_v2(json.dumps(per_column(XS)).encode(), {}, NAMES)
    assert isinstance(payload, NumericPayload) and not isinstance(regular, NumericPayload)
    assert payload.n == 40 and payload.names == NAMES
    assert np.array_equal(payload.array, XS)
    assert payload.columns == regular.columns  # built only when asked, the regular way


@pytest.mark.parametrize("dtype", ["<f8", "<f4", "<i8"])
def test_a_binary_table_is_the_regular_payload_as_a_matrix(dtype: str) -> None:
    arr = (XS * 100).astype(dtype)
    datatype = {"<f8": "FP64", "<f4": "FP32", "<i8": "INT64"}[dtype]
    body, headers = binary(arr, datatype)
    payload, _ = decode_v2(body, headers, NAMES)
    assert isinstance(payload, NumericPayload)
    assert payload.array.dtype == np.float64 and np.array_equal(payload.array, arr.astype(np.float64))
    assert payload.columns == {c: arr[:, j].tolist() for j, c in enumerate(NAMES)}
    assert payload.checked == frozenset(NAMES)


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [tensor([[True, False, True], [False, True, True]], [2, 3], "BOOL")]},
        {"inputs": [tensor([["a", "b", "c"], ["d", "e", "f"]], [2, 3], "BYTES")]},
        {"inputs": [tensor([0.5, 1.0, 2.0], [1, 3])]},  # one row: the lists are as cheap
        per_column(XS),
    ],
)
def test_other_tensors_keep_the_columns(body: dict) -> None:  # type: ignore[type-arg]
    payload, _ = decode_v2(json.dumps(body).encode(), {}, NAMES)
    assert not isinstance(payload, NumericPayload)


@pytest.fixture(scope="module")
def app(served_store):  # type: ignore[no-untyped-def]
    server = build_app({"models": {"primary": "clf/1"}}, uri=served_store, prediction_log=False)
    yield server
    server.close()


def post(app, path: str, **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.post(path, **kw)

    return asyncio.run(go())


def test_every_v2_form_gives_the_native_predictions(app) -> None:  # type: ignore[no-untyped-def]
    rows = [dict(zip(NAMES, map(float, r), strict=True)) for r in XS]
    want = post(app, "/v1/models/clf/predict", json={"records": rows}).json()["predictions"]
    answers = [
        post(app, "/v2/models/clf/infer", json={"inputs": [tensor(XS.ravel().tolist(), [40, 3])]}),
        post(app, "/v2/models/clf/infer", json={"inputs": [tensor(XS.tolist(), [40, 3])]}),
        post(app, "/v2/models/clf/infer", json=per_column(XS)),
    ]
    for dtype, datatype in (("<f8", "FP64"), ("<f4", "FP32")):
        body, headers = binary(XS.astype(dtype), datatype)
        answers.append(post(app, "/v2/models/clf/infer", content=body, headers=headers))
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    for a in answers[:4]:
        assert a.json()["outputs"][0]["data"] == want
    x32 = XS.astype("<f4").astype(float)  # FP32 rounds the inputs: compare with the same rows
    assert (
        answers[4].json()["outputs"][0]["data"]
        == post(app, "/v1/models/clf/predict", json={"columns": NAMES, "data": x32.tolist()}).json()[
            "predictions"
        ]
    )


def test_values_no_model_can_take_get_the_regular_problems(app) -> None:  # type: ignore[no-untyped-def]
    data = XS[:3].tolist()
    data[1][1] = None  # a null in a JSON table
    table = post(app, "/v2/models/clf/infer", json={"inputs": [tensor(data, [3, 3])]})
    columns = per_column(XS[:3])
    columns["inputs"][1]["data"][1] = None
    regular = post(app, "/v2/models/clf/infer", json=columns)
    assert table.status_code == regular.status_code == 422
    assert table.json()["problems"] == regular.json()["problems"] and table.json()["problems"]
    # binary Infinity and integers too big for a model: 422 naming the value, as in the columns
    inf = XS[:3].copy()
    inf[2, 0] = np.inf
    body, headers = binary(inf.astype("<f8"), "FP64")
    r = post(app, "/v2/models/clf/infer", content=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["problems"] == [
        "column 'x' row 2 is Infinity; numbers must be finite (send null for a missing value)"
    ]
    # the datatype is checked against JSON data before any matrix: floats in an INT64 tensor
    r = post(app, "/v2/models/clf/infer", json={"inputs": [tensor(XS[:3].tolist(), [3, 3], "INT64")]})
    assert r.status_code == 400 and "is INT64 but element 0 is a number with a fraction" in r.json()["error"]
