"""A standard V2 client nobody here wrote, with its defaults, against the real server under
uvicorn: Triton's ``tritonclient.http`` sends binary input tensors and, when no output is named,
asks for every output as binary data (``binary_data_output``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.serving import build_app
from modelyard.serving._server import running

httpclient = pytest.importorskip("tritonclient.http")
utils = pytest.importorskip("tritonclient.utils")

XS = np.array([[0.5, -0.2, 1.0], [-3.0, -0.2, 1.0], [2.0, 1.5, -0.5], [0.0, 0.0, 0.0]])


@pytest.fixture(scope="module")
def client(served_store):  # type: ignore[no-untyped-def]
    spec = {"models": {"primary": "clf@production"}, "fallback": {"model": "clf/2"}}
    app = build_app(spec, uri=served_store, prediction_log=False)
    with running(app) as h:
        c = httpclient.InferenceServerClient(url=h.url.removeprefix("http://"), network_timeout=120.0)
        try:
            yield c
        finally:
            c.close()
    app.close()


@pytest.fixture(scope="module")
def models(served_store):  # type: ignore[no-untyped-def]
    from modelyard.registry import load_model

    return {v: load_model(f"clf/{v}", served_store) for v in (1, 2)}


def frame(xs: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(xs, columns=["x", "y", "z"])


def test_metadata_and_health(client) -> None:
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("clf")
    meta = client.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata("clf")
    assert [o["name"] for o in model["outputs"]] == ["predict", "probabilities"]
    assert [i["name"] for i in model["inputs"]] == ["x", "y", "z"]


def test_defaults_binary_both_ways(client, models) -> None:
    inp = httpclient.InferInput("input-0", list(XS.shape), "FP64")
    inp.set_data_from_numpy(XS)  # binary_data=True is the client's default
    result = client.infer("clf", [inp])  # no outputs named: binary_data_output=true
    response = result.get_response()
    assert response["outputs"][0]["parameters"]["binary_data_size"] == 8 * len(XS)
    assert result.as_numpy("predict").tolist() == models[1].predict(frame(XS)).tolist()


def test_named_outputs_binary_and_json(client, models) -> None:
    inp = httpclient.InferInput("input-0", list(XS.shape), "FP64")
    inp.set_data_from_numpy(XS)
    outputs = [httpclient.InferRequestedOutput("probabilities"), httpclient.InferRequestedOutput("predict")]
    result = client.infer("clf", [inp], outputs=outputs, request_id="t-1")
    assert result.get_response()["id"] == "t-1"
    np.testing.assert_array_equal(result.as_numpy("probabilities"), models[1].predict_proba(frame(XS)))
    assert result.as_numpy("predict").tolist() == models[1].predict(frame(XS)).tolist()
    # JSON tensors both ways, on a pinned version, one FP32 tensor per column
    cols = []
    for j, name in enumerate(["x", "y", "z"]):
        c = httpclient.InferInput(name, [len(XS)], "FP32")
        c.set_data_from_numpy(XS[:, j].astype(np.float32), binary_data=False)
        cols.append(c)
    result = client.infer(
        "clf",
        cols,
        model_version="2",
        outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)],
    )
    assert "data" in result.get_response()["outputs"][0]
    want = models[2].predict(frame(XS.astype(np.float32).astype(float)))
    assert result.as_numpy("predict").tolist() == want.tolist()
    assert result.get_response()["model_version"] == "2"


def test_errors_reach_the_client(client) -> None:
    flat = httpclient.InferInput("input-0", [3], "FP64")
    flat.set_data_from_numpy(XS[0])
    with pytest.raises(utils.InferenceServerException) as info:
        client.infer("clf", [flat])
    assert "has shape [3] but the model takes 3 columns; send shape [rows, 3]" in str(info.value)
    inp = httpclient.InferInput("input-0", list(XS.shape), "FP64")
    inp.set_data_from_numpy(XS)
    with pytest.raises(utils.InferenceServerException) as info:
        client.infer("clf", [inp], outputs=[httpclient.InferRequestedOutput("scores")])
    assert "Unknown output 'scores'; the outputs are 'predict' and 'probabilities'." in str(info.value)


def test_bytes_and_int_columns(register_extra) -> None:
    """One tensor per column of mixed datatypes, as the README shows: BYTES (dates) and INT64."""
    uri = register_extra("dated")
    app = build_app({"models": {"primary": "dated/1"}, "allow_pickle": True}, uri=uri, prediction_log=False)

    def column(name: str, datatype: str, values: list) -> object:
        t = httpclient.InferInput(name, [len(values)], datatype)
        t.set_data_from_numpy(np.array(values, dtype=object if datatype == "BYTES" else None))
        return t

    with running(app) as h:
        c = httpclient.InferenceServerClient(url=h.url.removeprefix("http://"), network_timeout=120.0)
        try:
            inputs = [column("d", "BYTES", ["2024-01-03", "2024-02-01"]), column("x", "INT64", [1, 2])]
            assert c.infer("dated", inputs).as_numpy("predict").tolist() == [3.0, 33.0]
        finally:
            c.close()
    app.close()
