"""The OpenAPI document matches the server: every route of the table it dispatches from is
documented (and nothing else), the answers of real requests (good and bad) validate against the
documented schema of their status, request schemas are as strict as the model's signature, and
a bounded schemathesis run against the real server finds no 5xx and no answer off the document."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec

from modelyard.serving import build_app
from modelyard.serving._routes import ROUTES
from modelyard.serving._server import running

AUTH = {"authorization": "Bearer s3cret"}
ROW = {"x": 0.5, "y": -0.2, "z": 1.0}


def call(app: Any, method: str, path: str, **kw: Any) -> httpx.Response:
    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            return await c.request(method, path, **kw)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def fallback_app(served_store: str) -> Any:
    """flaky/1 (raises on x < 0) with a constant fallback: a failing row is answered by the
    constant, with ``"version": null``."""
    spec = {
        "models": {"primary": "flaky/1"},
        "fallback": {"constant": 0},
        "allow_pickle": True,
        "breaker": {"enabled": False},
    }
    app = build_app(spec, uri=served_store, admin_token="s3cret", prediction_log=False)
    yield app
    app.close()


@pytest.fixture(scope="module")
def ab_app(served_store: str) -> Any:
    spec = {"models": {"a": "clf/1", "b": "clf/2"}, "traffic": {"kind": "ab", "arms": {"a": 50, "b": 50}}}
    app = build_app(spec, uri=served_store, admin_token="s3cret", prediction_log=False)
    yield app
    app.close()


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``doc``."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def check_answer(doc: dict[str, Any], path: str, method: str, r: httpx.Response) -> None:
    """``r`` has a status the operation documents, and its body validates against that status's schema."""
    op = doc["paths"][path][method.lower()]
    status = str(r.status_code)
    assert status in op["responses"], (method, path, status, sorted(op["responses"]), r.text)
    content = op["responses"][status].get("content")
    if content is None:
        assert not r.content, (method, path, status, r.text)
        return
    media = r.headers["content-type"].split(";")[0]
    assert media in content, (method, path, media, sorted(content))
    body = r.json() if media == "application/json" else r.text
    errors = sorted(validator(doc, content[media]["schema"]).iter_errors(body), key=str)
    assert not errors, (method, path, status, body, [e.message for e in errors])


def test_the_document_is_valid_openapi_and_lists_exactly_the_route_table(ab_app) -> None:
    doc = call(ab_app, "GET", "/openapi.json").json()
    validate_spec(doc)  # OpenAPI 3.1, every $ref resolves
    table = {(r.method.lower(), r.path.replace("{name}", "clf")) for r in ab_app.routes}
    documented = {(m, p) for p, item in doc["paths"].items() for m in item}
    assert ab_app.routes == ROUTES and documented == table
    for must in (
        ("get", "/v1/models/clf"),
        ("post", "/v1/models/clf/feedback"),
        ("get", "/v2/models/clf/versions/{version}"),
        ("get", "/v2/models/clf/versions/{version}/ready"),
        ("post", "/v2/models/clf/versions/{version}/infer"),
        ("get", "/ping"),
        ("get", "/health"),
        ("post", "/admin/spec"),
    ):
        assert must in documented
    for r in ab_app.routes:
        path = r.path.replace("{name}", "clf")
        op = doc["paths"][path][r.method.lower()]
        # every {param} of the path is a required path parameter, and nothing else is
        in_path = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert in_path == set(re.findall(r"\{(\w+)\}", path)), path
        assert all(p["required"] for p in op["parameters"] if p["in"] == "path")
        assert "200" in op["responses"]
        if r.path.startswith("/admin/"):
            assert op["security"] == [{"adminToken": []}]
            assert {"401", "403"} <= set(op["responses"]), path
        else:
            assert "security" not in op
    assert (
        doc["paths"]["/admin/spec"]["post"]["requestBody"]
        == doc["paths"]["/admin/spec"]["put"]["requestBody"]
    )


def test_request_schemas_are_as_strict_as_the_signature(ab_app) -> None:
    doc = call(ab_app, "GET", "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    row = schemas["Row"]
    assert row["required"] == ["x", "y", "z"] and row["properties"]["x"]["type"] == ["number", "boolean"]

    def valid(name: str, body: Any) -> bool:
        return validator(doc, {"$ref": f"#/components/schemas/{name}"}).is_valid(body)

    good = [
        ("PredictRequest", {"records": [ROW]}),
        ("PredictRequest", {"columns": ["z", "y", "x"], "data": [[1, 2, 3]]}),
        ("PredictRequest", {"data": [[1, 2, 3]]}),
        ("PredictRequest", {"inputs": {"x": [1], "y": [2], "z": [3]}}),
        ("MLflowRequest", {"dataframe_records": [ROW]}),
        ("MLflowRequest", {"dataframe_split": {"columns": ["x", "y", "z"], "data": [[1, 2, 3]]}}),
        ("MLflowRequest", {"instances": [[1, 2, 3]]}),
        (
            "V2InferRequest",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
        ),
        ("Feedback", {"key": "u1", "outcome": "conversion", "value": 1}),
    ]
    bad = [  # each of these answers 400 or 422, and the document says so
        ("PredictRequest", {"records": []}),  # no rows
        ("PredictRequest", {"records": [{"x": 1, "y": 2}]}),  # a missing column
        ("PredictRequest", {"records": [{**ROW, "x": "a"}]}),  # a string for a float
        ("PredictRequest", {"records": [{**ROW, "x": None}]}),  # null in a column that allows none
        ("PredictRequest", {"columns": ["x", "y"], "data": [[1, 2]]}),
        ("PredictRequest", {"data": [[1, 2]]}),  # rows without 'columns' list every column
        ("PredictRequest", {"records": [ROW], "version": "2"}),
        ("PredictRequest", {"rows": [ROW]}),
        ("MLflowRequest", {"dataframe_records": [ROW], "instances": [[1, 2, 3]]}),  # exactly one key
        ("MLflowRequest", {}),
        ("V2InferRequest", {"inputs": []}),
        ("V2InferRequest", {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64"}]}),
        ("V2InferRequest", {"inputs": [{"name": "x", "shape": [0], "datatype": "FP64", "data": []}]}),
        ("V2InferRequest", {"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1]}]}),
        ("Feedback", {"outcome": "conversion"}),  # neither key nor request_id
    ]
    assert [b for name, b in good if not valid(name, b)] == []
    assert [b for name, b in bad if valid(name, b)] == []
    for name, body in good:  # ... and the server agrees
        path = {
            "PredictRequest": "/v1/models/clf/predict",
            "MLflowRequest": "/invocations",
            "V2InferRequest": "/v2/models/clf/infer",
            "Feedback": "/v1/models/clf/feedback",
        }[name]
        assert call(ab_app, "POST", path, json=body).status_code == 200, (path, body)
    for name, body in bad:
        path = {
            "PredictRequest": "/v1/models/clf/predict",
            "MLflowRequest": "/invocations",
            "V2InferRequest": "/v2/models/clf/infer",
            "Feedback": "/v1/models/clf/feedback",
        }[name]
        assert call(ab_app, "POST", path, json=body).status_code in (400, 422), (path, body)


def test_a_column_range_and_nullability_come_from_the_signature() -> None:
    from modelyard.registry._signature import ColSpec
    from modelyard.serving._openapi import column_schema

    assert column_schema(ColSpec("a", "float64", min=0, max=1)) == {
        "type": ["number", "boolean"],
        "minimum": 0,
        "maximum": 1,
    }
    assert column_schema(ColSpec("b", "int64", nullable=True))["type"] == ["integer", "boolean", "null"]
    assert column_schema(ColSpec("c", "string")) == {"type": "string"}
    flag = column_schema(ColSpec("d", "bool", nullable=True))
    assert Draft202012Validator(flag).is_valid(None) and not Draft202012Validator(flag).is_valid(2)


def test_answers_of_real_requests_validate_against_the_document(ab_app, fallback_app) -> None:
    cases: list[tuple[Any, str, str, str, dict[str, Any]]] = []  # app, method, path (documented), url, kw
    doc_path = {id(ab_app): "clf", id(fallback_app): "flaky"}

    def add(app: Any, method: str, path: str, url: str | None = None, **kw: Any) -> None:
        cases.append((app, method, path, url or path, kw))

    a, f = ab_app, fallback_app
    for p in ("/v1/models", "/v1/models/clf", "/v2", "/v2/health/live", "/v2/health/ready", "/health/live"):
        add(a, "GET", p)
    for p in ("/ping", "/health", "/health/ready", "/openapi.json", "/metrics", "/v2/models/clf"):
        add(a, "GET", p)
    add(a, "GET", "/v2/models/clf/ready")
    add(a, "GET", "/v2/models/clf/versions/{version}", "/v2/models/clf/versions/2")
    add(a, "GET", "/v2/models/clf/versions/{version}", "/v2/models/clf/versions/7")  # 404
    add(a, "GET", "/v2/models/clf/versions/{version}/ready", "/v2/models/clf/versions/1/ready")
    add(a, "GET", "/v2/models/clf/versions/{version}/ready", "/v2/models/clf/versions/x/ready")  # 404
    add(a, "POST", "/v1/models/clf/predict", json={"records": [ROW, ROW]})
    add(a, "POST", "/v1/models/clf/predict", url="/v1/models/clf/predict?proba=true", json={"records": [ROW]})
    add(a, "POST", "/v1/models/clf/predict", json={"records": [{"x": 1}]})  # 422, every problem
    add(a, "POST", "/v1/models/clf/predict", content=b"{", headers={"content-type": "application/json"})
    add(a, "POST", "/v1/models/clf/predict", content=b"x", headers={"content-type": "image/png"})  # 415
    add(a, "POST", "/v1/models/clf/versions/{version}/predict", "/v1/models/clf/versions/2/predict",
        json={"records": [ROW]})  # fmt: skip
    add(a, "POST", "/v1/models/clf/versions/{version}/predict", "/v1/models/clf/versions/5/predict",
        json={"records": [ROW]})  # fmt: skip
    add(
        a, "POST", "/invocations", json={"dataframe_split": {"columns": ["x", "y", "z"], "data": [[1, 2, 3]]}}
    )
    add(a, "POST", "/invocations", content=b"x,y,z\n1,2,3\n", headers={"content-type": "text/csv"})
    add(a, "POST", "/invocations", json={"nope": 1})
    v2 = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}
    add(a, "POST", "/v2/models/clf/infer", json=v2)
    add(a, "POST", "/v2/models/clf/infer", json={**v2, "outputs": [{"name": "probabilities"}]})
    add(a, "POST", "/v2/models/clf/versions/{version}/infer", "/v2/models/clf/versions/1/infer", json=v2)
    add(a, "POST", "/v2/models/clf/infer", json={"inputs": "x"})
    add(a, "POST", "/v1/models/clf/feedback", json={"key": "u1", "outcome": "click", "value": 1})
    add(a, "POST", "/v1/models/clf/feedback", json={"outcome": "click"})
    add(a, "GET", "/admin/spec")  # 401
    add(a, "GET", "/admin/spec", headers=AUTH)
    add(a, "PUT", "/admin/spec", content=b"models: [", headers=AUTH)  # 422
    add(a, "POST", "/admin/spec", content=b"models: {a: nope/1}", headers={"authorization": "Bearer no"})
    # a constant fallback answers a failing row: "version" is null, V2's model_version "constant"
    add(f, "POST", "/v1/models/flaky/predict", json={"records": [{"x": -1.0, "y": 0.0, "z": 0.0}]})
    add(f, "POST", "/v2/models/flaky/infer", json={"inputs": [{"name": n, "shape": [1], "datatype": "FP64",
        "data": [-1.0]} for n in ("x", "y", "z")]})  # fmt: skip
    add(f, "POST", "/v1/models/flaky/feedback", json={"key": "u"})  # 409: no A/B test
    add(f, "PUT", "/admin/spec", content=b"models: {primary: flaky/1}\nfallback: {constant: 0}\n"
        b"allow_pickle: true\nbreaker: {enabled: false}\n", headers=AUTH)  # fmt: skip
    docs = {id(app): call(app, "GET", "/openapi.json").json() for app in (a, f)}
    seen: dict[int, int] = {}
    for app, method, path, url, kw in cases:
        r = call(app, method, url, **kw)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        check_answer(docs[id(app)], path.replace("clf", doc_path[id(app)]), method, r)
        if app is f and url == "/v1/models/flaky/predict":
            assert r.json()["version"] is None and r.json()["fallback"] is True
    assert {200, 400, 401, 404, 409, 415, 422} <= set(seen), seen


ST_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "unsupported_method",
)


@pytest.mark.slow
def test_schemathesis_finds_no_5xx_and_no_answer_off_the_document(served_store, tmp_path) -> None:
    """``st run`` (examples, coverage and fuzzing phases: valid and invalid requests) against the
    real server over HTTP, bounded by example count and deterministic. Checks: no 5xx, every
    status documented, every body, header and content type as documented, 405 for other methods.

    Not checked: schemathesis' "valid data accepted" / "invalid data rejected" heuristics, because
    some rules of the server cannot be said in JSON Schema (a row of 'data' has one value per
    column, the columns of 'inputs' have one length, a V2 tensor holds prod(shape) values)."""
    import subprocess
    import sys

    spec = {"models": {"a": "clf/1", "b": "clf/2"}, "traffic": {"kind": "ab", "arms": {"a": 50, "b": 50}}}
    app = build_app(spec, uri=served_store, admin_token="s3cret", prediction_log=False)
    try:
        with running(app) as h:
            r = subprocess.run(
                [
                    *(sys.executable, "-m", "schemathesis.cli", "run", h.url + "/openapi.json"),
                    *("--checks", ",".join(ST_CHECKS), "--max-examples", "12", "--workers", "1"),
                    *("--phases", "examples,coverage,fuzzing", "--generation-deterministic"),
                    *("--header", "Authorization: Bearer s3cret", "--no-color"),
                    *("--report", "junit", "--report-dir", str(tmp_path)),
                ],
                capture_output=True,
                text=True,
                timeout=900,
                cwd=tmp_path,
            )
            tail = r.stdout[-6000:]
            assert r.returncode == 0, tail
            report = next(tmp_path.glob("junit*.xml")).read_text()
            tested = set(re.findall(r'testcase name="(\w+) ([^"]+)"', report))
            expected = {(r.method, r.path.replace("{name}", "clf")) for r in ROUTES}
            assert tested == expected - {("GET", "/openapi.json")}, tail  # st skips the schema's own URL
            cases = re.search(r"(\d+) generated", r.stdout)
            assert cases and int(cases.group(1)) >= 10 * len(ROUTES), tail
            ready = call(app, "GET", "/health/ready").json()  # the run broke nothing
            assert ready["status"] == "ready" and set(ready["models"]) == {"a", "b"}, ready
    finally:
        app.close()


def test_binary_v2_bodies_are_documented_as_the_server_takes_and_answers_them(ab_app) -> None:
    """The binary tensor data extension both ways: the document names the media type, the
    Inference-Header-Content-Length header and the JSON header's schema; a body built from what
    the document says is answered 200 in a documented media type with the documented header, and
    JSON headers the documented schema refuses (data and binary_data_size both, or neither) the
    server refuses too, while the ones it accepts the server answers."""
    import json

    import numpy as np

    doc = call(ab_app, "GET", "/openapi.json").json()
    header_schema = validator(doc, {"$ref": "#/components/schemas/V2BinaryHeader"})
    answer_schema = validator(doc, {"$ref": "#/components/schemas/V2InferResponse"})
    for path in ("/v2/models/clf/infer", "/v2/models/clf/versions/{version}/infer"):
        op = doc["paths"][path]["post"]
        body = op["requestBody"]["content"]
        assert set(body) == {"application/json", "application/octet-stream"}, path
        assert body["application/octet-stream"]["schema"]["format"] == "binary"
        (param,) = [p for p in op["parameters"] if p["in"] == "header"]
        assert param["name"] == "Inference-Header-Content-Length" and not param["required"]
        ok = op["responses"]["200"]
        assert set(ok["content"]) == {"application/json", "application/octet-stream"}, path
        assert "inference-header-content-length" in ok["headers"]

    op = doc["paths"]["/v2/models/clf/infer"]["post"]
    media = next(m for m in op["requestBody"]["content"] if m != "application/json")
    header_name = next(p["name"] for p in op["parameters"] if p["in"] == "header")
    x = np.array([[0.5, -0.2, 1.0], [-3.0, -0.2, 1.0]])

    def send(head: dict[str, Any], blob: bytes) -> httpx.Response:
        raw = json.dumps(head).encode()
        headers = {"content-type": media, header_name: str(len(raw))}
        return call(ab_app, "POST", "/v2/models/clf/infer", content=raw + blob, headers=headers)

    tensor = {"name": "input", "shape": [2, 3], "datatype": "FP64"}
    good = {
        "inputs": [{**tensor, "parameters": {"binary_data_size": x.size * 8}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }
    assert header_schema.is_valid(good)
    r = send(good, x.astype("<f8").tobytes())
    assert r.status_code == 200, r.text
    ctype = r.headers["content-type"]
    assert ctype in op["responses"]["200"]["content"]
    assert ctype == "application/octet-stream"  # a binary output was asked for
    n = int(r.headers["inference-header-content-length"])
    answer = json.loads(r.content[:n])
    assert not list(answer_schema.iter_errors(answer))
    (out,) = answer["outputs"]
    assert out["parameters"]["binary_data_size"] == len(r.content) - n == 2 * 8

    plain = {"inputs": [{**tensor, "data": x.ravel().tolist()}]}  # JSON data inside a binary body
    assert header_schema.is_valid(plain)
    r = send(plain, b"")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json", r.text
    assert not list(answer_schema.iter_errors(r.json()))

    both = {"inputs": [{**tensor, "data": x.ravel().tolist(), "parameters": {"binary_data_size": 48}}]}
    neither = {"inputs": [tensor]}
    for head in (both, neither):
        assert not header_schema.is_valid(head)
        r = send(head, x.astype("<f8").tobytes())
        assert r.status_code == 400, r.text
        assert str(r.status_code) in op["responses"]
