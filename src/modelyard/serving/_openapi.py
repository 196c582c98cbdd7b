"""The OpenAPI document of a model server: the paths come from the route table
(:data:`modelyard.serving._routes.ROUTES`), the schemas carry the served model's input columns."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.serving._routes import Route

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


def openapi_document(endpoint: str, signature: Any, version: str, routes: Sequence[Route]) -> dict[str, Any]:
    """The document of ``routes`` on a server serving ``endpoint`` (``{name}`` in the paths)."""
    props: dict[str, Any] = {}
    for s in getattr(signature, "inputs", None) or []:
        t = _json_type(str(getattr(s, "dtype", "")))
        if getattr(s, "min", None) is not None:
            t["minimum"] = s.min
        if getattr(s, "max", None) is not None:
            t["maximum"] = s.max
        props[s.name] = t
    row = (
        {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}
        if props
        else {"type": "object"}
    )
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
    params = {
        "type": "object",
        "properties": {
            "proba": {
                "type": "boolean",
                "description": "true: each prediction is the row's class probabilities (in the order "
                "of 'classes' in the answer) instead of the predicted value. Same as the query ?proba=true.",
            }
        },
    }
    predict_body = {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "records": {"type": "array", "items": row},
                    "version": {"type": "integer"},
                    "params": params,
                },
                "required": ["records"],
            },
            {
                "type": "object",
                "properties": {
                    "columns": {"type": "array", "items": {"type": "string"}},
                    "data": {"type": "array", "items": {"type": "array"}},
                    "version": {"type": "integer"},
                    "params": params,
                },
                "required": ["data"],
            },
        ]
    }
    predict_resp = {
        "type": "object",
        "properties": {
            "model": {"type": "string"},
            "version": {"type": "integer"},
            "request_id": {"type": "string"},
            "predictions": {"type": "array"},
            "fallback": {"type": "boolean"},
            "fallback_reason": {"type": "string"},
            "classes": {"type": "array", "description": "With proba: the class of each probability column."},
        },
    }
    v2_body = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name", "shape", "datatype", "data"],
                    "properties": {
                        "name": {"type": "string"},
                        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                        "datatype": {
                            "type": "string",
                            "enum": ["BOOL", "INT64", "INT32", "FP64", "FP32", "BYTES"],
                        },
                        "data": {"type": "array"},
                    },
                },
            },
            "outputs": {
                "type": "array",
                "description": "[{'name': 'probabilities'}] answers class probabilities "
                "(shape [rows, classes]; the tensor's parameters.classes names the columns).",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "enum": ["predict", "probabilities"]}},
                },
            },
        },
        "required": ["inputs"],
    }
    mlflow_body = {
        "type": "object",
        "properties": {
            "dataframe_split": {"type": "object"},
            "dataframe_records": {"type": "array", "items": row},
            "instances": {"type": "array"},
            "inputs": {"type": "object"},
            "params": params,
        },
    }
    feedback_body = {
        "type": "object",
        "properties": {
            "key": {"type": "string"},
            "request_id": {"type": "string"},
            "outcome": {"type": "string"},
            "value": {"type": "number"},
            "feedback": {"type": "array", "items": {"type": "object"}},
        },
    }
    schemas: dict[str, Any] = {
        "Error": error,
        "Row": row,
        "PredictRequest": predict_body,
        "PredictResponse": predict_resp,
        "MLflowRequest": mlflow_body,
        "MLflowResponse": {
            "type": "object",
            "properties": {"predictions": {"type": "array"}, "classes": {"type": "array"}},
        },
        "V2InferRequest": v2_body,
        "V2InferResponse": {"type": "object"},
        "Feedback": feedback_body,
        "FeedbackResponse": {
            "type": "object",
            "properties": {
                "accepted": {"type": "integer"},
                "unmatched": {"type": "integer"},
                "arms": {"type": "object"},
            },
        },
    }
    parameters = {
        "proba": {
            "name": "proba",
            "in": "query",
            "required": False,
            "schema": {"type": "boolean"},
            "description": "true: answer class probabilities (models with predict_proba).",
        },
        "version": {"name": "version", "in": "path", "required": True, "schema": {"type": "integer"}},
    }

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{name}"}

    error_content = {"application/json": {"schema": ref("Error")}}
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        ok: dict[str, Any] = {"description": r.ok}
        if r.response is not None:
            ok["content"] = {"application/json": {"schema": ref(r.response)}}
        op: dict[str, Any] = {
            "operationId": r.name,
            "summary": r.summary,
            "parameters": [parameters[p] for p in r.params],
            "responses": {
                "200": ok,
                **{str(code): {"description": text, "content": error_content} for code, text in r.errors},
            },
        }
        if r.request is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(r.request)}},
            }
        if r.auth:
            op["security"] = [{"adminToken": []}]
        paths.setdefault(r.path.replace("{name}", endpoint), {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": f"modelyard model server: {endpoint}", "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
