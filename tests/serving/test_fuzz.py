"""Property-based fuzzing of every route of the server's OpenAPI document: no answer is a 5xx.

Bounded and deterministic: a fixed number of examples per operation, a fixed seed (the same
inputs on every run), no deadline (the machine may be loaded), no example database.
"""

from __future__ import annotations

import json
import math
import string
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from modelyard.serving import build_app
from modelyard.serving._server import running

POST_EXAMPLES = 40  # per operation with a body
GET_EXAMPLES = 6

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=24,
)


def from_schema(
    schema: dict[str, Any], doc: dict[str, Any], depth: int = 0, strict: bool = False
) -> st.SearchStrategy[Any]:
    """Values shaped like a JSON schema (numbers include NaN, ±Infinity and 1e308), mixed with
    arbitrary JSON at every level unless ``strict``."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return from_schema(doc["components"]["schemas"][name], doc, depth, strict)
    if depth > 4:
        return scalars
    if "oneOf" in schema:
        return st.one_of([from_schema(s, doc, depth, strict) for s in schema["oneOf"]])
    if "enum" in schema:
        shaped: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    else:
        t = schema.get("type")
        if t == "object":
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            fields = {k: from_schema(v, doc, depth + 1, strict) for k, v in props.items()}
            shaped = (
                st.fixed_dictionaries(  # strict: the required fields only (a valid request but for values)
                    {k: v for k, v in fields.items() if k in required},
                    optional={} if strict else {k: v for k, v in fields.items() if k not in required},
                )
            )
        elif t == "array":
            shaped = st.lists(
                from_schema(schema.get("items", {}), doc, depth + 1, strict), min_size=1, max_size=4
            ) | st.just([])
        elif t == "integer":
            shaped = st.integers(min_value=-3, max_value=2**40)
        elif t == "number":
            special = st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308])
            shaped = st.one_of(
                st.floats(min_value=-10, max_value=10),
                st.integers(min_value=-5, max_value=5),
                special,
                special,
                st.floats(),
            )
        elif t == "boolean":
            shaped = st.booleans()
        elif t == "string":
            shaped = st.text(max_size=12)
        else:
            shaped = json_values
    return shaped if strict else st.one_of(*[shaped] * 9, json_values)  # mostly shaped, sometimes anything


@pytest.fixture(scope="module")
def fuzz_server(served_store):  # type: ignore[no-untyped-def]
    # no fallback: a model failure would answer 503 and fail the test
    spec = {"models": {"a": "clf/1", "b": "clf/2"}, "traffic": {"kind": "ab", "arms": {"a": 50, "b": 50}}}
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
    return [
        (path, method, op)
        for path, item in sorted(doc["paths"].items())
        for method, op in sorted(item.items())
    ]


def test_no_route_answers_5xx(fuzz_server) -> None:
    _, client, doc = fuzz_server
    ops = _operations(doc)
    seen: set[tuple[str, str]] = set()
    statuses: dict[int, int] = {}
    segment = st.text(alphabet=string.ascii_letters + string.digits + "-._~%", min_size=1, max_size=12)

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
            schema = (
                spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema") or {}
            )
            kind = data.draw(st.sampled_from(["shaped", "shaped", "json", "bytes", "csv"]))
            if kind in ("shaped", "json"):
                value = data.draw(from_schema(schema, doc, strict=kind == "shaped"))
                content = json.dumps(value, allow_nan=True).encode()
                headers["content-type"] = data.draw(
                    st.sampled_from(["application/json"] * 5 + ["text/plain"])
                )
            elif kind == "csv":
                rows = data.draw(
                    st.lists(
                        st.lists(scalars.map(lambda v: "" if v is None else str(v)), min_size=1, max_size=4),
                        min_size=1,
                        max_size=4,
                    )
                )
                content = "\n".join(",".join(r) for r in rows).encode()
                headers["content-type"] = "text/csv"
            else:
                content = data.draw(st.binary(max_size=64))
                headers["content-type"] = data.draw(
                    st.sampled_from(["application/json", "text/csv", "", "image/png"])
                )
        r = client.request(method.upper(), path, params=params, content=content, headers=headers)
        seen.add((op[0], op[1]))
        statuses[r.status_code // 100] = statuses.get(r.status_code // 100, 0) + 1
        assert r.status_code < 500, (method, path, params, content, r.status_code, r.text)

    for op in ops:  # each operation gets its own bounded, derandomized run
        n = POST_EXAMPLES if op[1] in ("post", "put") else GET_EXAMPLES
        run = seed(20261202)(
            settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))(
                given(st.just(op), st.data())(one)
            )
        )
        run()
    assert seen == {(p, m) for p, m, _ in ops}  # every operation was exercised
    assert statuses.get(2, 0) >= 40 and statuses.get(4, 0) >= 100, (
        statuses
    )  # valid requests too, not only refusals
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ready"
    assert all(m["breaker"]["state"] == "closed" for m in ready["models"].values())
