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
    row = ({"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
           if props else {"type": "object"})
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
            (400, "Malformed JSON, body shape, or nesting deeper than 64 levels"), (404, "Unknown model or version"),
            (408, "Headers or body not received within the limits' deadlines"), (413, "Body too large"),
            (415, "Unsupported content type"), (422, "Input does not match the model signature (every problem listed)"),
            (429, "Queue full; see Retry-After"), (503, "Model failed and no fallback answered, or not ready"),
            (504, "Model timed out and no fallback is configured"),
        ]
    }
    params = {"type": "object", "properties": {"proba": {
        "type": "boolean", "description": "true: each prediction is the row's class probabilities (in the order "
        "of 'classes' in the answer) instead of the predicted value. Same as the query ?proba=true."}}}
    predict_body = {
        "oneOf": [
            {"type": "object", "properties": {"records": {"type": "array", "items": row}, "version": {"type": "integer"},
                                              "params": params},
             "required": ["records"]},
            {"type": "object", "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "items": {"type": "array"}},
                "version": {"type": "integer"}, "params": params}, "required": ["data"]},
        ]
    }
    predict_resp = {
        "type": "object",
        "properties": {
            "model": {"type": "string"}, "version": {"type": "integer"}, "request_id": {"type": "string"},
            "predictions": {"type": "array"}, "fallback": {"type": "boolean"}, "fallback_reason": {"type": "string"},
            "classes": {"type": "array", "description": "With proba: the class of each probability column."},
        },
    }
    proba_query = [{"name": "proba", "in": "query", "required": False, "schema": {"type": "boolean"},
                    "description": "true: answer class probabilities (models with predict_proba)."}]
    version_path = [{"name": "version", "in": "path", "required": True, "schema": {"type": "integer"}}]

    def post(summary: str, body: dict[str, Any], resp: dict[str, Any], parameters: list[Any] | None = None) -> dict[str, Any]:
        return {"post": {
            "summary": summary,
            "parameters": parameters or [],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {"200": {"description": "Predictions", "content": {"application/json": {"schema": resp}}}, **errors},
        }}

    def get(summary: str, parameters: list[Any] | None = None) -> dict[str, Any]:
        return {"get": {"summary": summary, "parameters": parameters or [], "responses": {"200": {"description": "OK"}}}}

    v2_body = {"type": "object", "properties": {
        "id": {"type": "string"},
        "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "datatype", "data"], "properties": {
            "name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": ["BOOL", "INT64", "INT32", "FP64", "FP32", "BYTES"]},
            "data": {"type": "array"}}}},
        "outputs": {"type": "array", "description": "[{'name': 'probabilities'}] answers class probabilities "
                    "(shape [rows, classes]; the tensor's parameters.classes names the columns).",
                    "items": {"type": "object", "properties": {"name": {"type": "string", "enum": ["predict", "probabilities"]}}}},
    }, "required": ["inputs"]}
    mlflow_body = {"type": "object", "properties": {
        "dataframe_split": {"type": "object"}, "dataframe_records": {"type": "array", "items": row},
        "instances": {"type": "array"}, "inputs": {"type": "object"}, "params": params}}
    feedback_body = {"type": "object", "properties": {
        "key": {"type": "string"}, "request_id": {"type": "string"}, "outcome": {"type": "string"},
        "value": {"type": "number"}, "feedback": {"type": "array", "items": {"type": "object"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": f"modelyard model server: {endpoint}", "version": version},
        "paths": {
            f"/v1/models/{endpoint}/predict": post("Predict (records or columns+data)", predict_body, predict_resp,
                                                   proba_query),
            f"/v1/models/{endpoint}/versions/{{version}}/predict": post("Predict on a pinned version", predict_body,
                                                                        predict_resp, version_path + proba_query),
            f"/v1/models/{endpoint}/feedback": post("A/B test outcomes (while traffic.kind is 'ab')", feedback_body,
                                                    {"type": "object"}),
            "/v1/models": get("Served models"),
            f"/v1/models/{endpoint}": get("The served model: versions, breaker state, inputs"),
            "/invocations": post("MLflow scoring protocol (dataframe_split, dataframe_records, instances, inputs; "
                                 "text/csv with a header row)", mlflow_body,
                                 {"type": "object", "properties": {"predictions": {"type": "array"}, "classes": {"type": "array"}}},
                                 proba_query),
            f"/v2/models/{endpoint}/infer": post("Open Inference Protocol (V2) infer", v2_body, {"type": "object"}),
            f"/v2/models/{endpoint}/versions/{{version}}/infer": post("V2 infer on a pinned version", v2_body,
                                                                      {"type": "object"}, version_path),
            f"/v2/models/{endpoint}": get("V2 model metadata"),
            f"/v2/models/{endpoint}/versions/{{version}}": get("V2 model metadata of a version", version_path),
            f"/v2/models/{endpoint}/ready": get("V2 model readiness"),
            f"/v2/models/{endpoint}/versions/{{version}}/ready": get("V2 readiness of a version", version_path),
            "/v2": get("V2 server metadata"),
            "/v2/health/live": get("V2 liveness"),
            "/v2/health/ready": get("V2 readiness"),
            "/health/live": get("Liveness"),
            "/ping": get("Liveness (MLflow/SageMaker name)"),
            "/health": get("Readiness (alias of /health/ready)"),
            "/openapi.json": get("This document"),
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
