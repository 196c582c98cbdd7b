"""The V2 binary tensor data extension, with bodies built by hand per the protocol text:
JSON header + little-endian tensor bytes, ``Inference-Header-Content-Length``,
``binary_data_size`` per tensor, BYTES elements as 4-byte length + bytes, BOOL as one byte.
Every malformed length answers 400 naming what is wrong; never a 5xx."""

from __future__ import annotations

import asyncio
import json
import random
import struct

import httpx
import numpy as np
import pandas as pd
import pytest

from modelyard.serving import build_app

XS = np.array([[0.5, -0.2, 1.0], [-3.0, -0.2, 1.0], [2.0, 1.5, -0.5]])


def call(app, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def binary_body(request: dict, blobs: list[bytes]) -> tuple[bytes, dict[str, str]]:
    """A request body per the extension and its headers."""
    head = json.dumps(request).encode()
    headers = {
        "content-type": "application/octet-stream",
        "inference-header-content-length": str(len(head)),
    }
    return head + b"".join(blobs), headers


def bytes_tensor(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in values)


def read_answer(r: httpx.Response) -> tuple[dict, dict[str, bytes]]:
    """The JSON header of a binary answer and each binary output's bytes, by name."""
    assert r.headers["content-type"] == "application/octet-stream"
    n = int(r.headers["inference-header-content-length"])
    head = json.loads(r.content[:n])
    blobs: dict[str, bytes] = {}
    pos = n
    for out in head["outputs"]:
        size = out.get("parameters", {}).get("binary_data_size")
        if size is not None:
            blobs[out["name"]] = r.content[pos : pos + size]
            pos += size
    assert pos == len(r.content)  # nothing unclaimed after the outputs
    return head, blobs


@pytest.fixture(scope="module")
def models(served_store):  # type: ignore[no-untyped-def]
    """clf/1 (x, y, z; classes 0/1) and labels/1 (x float, flag bool; classes 'no'/'yes')."""
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import load_model, register_model

    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=100), "flag": rng.random(100) > 0.5})
    y = np.where(X["x"] + X["flag"] > 0.5, "yes", "no")
    register_model(LogisticRegression().fit(X, y), "labels", input_example=X.head(5), uri=served_store)
    return {"clf": load_model("clf/1", served_store), "labels": load_model("labels/1", served_store)}


@pytest.fixture(scope="module")
def app(served_store, models):  # type: ignore[no-untyped-def]
    server = build_app(
        {"models": {"primary": "clf/1"}, "limits": {"max_body_bytes": 4096}},
        uri=served_store,
        prediction_log=False,
    )
    yield server
    server.close()


@pytest.fixture(scope="module")
def labels_app(served_store, models):  # type: ignore[no-untyped-def]
    server = build_app({"models": {"primary": "labels/1"}}, uri=served_store, prediction_log=False)
    yield server
    server.close()


def test_binary_inputs_give_the_json_answer(app, models) -> None:
    want = models["clf"].predict(pd.DataFrame(XS, columns=["x", "y", "z"])).tolist()
    body, headers = binary_body(
        {
            "inputs": [
                {"name": "in", "shape": [3, 3], "datatype": "FP64", "parameters": {"binary_data_size": 72}}
            ]
        },
        [XS.astype("<f8").tobytes()],
    )
    r = call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"  # no binary output asked
    assert r.json()["outputs"] == [{"name": "predict", "shape": [3], "datatype": "INT64", "data": want}]
    # one tensor per column, FP32 and INT32 (little-endian) mixed with a JSON tensor
    body, headers = binary_body(
        {
            "inputs": [
                {"name": "x", "shape": [3], "datatype": "FP32", "parameters": {"binary_data_size": 12}},
                {"name": "y", "shape": [3, 1], "datatype": "FP64", "data": XS[:, 1].tolist()},
                {"name": "z", "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}},
            ]
        },
        [XS[:, 0].astype("<f4").tobytes(), XS[:, 2].astype("<f8").tobytes()],
    )
    r = call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == want


def test_binary_outputs_when_asked(app, models) -> None:
    frame = pd.DataFrame(XS, columns=["x", "y", "z"])
    want = models["clf"].predict(frame)
    proba = models["clf"].predict_proba(frame)
    request = {
        "id": "b1",
        "inputs": [{"name": "in", "shape": [3, 3], "datatype": "FP64", "data": XS.tolist()}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}, {"name": "probabilities"}],
    }
    r = call(app, "POST", "/v2/models/clf/infer", json=request)
    assert r.status_code == 200, r.text
    head, blobs = read_answer(r)
    assert head["id"] == "b1" and [o["name"] for o in head["outputs"]] == ["predict", "probabilities"]
    pred, probs = head["outputs"]
    assert pred == {
        "name": "predict",
        "shape": [3],
        "datatype": "INT64",
        "parameters": {"binary_data_size": 24},
    }
    assert np.frombuffer(blobs["predict"], "<i8").tolist() == want.tolist()
    assert probs["datatype"] == "FP64" and probs["shape"] == [3, 2]  # JSON: not asked as binary
    assert probs["parameters"] == {"classes": [0, 1]} and probs["data"] == proba.reshape(-1).tolist()
    # binary_data_output: every output binary unless an output says otherwise
    request["parameters"] = {"binary_data_output": True}
    request["outputs"] = [
        {"name": "probabilities"},
        {"name": "predict", "parameters": {"binary_data": False}},
    ]
    head, blobs = read_answer(call(app, "POST", "/v2/models/clf/infer", json=request))
    assert head["outputs"][0]["parameters"] == {"classes": [0, 1], "binary_data_size": 48}
    assert np.frombuffer(blobs["probabilities"], "<f8").reshape(3, 2).tolist() == proba.tolist()
    assert head["outputs"][1]["data"] == want.tolist()
    # without 'outputs', binary_data_output answers 'predict' as binary
    del request["outputs"]
    head, blobs = read_answer(call(app, "POST", "/v2/models/clf/infer", json=request))
    assert [o["name"] for o in head["outputs"]] == ["predict"]
    assert np.frombuffer(blobs["predict"], "<i8").tolist() == want.tolist()


def test_bool_inputs_and_bytes_outputs(labels_app, models) -> None:
    frame = pd.DataFrame({"x": [0.9, -1.0, 0.2, 2.0], "flag": [True, False, True, False]})
    want = models["labels"].predict(frame).tolist()
    assert set(want) == {"yes", "no"}
    body, headers = binary_body(
        {
            "inputs": [
                {"name": "x", "shape": [4], "datatype": "FP64", "parameters": {"binary_data_size": 32}},
                {"name": "flag", "shape": [4], "datatype": "BOOL", "parameters": {"binary_data_size": 4}},
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        },
        [frame["x"].to_numpy("<f8").tobytes(), bytes([1, 0, 1, 0])],
    )
    r = call(labels_app, "POST", "/v2/models/labels/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    head, blobs = read_answer(r)
    assert head["outputs"][0]["datatype"] == "BYTES" and head["outputs"][0]["shape"] == [4]
    assert blobs["predict"] == bytes_tensor([w.encode() for w in want])
    # the same rows as JSON: BOOL data are true/false, BYTES outputs strings
    r = call(
        labels_app,
        "POST",
        "/v2/models/labels/infer",
        json={
            "inputs": [
                {"name": "x", "shape": [4], "datatype": "FP64", "data": frame["x"].tolist()},
                {"name": "flag", "shape": [4], "datatype": "BOOL", "data": frame["flag"].tolist()},
            ]
        },
    )
    assert r.json()["outputs"][0] == {"name": "predict", "shape": [4], "datatype": "BYTES", "data": want}
    bad, headers = binary_body(
        {
            "inputs": [
                {"name": "x", "shape": [4], "datatype": "FP64", "parameters": {"binary_data_size": 32}},
                {"name": "flag", "shape": [4], "datatype": "BOOL", "parameters": {"binary_data_size": 4}},
            ]
        },
        [frame["x"].to_numpy("<f8").tobytes(), bytes([1, 0, 2, 0])],
    )
    r = call(labels_app, "POST", "/v2/models/labels/infer", content=bad, headers=headers)
    assert r.status_code == 400
    assert r.json()["error"] == "Input 'flag' is BOOL but holds bytes other than 0 and 1."


def test_bytes_inputs(register_extra) -> None:
    """BYTES tensors (4-byte little-endian length + UTF-8) carry strings: dates here."""
    uri = register_extra("dated")
    server = build_app(
        {"models": {"primary": "dated/1"}, "allow_pickle": True}, uri=uri, prediction_log=False
    )
    try:
        dates = [b"2024-01-03", b"2024-02-01"]
        body, headers = binary_body(
            {
                "inputs": [
                    {"name": "d", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 28}},
                    {"name": "x", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
                ]
            },
            [bytes_tensor(dates), np.array([1, 2], "<i8").tobytes()],
        )
        r = call(server, "POST", "/v2/models/dated/infer", content=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [3.0, 33.0]
        # an element whose length runs past the tensor's bytes
        broken = bytes_tensor(dates)[:-3] + b"\x00\x00\x00"
        broken = broken[:14] + struct.pack("<I", 99) + broken[18:]
        body, headers = binary_body(
            {
                "inputs": [
                    {"name": "d", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 28}},
                    {"name": "x", "shape": [2], "datatype": "INT64", "parameters": {"binary_data_size": 16}},
                ]
            },
            [broken, np.array([1, 2], "<i8").tobytes()],
        )
        r = call(server, "POST", "/v2/models/dated/infer", content=body, headers=headers)
        assert r.status_code == 400
        assert r.json()["error"] == (
            "Input 'd': element 1 says it has 99 bytes but only 10 remain in its binary_data_size."
        )
    finally:
        server.close()


def _tensor(size: object, **extra: object) -> dict:
    return {
        "name": "in",
        "shape": [1, 3],
        "datatype": "FP64",
        "parameters": {"binary_data_size": size},
        **extra,
    }


ONE_ROW = np.array([0.5, -0.2, 1.0], "<f8").tobytes()


@pytest.mark.parametrize(
    ("header", "request_", "blob", "message"),
    [
        (
            "abc",
            {"inputs": [_tensor(24)]},
            ONE_ROW,
            "The Inference-Header-Content-Length header must be a non-negative integer. Got 'abc' instead.",
        ),
        (
            "999999",
            {"inputs": [_tensor(24)]},
            ONE_ROW,
            "The Inference-Header-Content-Length header says the JSON header has 999999 bytes but the body "
            "has {body}; it must be between 1 and the body's length.",
        ),
        (
            None,
            {"inputs": [_tensor(48)]},
            ONE_ROW,
            "Input 'in' has binary_data_size 48 but only 24 bytes of binary data remain after the JSON "
            "header and the inputs before it.",
        ),
        (
            None,
            {"inputs": [_tensor(16)]},
            ONE_ROW[:16],
            "Input 'in' has binary_data_size 16 but shape [1, 3] of FP64 needs 3 x 8 = 24 bytes.",
        ),
        (
            None,
            {"inputs": [_tensor(24)]},
            ONE_ROW + b"\x00" * 5,
            "The body has 5 bytes of binary data that no input claims; the inputs' binary_data_size add up "
            "to 24 of the 29 bytes after the JSON header.",
        ),
        (
            None,
            {"inputs": [_tensor(-1)]},
            ONE_ROW,
            "Input 'in' has binary_data_size -1; it must be a non-negative integer.",
        ),
        (
            None,
            {"inputs": [_tensor(True)]},
            ONE_ROW,
            "Input 'in' has binary_data_size True; it must be a non-negative integer.",
        ),
        (
            None,
            {"inputs": [_tensor(24, data=[1, 2, 3])]},
            ONE_ROW,
            "Input 'in' has both 'data' and parameters.binary_data_size; send one.",
        ),
    ],
)
def test_lengths_are_checked(app, header, request_, blob, message) -> None:  # type: ignore[no-untyped-def]
    body, headers = binary_body(request_, [blob])
    if header is not None:
        headers["inference-header-content-length"] = header
    r = call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == message.format(body=len(body))


def test_binary_size_without_the_header_and_the_body_limit(app) -> None:
    r = call(app, "POST", "/v2/models/clf/infer", json={"inputs": [_tensor(24)]})
    assert r.status_code == 400 and r.json()["error"] == (
        "Input 'in' has binary_data_size but the request has no Inference-Header-Content-Length header; "
        "send it with the length of the JSON part of the body."
    )
    rows = 200  # 200 x 3 x 8 bytes: past this server's 4096-byte body limit
    body, headers = binary_body(
        {
            "inputs": [
                {
                    "name": "in",
                    "shape": [rows, 3],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": rows * 24},
                }
            ]
        },
        [np.zeros((rows, 3), "<f8").tobytes()],
    )
    r = call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers)
    assert r.status_code == 413 and r.json()["error"] == f"The body has {len(body)} bytes; the limit is 4096."
    import gzip

    r = call(
        app,
        "POST",
        "/v2/models/clf/infer",
        content=gzip.compress(json.dumps({"inputs": [_tensor(24)]}).encode()),
        headers={"content-encoding": "gzip"},
    )
    assert r.status_code == 415 and r.json()["error"] == (
        "Content-Encoding 'gzip' is not supported; send the body uncompressed."
    )
    r = call(app, "POST", "/v2/models/clf/infer", content=b"x", headers={"content-type": "image/png"})
    assert r.status_code == 415 and r.json()["error"].startswith("Content-Type 'image/png' is not supported")


def test_mangled_binary_bodies_are_never_5xx(app) -> None:
    """Random cuts, flips and wrong lengths of valid binary requests: each answer is 200 or 4xx."""
    rng = random.Random(7)
    base = {
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "y", "shape": [2], "datatype": "INT32", "parameters": {"binary_data_size": 8}},
            {"name": "z", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}},
        ],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    blobs = [np.array([0.5, 1.5], "<f8").tobytes(), np.array([1, -2], "<i4").tobytes(), b"\x01\x00"]
    body, headers = binary_body(base, blobs)
    assert call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers).status_code == 200
    statuses = set()
    for _ in range(150):
        b = bytearray(body)
        h = dict(headers)
        what = rng.randrange(4)
        if what == 0:
            b = b[: rng.randrange(len(b))]
        elif what == 1:
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
        elif what == 2:
            h["inference-header-content-length"] = str(
                int(h["inference-header-content-length"]) + rng.randint(-20, 20)
            )
        else:
            req = json.loads(json.dumps(base))
            t = rng.choice(req["inputs"])
            t["parameters"]["binary_data_size"] = rng.choice([0, 1, 7, 10**12, -5, "8", None, 2.0])
            t["datatype"] = rng.choice(["FP64", "FP16", "BYTES", "UINT8", "BOOL", t["datatype"]])
            b, h = binary_body(req, blobs)  # type: ignore[assignment]
        r = call(app, "POST", "/v2/models/clf/infer", content=bytes(b), headers=h)
        statuses.add(r.status_code)
        assert r.status_code == 200 or 400 <= r.status_code < 500, (bytes(b), h, r.text)
        assert "error" in r.json() if r.status_code != 200 else True
    assert statuses - {200}  # the mangling did produce errors


def test_binary_values_no_model_can_take(app) -> None:
    """Binary floats: NaN is a missing value (422 for a column that allows none), Infinity is 422;
    checked values skip the per-value checks but never a problem."""
    for value, problem in (
        (float("nan"), "missing"),
        (
            float("inf"),
            "column 'y' row 0 is Infinity; numbers must be finite (send null for a missing value)",
        ),
    ):
        body, headers = binary_body({"inputs": [_tensor(24)]}, [np.array([0.5, value, 1.0], "<f8").tobytes()])
        r = call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers)
        assert r.status_code == 422, r.text
        assert any(problem in p for p in r.json()["problems"]), r.json()
    x = {"name": "x", "shape": [1], "datatype": "FP64", "parameters": {"binary_data_size": 8}}
    body, headers = binary_body({"inputs": [x, x]}, [ONE_ROW[:8], ONE_ROW[:8]])
    r = call(app, "POST", "/v2/models/clf/infer", content=body, headers=headers)
    assert (
        r.status_code == 400 and r.json()["error"] == "Input 'x' is sent twice; send each input tensor once."
    )
