"""Property-based fuzzing of every route of the server's OpenAPI document: no answer is a 5xx.

Bounded and deterministic: a fixed number of examples per run, derandomized (the same inputs on
every run), no deadline (the machine may be loaded), no example database.
"""

from __future__ import annotations

import json
import string
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.serving import build_app
from modelyard.serving._server import running

EXAMPLES = 400

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                           max_leaves=24)


def from_schema(schema: dict[str, Any], doc: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped like a JSON schema (roughly valid), mixed with arbitrary JSON at every level."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return from_schema(doc["components"]["schemas"][name], doc, depth)
    if depth > 4:
        return scalars
    if "oneOf" in schema:
        return st.one_of([from_schema(s, doc, depth) for s in schema["oneOf"]])
    if "enum" in schema:
        shaped: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    else:
        t = schema.get("type")
        if t == "object":
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            fields = {k: from_schema(v, doc, depth + 1) for k, v in props.items()}
            shaped = st.fixed_dictionaries(
                {k: v for k, v in fields.items() if k in required},
                optional={k: v for k, v in fields.items() if k not in required},
            )
        elif t == "array":
            shaped = st.lists(from_schema(schema.get("items", {}), doc, depth + 1), max_size=4)
        elif t == "integer":
            shaped = st.integers(min_value=-3, max_value=2**40)
        elif t == "number":
            shaped = st.floats(allow_nan=True, allow_infinity=True) | st.integers()
        elif t == "boolean":
            shaped = st.booleans()
        elif t == "string":
            shaped = st.text(max_size=12)
        else:
            shaped = json_values
    return st.one_of(shaped, shaped, shaped, json_values)  # mostly shaped, sometimes anything


@pytest.fixture(scope="module")
def fuzz_server(served_store):  # type: ignore[no-untyped-def]
    spec = {"models": {"a": "clf/1", "b": "clf/2"}, "traffic": {"kind": "ab", "arms": {"a": 50, "b": 50}},
            "fallback": {"constant": 0}}
    app = build_app(spec, uri=served_store, admin_token="s3cret", prediction_log=False)
    with running(app) as h, httpx.Client(base_url=h.url, timeout=60) as client:
        doc = client.get("/openapi.json").json()
        yield app, client, doc
    app.close()


def test_the_openapi_document_lists_every_route(fuzz_server) -> None:
    app, _, doc = fuzz_server
    routes = {r.path.replace("{name}", app.deployment.endpoint) for r in app.app.routes}
    assert routes == set(doc["paths"])


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in sorted(doc["paths"].items()) for method, op in sorted(item.items())]


def test_no_route_answers_5xx(fuzz_server) -> None:
    app, client, doc = fuzz_server
    ops = _operations(doc)
    seen: set[tuple[str, str]] = set()
    segment = st.text(alphabet=string.ascii_letters + string.digits + "-._~%", min_size=1, max_size=12)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(ops), st.data())
    def one(op: tuple[str, str, dict[str, Any]], data: st.DataObject) -> None:
        path, method, spec = op
        if "{version}" in path:
            version = data.draw(st.sampled_from(["1", "2", "0", "-1", "99999999999999999999"]) | segment)
            path = path.replace("{version}", quote(version, safe="%"))
        params: dict[str, str] = {}
        if any(p.get("name") == "proba" for p in spec.get("parameters", [])) and data.draw(st.booleans()):
            params["proba"] = data.draw(st.sampled_from(["true", "false", "1", "maybe", ""]))
        headers = {"x-user-id": data.draw(st.text(alphabet=string.ascii_letters, max_size=6))}
        if path == "/admin/spec" and data.draw(st.booleans()):
            headers["authorization"] = "Bearer s3cret"
        content: bytes | None = None
        if method in ("post", "put"):
            schema = (spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
                      or {})
            kind = data.draw(st.sampled_from(["json", "json", "json", "bytes", "csv"]))
            if kind == "json":
                content = json.dumps(data.draw(from_schema(schema, doc)), allow_nan=True).encode()
                headers["content-type"] = data.draw(st.sampled_from(["application/json", "application/json",
                                                                     "text/plain", "application/x-yaml"]))
            elif kind == "csv":
                rows = data.draw(st.lists(st.lists(scalars.map(lambda v: "" if v is None else str(v)), min_size=1,
                                                   max_size=4), min_size=1, max_size=4))
                content = "\n".join(",".join(r) for r in rows).encode()
                headers["content-type"] = "text/csv"
            else:
                content = data.draw(st.binary(max_size=64))
                headers["content-type"] = data.draw(st.sampled_from(["application/json", "text/csv", "", "image/png"]))
        r = client.request(method.upper(), path, params=params, content=content, headers=headers)
        seen.add((op[0], op[1]))
        assert r.status_code < 500, (method, path, params, content, r.status_code, r.text)

    one()
    assert seen == {(p, m) for p, m, _ in ops}  # every operation was exercised
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert all(m["breaker"]["state"] == "closed" for m in ready["models"].values())
