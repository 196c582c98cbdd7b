"""The server's HTTP surface, in process (httpx over ASGI): formats, errors, pinning, admin, swaps.

The tests that touch a store run on SQLite and on PostgreSQL (``backend_store``)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from modelyard.errors import NotFoundError
from modelyard.serving import SwapError, build_app

ROW = {"x": 0.5, "y": -0.2, "z": 1.0}


@pytest.fixture(scope="module")
def app(backend_store):  # type: ignore[no-untyped-def]
    spec = {"models": {"primary": "clf@production"}, "fallback": {"model": "clf/2"}}
    server = build_app(spec, uri=backend_store, admin_token="s3cret", prediction_log=False)
    yield server
    server.close()


def call(app, method: str, path: str, **kw):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


def test_three_wire_formats_agree(app) -> None:
    r = call(app, "POST", "/v1/models/clf/predict", json={"records": [ROW, {**ROW, "x": -3}]})
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "clf" and body["version"] == 1 and body["fallback"] is False
    assert r.headers["x-model-version"] == "1" and r.headers["x-request-id"] == body["request_id"]
    preds = body["predictions"]
    assert len(preds) == 2
    split = call(
        app,
        "POST",
        "/v1/models/clf/predict",
        json={"columns": ["x", "y", "z"], "data": [[0.5, -0.2, 1.0], [-3, -0.2, 1.0]]},
    )
    assert split.json()["predictions"] == preds
    for mlflow in (
        {"dataframe_split": {"columns": ["x", "y", "z"], "data": [[0.5, -0.2, 1.0], [-3, -0.2, 1.0]]}},
        {"dataframe_records": [ROW, {**ROW, "x": -3}]},
        {"instances": [ROW, {**ROW, "x": -3}]},
        {"instances": [[0.5, -0.2, 1.0], [-3, -0.2, 1.0]]},
        {"inputs": {"x": [0.5, -3], "y": [-0.2, -0.2], "z": [1.0, 1.0]}},
    ):
        r = call(app, "POST", "/invocations", json=mlflow)
        assert r.status_code == 200, (mlflow, r.text)
        assert r.json() == {"predictions": preds}
    csv = call(
        app,
        "POST",
        "/invocations",
        content=b"x,y,z\n0.5,-0.2,1.0\n-3,-0.2,1.0\n",
        headers={"content-type": "text/csv"},
    )
    assert csv.json() == {"predictions": preds}
    v2 = call(
        app,
        "POST",
        "/v2/models/clf/infer",
        json={
            "id": "q1",
            "inputs": [
                {"name": "x", "shape": [2], "datatype": "FP64", "data": [0.5, -3]},
                {"name": "y", "shape": [2, 1], "datatype": "FP64", "data": [[-0.2], [-0.2]]},
                {"name": "z", "shape": [2], "datatype": "FP64", "data": [1.0, 1.0]},
            ],
        },
    )
    assert v2.status_code == 200
    out = v2.json()
    assert out["id"] == "q1" and out["model_name"] == "clf" and out["model_version"] == "1"
    assert out["outputs"][0]["data"] == preds and out["outputs"][0]["shape"] == [2]
    one_tensor = call(
        app,
        "POST",
        "/v2/models/clf/infer",
        json={
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 3],
                    "datatype": "FP64",
                    "data": [0.5, -0.2, 1.0, -3, -0.2, 1.0],
                }
            ]
        },
    )
    assert one_tensor.json()["outputs"][0]["data"] == preds


def test_version_pinning(app) -> None:
    r = call(app, "POST", "/v1/models/clf/versions/2/predict", json={"records": [ROW]})
    assert r.status_code == 200 and r.json()["version"] == 2
    r = call(app, "POST", "/v1/models/clf/predict", json={"records": [ROW], "version": 2})
    assert r.json()["version"] == 2
    r = call(
        app,
        "POST",
        "/v2/models/clf/versions/2/infer",
        json={"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [[0.5, -0.2, 1.0]]}]},
    )
    assert r.json()["model_version"] == "2"
    r = call(app, "POST", "/v1/models/clf/versions/7/predict", json={"records": [ROW]})
    assert r.status_code == 404
    assert r.json()["error"] == "Version 7 of 'clf' is not loaded on this server. Loaded versions: [1, 2]."


def test_bad_input_is_a_clear_json_error(app) -> None:
    cases = [
        (dict(content=b'{"records": [', headers={"content-type": "application/json"}), 400, "malformed_json"),
        (dict(content=b"", headers={"content-type": "application/json"}), 400, "empty_body"),
        (dict(content=b"<a/>", headers={"content-type": "application/xml"}), 415, "unsupported_media_type"),
        (dict(json={"rows": []}), 400, "bad_format"),
        (dict(json={"records": []}), 400, "no_rows"),
        (dict(json={"records": [1, 2]}), 400, "bad_format"),
        (dict(json={"columns": ["x"], "data": [[1, 2]]}), 400, "bad_format"),
        (dict(json={"records": [ROW], "version": "two"}), 400, "bad_format"),
        (
            dict(
                content=b'{"records": [{"x": NaN, "y": 1, "z": 1}]}',
                headers={"content-type": "application/json"},
            ),
            422,
            "invalid_input",
        ),
        (dict(json={"records": [{"x": "a", "y": None}]}), 422, "invalid_input"),
    ]
    for kw, status, code in cases:
        r = call(app, "POST", "/v1/models/clf/predict", **kw)
        assert r.status_code == status, (kw, r.text)
        assert r.json()["code"] == code
        assert r.json()["request_id"]
    r = call(
        app, "POST", "/v1/models/clf/predict", json={"records": [{"x": "a", "y": None}, {"x": 1, "y": 2.0}]}
    )
    assert r.json()["problems"] == [
        "missing column 'z'",
        "column 'x' should be float64 but is string",
        "column 'y' has 1 missing value(s) but the signature allows none",
    ]
    r = call(app, "POST", "/v1/models/churn/predict", json={"records": [ROW]})
    assert r.status_code == 404
    assert r.json()["error"] == "No model named 'churn' is served here; this server serves 'clf'."
    r = call(app, "POST", "/v1/models/clff/predict", json={"records": [ROW]})
    assert r.json()["error"].endswith("Did you mean 'clf'?")
    r = call(app, "GET", "/nowhere")
    assert r.status_code == 404 and r.json()["code"] == "not_found"
    r = call(app, "GET", "/v1/models/clf/predict")
    assert r.status_code == 405 and r.json()["code"] == "method_not_allowed"


def test_body_limit_gives_413(backend_store) -> None:
    spec = {"models": {"primary": "clf/1"}, "limits": {"max_body_bytes": 200, "max_rows": 3}}
    server = build_app(spec, uri=backend_store, prediction_log=False)
    try:
        r = call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW] * 20})
        assert r.status_code == 413 and r.json()["code"] == "body_too_large"
        r = call(
            server,
            "POST",
            "/v1/models/clf/predict",
            json={"columns": ["x", "y", "z"], "data": [[1, 2, 3]] * 4},
        )
        assert r.status_code == 413 and r.json()["error"] == "The request has 4 rows; the limit is 3."
    finally:
        server.close()


def test_health_openapi_v2_metadata(app) -> None:
    assert call(app, "GET", "/health/live").json() == {"status": "alive"}
    ready = call(app, "GET", "/health/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready" and body["models"]["primary"]["version"] == 1
    assert body["fallback"]["version"] == 2 and body["fallback"]["warmed"]
    assert call(app, "GET", "/v2/health/ready").json() == {"ready": True}
    meta = call(app, "GET", "/v2/models/clf").json()
    assert (
        meta["name"] == "clf" and meta["versions"] == ["1", "2"] and meta["platform"] == "modelyard-sklearn"
    )
    assert [i["name"] for i in meta["inputs"]] == ["x", "y", "z"] and meta["inputs"][0]["datatype"] == "FP64"
    assert call(app, "GET", "/v2/models/clf/versions/2/ready").json() == {"name": "clf", "ready": True}
    doc = call(app, "GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert "/v1/models/clf/predict" in doc["paths"] and "/invocations" in doc["paths"]
    assert doc["components"]["schemas"]["Row"]["properties"]["x"] == {"type": ["number", "boolean"]}


def test_admin_endpoint_needs_the_token_and_keeps_old_spec_on_failure(app) -> None:
    r = call(app, "PUT", "/admin/spec", content="models: {primary: clf/2}")
    assert r.status_code == 401
    r = call(
        app,
        "PUT",
        "/admin/spec",
        content="models: {primary: clf/2}",
        headers={"authorization": "Bearer nope"},
    )
    assert r.status_code == 401
    auth = {"authorization": "Bearer s3cret"}
    r = call(app, "PUT", "/admin/spec", content="models: {primary: nope@production}", headers=auth)
    assert r.status_code == 422 and r.json()["code"] == "swap_failed"
    assert "Model 'nope' is not registered" in r.json()["error"]
    ready = call(app, "GET", "/health/ready").json()
    assert ready["status"] == "ready" and ready["models"]["primary"]["version"] == 1
    assert ready["last_swap"]["ok"] is False and "nope" in ready["last_swap"]["error"]
    r = call(
        app, "PUT", "/admin/spec", content="models: {primary: clf/2}\nfallback: {constant: 0}", headers=auth
    )
    assert r.status_code == 200, r.text
    assert call(app, "POST", "/v1/models/clf/predict", json={"records": [ROW]}).json()["version"] == 2
    r = call(app, "GET", "/admin/spec", headers=auth)
    assert r.json()["spec"]["models"]["primary"]["ref"] == "clf/2"
    r = call(app, "PUT", "/admin/spec", content="models: [", headers=auth)
    assert r.status_code == 422 and r.json()["code"] == "invalid_spec"
    app.swap({"models": {"primary": "clf@production"}, "fallback": {"model": "clf/2"}})


def test_admin_disabled_without_token(backend_store) -> None:
    server = build_app({"models": {"primary": "clf/1"}}, uri=backend_store, prediction_log=False)
    try:
        r = call(
            server,
            "PUT",
            "/admin/spec",
            content="models: {primary: clf/2}",
            headers={"authorization": "Bearer x"},
        )
        assert r.status_code == 403
        assert r.json()["error"].startswith(
            "The admin API is off. Start the server with YARD_SERVE_ADMIN_TOKEN set"
        )
        assert "s3cret" not in repr(server)
    finally:
        server.close()


def test_build_app_fails_clearly_for_an_unknown_model(backend_store) -> None:
    with pytest.raises(
        SwapError, match=r"The new spec was not applied: Model 'nope' is not registered"
    ) as info:
        build_app({"models": {"primary": "nope/1"}}, uri=backend_store)
    assert isinstance(info.value.__cause__, NotFoundError)


def test_prediction_log_is_written(backend_store) -> None:
    from modelyard.serving import read_prediction_log

    server = build_app({"models": {"primary": "clf/1"}}, uri=backend_store)
    try:
        r = call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW, ROW]})
        rid = r.json()["request_id"]
    finally:
        server.close()
    df = read_prediction_log(backend_store, "clf", model_version=1)
    mine = df[df["request_id"] == rid]
    assert len(mine) == 2
    assert mine["input.x"].tolist() == [0.5, 0.5] and not mine["fallback"].any()
    assert mine["output"].tolist() == r.json()["predictions"]


def test_numeric_fast_path_matches_the_registry_predict(app, backend_store) -> None:
    import numpy as np
    import pandas as pd

    from modelyard.registry import load_model
    from modelyard.serving._fastpath import numeric_fast_path

    assert call(app, "GET", "/health/ready").json()["models"]["primary"]["fast_path"] is True
    rows = [{"x": float(i) / 3 - 2, "y": (i % 5) - 2.0, "z": i % 2} for i in range(30)]
    got = call(app, "POST", "/v1/models/clf/predict", json={"records": rows}).json()["predictions"]
    model = load_model("clf/1", backend_store)
    assert got == model.predict(pd.DataFrame(rows)).tolist()
    shuffled = [{"z": r["z"], "x": r["x"], "y": r["y"], "extra": "ignored"} for r in rows]
    assert (
        call(app, "POST", "/v1/models/clf/predict", json={"records": shuffled}).json()["predictions"] == got
    )
    # a pyfunc model never takes the fast path; neither does a row the signature would reject
    assert numeric_fast_path(load_model("flaky/2", backend_store, allow_pickle=True)) is None
    fast = numeric_fast_path(model)
    from modelyard.serving._codec import Payload

    assert fast.matrix([Payload({"x": [1.0], "y": [None], "z": [0.0]}, 1)]) is None
    assert fast.matrix([Payload({"x": ["a"], "y": [1.0], "z": [0.0]}, 1)]) is None
    assert fast.matrix([Payload({"x": ["1.5"], "y": [1.0], "z": [0.0]}, 1)]) is None
    assert (
        fast.matrix(
            [Payload({"x": [1.0], "y": [1.0], "z": [0.0]}, 1), Payload({"x": ["1"], "y": [1], "z": [0]}, 1)]
        )
        is None
    )
    assert fast.matrix([Payload({"x": [1.0], "y": [1.0]}, 1)]) is None
    assert np.array_equal(fast.matrix([Payload({"x": [1.0], "y": [2.0], "z": [3]}, 1)]), [[1.0, 2.0, 3.0]])


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/models/clf/predict", {"records": [ROW, {**ROW, "x": "1.5"}]}),
        (
            "/v1/models/clf/predict",
            {"columns": ["x", "y", "z"], "data": [[0.5, -0.2, 1.0], ["1.5", -0.2, 1.0]]},
        ),
        ("/invocations", {"dataframe_split": {"columns": ["x", "y", "z"], "data": [["1.5", -0.2, 1.0]]}}),
        ("/invocations", {"dataframe_records": [{**ROW, "x": "1.5"}]}),
        ("/invocations", {"instances": [{**ROW, "x": "1.5"}]}),
        ("/invocations", {"instances": [["1.5", -0.2, 1.0]]}),
        ("/invocations", {"inputs": {"x": ["1.5"], "y": [-0.2], "z": [1.0]}}),
        ("/invocations", {"inputs": {"x": ["1.5", None], "y": [-0.2, -0.2], "z": [1.0, 1.0]}}),
    ],
)
def test_numbers_sent_as_strings_are_refused_on_the_fast_path_too(app, path: str, body: dict) -> None:
    assert call(app, "GET", "/health/ready").json()["models"]["primary"]["fast_path"] is True
    r = call(app, "POST", path, json=body)
    assert r.status_code == 422, r.text  # the fast path parsed "1.5" and answered 200 before
    assert r.json()["code"] == "invalid_input"
    assert "column 'x' should be float64 but is string" in r.json()["problems"]


def test_predict_routes_take_the_raw_path() -> None:
    from modelyard.serving._routes import ROUTES, FastRouter

    fast = FastRouter(ROUTES)

    def match(path: str, method: str = "POST") -> tuple[str, dict[str, str]] | None:
        got = fast.match(method, path)
        return None if got is None else (got[0].api, got[1])

    assert match("/invocations") == ("invocations", {})
    assert match("/v1/models/clf/predict") == ("native", {"name": "clf"})
    assert match("/v1/models/clf/versions/2/predict") == ("native", {"name": "clf", "version": "2"})
    assert match("/v2/models/clf/infer") == ("v2", {"name": "clf"})
    assert match("/v2/models/clf/versions/3/infer") == ("v2", {"name": "clf", "version": "3"})
    for other in (
        "/v1/models//predict",
        "/v1/models/a/b/predict",
        "/v1/models/clf",
        "/metrics",
        "/v2/models/clf/ready",
        "/v1/models/clf/feedback",
        "/v1/models/clf/versions//predict",
        "/invocations/",
    ):
        assert match(other) is None, other
    assert match("/v1/models/clf/predict", "GET") is None and match("/invocations", "PUT") is None


def test_bad_version_in_the_path_is_404(app) -> None:
    r = call(app, "POST", "/v1/models/clf/versions/two/predict", json={"records": [ROW]})
    assert r.status_code == 404 and r.json()["error"] == "Version 'two' is not a number."
    r = call(app, "POST", "/v1/models//predict", json={"records": [ROW]})
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_raw_path_reads_a_body_sent_in_chunks_and_limits_it(backend_store) -> None:
    import json

    server = build_app(
        {"models": {"primary": "clf/1"}, "limits": {"max_body_bytes": 200}},
        uri=backend_store,
        prediction_log=False,
    )

    def post(chunks: list[bytes]) -> tuple[int, dict]:
        sent: list[dict] = []

        async def go() -> None:
            messages = [
                {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)
            ]

            async def receive() -> dict:
                return messages.pop(0) if messages else {"type": "http.disconnect"}

            async def send(m: dict) -> None:
                sent.append(m)

            scope = {
                "type": "http",
                "method": "POST",
                "path": "/v1/models/clf/predict",
                "query_string": b"",
                "headers": [(b"content-type", b"application/json")],
            }
            await server(scope, receive, send)

        asyncio.run(go())
        return sent[0]["status"], json.loads(sent[1]["body"])

    try:
        body = json.dumps({"records": [ROW]}).encode()
        status, out = post([body[:7], body[7:20], body[20:]])
        assert (
            status == 200
            and out["predictions"]
            == call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW]}).json()["predictions"]
        )
        status, out = post([body] + [b" " * 100] * 3)
        assert status == 413 and out["error"] == "The body is larger than the limit of 200 bytes."
        for chunks in ([b" " * 300], [b" " * 300, b"{}"]):
            status, out = post(chunks)
            assert status == 413 and out["code"] == "body_too_large"
    finally:
        server.close()


def test_batch_value_histogram_matches_one_observe_per_value() -> None:
    import math

    import numpy as np
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from modelyard.serving._metrics import observe_many

    values = np.r_[np.random.default_rng(0).normal(size=500) * 5, [0.0, 0.1, 1.0, -10.0, 1e9, math.nan]]
    text = []
    for bulk in (False, True):
        reg = CollectorRegistry()
        h = Histogram("v", "v", ["m"], buckets=(-10.0, -1.0, 0.0, 0.1, 0.5, 1.0, 100.0), registry=reg).labels(
            "a"
        )
        if bulk:
            observe_many(h, values)
        else:
            for v in values.tolist():
                h.observe(v)
        text.append([line for line in generate_latest(reg).decode().splitlines() if "_created" not in line])
    assert text[0] == text[1] and 'v_bucket{le="+Inf",m="a"} 505.0' in text[1]  # NaN reaches only the sum


def _concrete(path: str) -> str:
    return path.replace("{name}", "clf").replace("{version}", "1")


def test_starlette_fast_path_and_openapi_come_from_one_route_table(app) -> None:
    from modelyard.serving._routes import ROUTES

    table = {(r.method, r.path) for r in app.routes}
    assert app.routes == ROUTES and len(table) == len(ROUTES)  # one row per (method, path)
    starlette = {(m, r.path) for r in app.app.routes for m in r.methods if m != "HEAD"}
    doc = call(app, "GET", "/openapi.json").json()
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    assert starlette == table
    assert documented == {(m, p.replace("{name}", "clf")) for m, p in table}
    fast = {
        (r.method, r.path) for r in ROUTES if app.fast_router.match(r.method, _concrete(r.path)) is not None
    }
    assert (
        fast
        == {(r.method, r.path) for r in ROUTES if r.api is not None}
        == {
            ("POST", "/v1/models/{name}/predict"),
            ("POST", "/v1/models/{name}/versions/{version}/predict"),
            ("POST", "/invocations"),
            ("POST", "/v2/models/{name}/infer"),
            ("POST", "/v2/models/{name}/versions/{version}/infer"),
        }
    )
    for r in ROUTES:  # every schema a row names is in the document; the admin rows ask for the token
        op = doc["paths"][r.path.replace("{name}", "clf")][r.method.lower()]
        for ref in (r.request, r.response):
            assert ref is None or ref in doc["components"]["schemas"]
        assert ("security" in op) == r.auth == r.path.startswith("/admin/")


def test_a_row_left_out_of_the_table_is_gone_from_every_view(backend_store) -> None:
    """The server's three views follow the table it is given: without the /invocations row, the
    hot path, the Starlette routes and the document all lack it."""
    from modelyard.serving import ModelServer
    from modelyard.serving._routes import ROUTES

    rows = tuple(r for r in ROUTES if r.name != "invocations")
    server = ModelServer(
        {"models": {"primary": "clf/1"}}, uri=backend_store, prediction_log=False, routes=rows
    ).start()
    try:
        r = call(server, "POST", "/invocations", json={"dataframe_records": [ROW]})
        assert r.status_code == 404 and r.json() == {
            "error": "No route '/invocations'; see /openapi.json for the endpoints.",
            "code": "not_found",
        }
        assert "/invocations" not in call(server, "GET", "/openapi.json").json()["paths"]
        assert call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW]}).status_code == 200
    finally:
        server.close()


def test_the_constructor_stores_and_start_loads(backend_store) -> None:
    from modelyard.serving import ModelServer

    server = ModelServer({"models": {"primary": "nope/1"}}, uri=backend_store, prediction_log=False)
    assert not server.started and server.deployment is None  # nothing loaded, nothing raised yet
    r = call(server, "POST", "/v1/models/nope/predict", json={"records": [ROW]})
    assert r.status_code == 503 and r.json()["error"] == "No deployment is loaded yet; see /health/ready."
    with pytest.raises(SwapError, match=r"The new spec was not applied: Model 'nope' is not registered"):
        server.start()
    assert not server.started
    server.close()
    lazy = ModelServer({"models": {"primary": "clf/1"}}, uri=backend_store, prediction_log=False)
    assert lazy.start() is lazy and lazy.started and lazy.deployment.primary.version == 1
    first = lazy.deployment
    lazy.start()  # a second start does nothing
    assert lazy.deployment is first
    lazy.close()


def test_the_lifespan_startup_starts_the_server(backend_store) -> None:
    from modelyard.serving import ModelServer
    from modelyard.serving._server import running

    server = ModelServer({"models": {"primary": "clf/1"}}, uri=backend_store, prediction_log=False)
    with running(server) as h:  # uvicorn sends lifespan.startup before it listens
        assert server.started
        r = httpx.post(h.url + "/v1/models/clf/predict", json={"records": [ROW]}, timeout=60)
        assert r.status_code == 200 and r.json()["version"] == 1
    bad = ModelServer({"models": {"primary": "nope/1"}}, uri=backend_store, prediction_log=False)
    sent: list[dict] = []

    async def lifespan() -> None:
        messages = [{"type": "lifespan.startup"}]

        async def receive() -> dict:
            return messages.pop(0)

        async def send(m: dict) -> None:
            sent.append(m)

        await bad({"type": "lifespan"}, receive, send)

    asyncio.run(lifespan())  # the startup failure is reported to the ASGI server, which then exits
    assert sent == [
        {
            "type": "lifespan.startup.failed",
            "message": "The new spec was not applied: Model 'nope' is not registered. List models with "
            "`yard models list`; register one with run.log_model(model, name=...).",
        }
    ]
    assert not bad.started and bad.last_swap["ok"] is False


def test_the_spec_file_watcher_swaps_when_the_file_changes(backend_store, tmp_path, metric) -> None:
    """``watch=True``: a new spec file is served without a request asking for it; a spec that
    does not load leaves the old one serving and the reason on /health/ready."""
    import os
    import time

    spec_file = tmp_path / "serve.yaml"
    spec_file.write_text("models: {primary: clf/1}\n")

    def replace(text: str) -> None:  # in one step, as an editor or a config-map update does
        tmp = tmp_path / "serve.yaml.tmp"
        tmp.write_text(text)
        os.replace(tmp, spec_file)

    def wait_until(cond, what: str) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while not cond(ready := call(server, "GET", "/health/ready").json()):
            assert time.monotonic() < deadline, f"{what} within 60 s: {ready}"
            time.sleep(0.05)
        return ready

    server = build_app(spec_file, uri=backend_store, watch=True, prediction_log=False)
    try:
        assert call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW]}).json()["version"] == 1
        replace("models: {primary: clf/2}\n")
        wait_until(lambda b: b["models"]["primary"]["version"] == 2, "the new spec was not served")
        assert call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW]}).json()["version"] == 2
        replace("models: {primary: nope/1}\n")
        ready = wait_until(lambda b: b["last_swap"]["ok"] is False, "the bad spec was not tried")
        assert ready["status"] == "ready" and ready["models"]["primary"]["version"] == 2
        assert ready["last_swap"]["error"].startswith("Model 'nope' is not registered.")
        assert call(server, "POST", "/v1/models/clf/predict", json={"records": [ROW]}).json()["version"] == 2
        assert metric(server, "yard_serving_spec_swaps_total", outcome="ok") == 2
        assert metric(server, "yard_serving_spec_swaps_total", outcome="failed") == 1
        # labelled by what started the swap (the error text is on /health/ready, not a label)
        assert metric(server, "yard_serving_spec_swaps_total", outcome="failed", reason="file") == 1
    finally:
        server.close()
