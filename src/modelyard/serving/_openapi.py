"""The OpenAPI document of a model server, with the served model's input columns."""

from __future__ import annotations

from typing import Any

__all__ = ["openapi_document"]


def _json_type(dtype: str) -> dict[str, Any]:
    d = dtype.lower()
    if "bool" in d:
        return {"type": "boolean"}
    if "int" in d:
        return {"type": "integer"}
    if "float" in d or "double" in d:
        return {"type": "number"}
    return {"type": "string"}


def openapi_document(endpoint: str, signature: Any, version: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for s in getattr(signature, "inputs", None) or []:
        t = _json_type(str(getattr(s, "dtype", "")))
        if getattr(s, "min", None) is not None:
            t["minimum"] = s.min
        if getattr(s, "max", None) is not None:
            t["maximum"] = s.max
        props[s.name] = t
    row = {"type": "object", "properties": props, "additionalProperties": False} if props else {"type": "object"}
    error = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "code": {"type": "string"},
            "problems": {"type": "array", "items": {"type": "string"}},
            "request_id": {"type": "string"},
        },
        "required": ["error", "code"],
    }
    errors = {
        str(code): {"description": text, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for code, text in [
            (400, "Malformed JSON or body shape"), (404, "Unknown model or version"), (413, "Body too large"),
            (415, "Unsupported content type"), (422, "Input does not match the model signature (every problem listed)"),
            (429, "Queue full; see Retry-After"), (503, "Model failed and no fallback answered, or not ready"),
            (504, "Model timed out and no fallback is configured"),
        ]
    }
    predict_body = {
        "oneOf": [
            {"type": "object", "properties": {"records": {"type": "array", "items": row}, "version": {"type": "integer"}},
             "required": ["records"]},
            {"type": "object", "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}},
                "version": {"type": "integer"}}, "required": ["data"]},
        ]
    }
    predict_resp = {
        "type": "object",
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"}, "request_id": {"type": "string"},
            "predictions": {"type": "array"}, "fallback": {"type": "boolean"}, "fallback_reason": {"type": "string"},
        },
    }

    def post(summary: str, body: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
        return {"post": {
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "Predictions", "content": {"application/json": {"schema": resp}}}, **errors},
        }}

    def get(summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": {"description": "OK"}}}}

    v2_body = {"type": "object", "properties": {"id": {"type": "string"}, "inputs": {"type": "array", "items": {
        "type": "object", "required": ["name", "shape", "datatype", "data"]}}}, "required": ["inputs"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"modelyard model server: {endpoint}", "version": version},
        "paths": {
            f"/v1/models/{endpoint}/predict": post("Predict (records or columns+data)", predict_body, predict_resp),
            f"/v1/models/{endpoint}/versions/{{version}}/predict": post("Predict on a pinned version", predict_body, predict_resp),
            "/v1/models": get("Served models"),
            "/invocations": post("MLflow scoring protocol (dataframe_split, dataframe_records, instances, inputs)",
                                 {"type": "object"}, {"type": "object", "properties": {"predictions": {"type": "array"}}}),
            f"/v2/models/{endpoint}/infer": post("Open Inference Protocol (V2) infer", v2_body, {"type": "object"}),
            f"/v2/models/{endpoint}/versions/{{version}}/infer": post("V2 infer on a pinned version", v2_body, {"type": "object"}),
            f"/v2/models/{endpoint}": get("V2 model metadata"),
            f"/v2/models/{endpoint}/ready": get("V2 model readiness"),
            "/v2": get("V2 server metadata"),
            "/v2/health/live": get("V2 liveness"),
            "/v2/health/ready": get("V2 readiness"),
            "/health/live": get("Liveness"),
            "/health/ready": get("Readiness: every model of the spec loaded and warmed; last swap error"),
            "/metrics": get("Prometheus metrics"),
            "/admin/spec": {
                "get": {"summary": "Current deployment spec (Authorization: Bearer <token>)",
                        "responses": {"200": {"description": "OK"}}},
                "put": {"summary": "Swap to a new deployment spec (YAML or JSON; Authorization: Bearer <token>)",
                        "responses": {"200": {"description": "Swapped"}, "422": {"description": "Spec invalid or a model failed to load; the old spec keeps serving"}}},
            },
        },
        "components": {"schemas": {"Error": error, "Row": row}},
    }
