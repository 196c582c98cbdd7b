"""The answers' schemas of the model server's OpenAPI document (the same for every model), and
the deployment spec's schemas from its pydantic model. The request schemas, per model, and the
document itself are in :mod:`modelyard.serving._openapi`."""

from __future__ import annotations

from typing import Any

__all__ = ["V2_DATATYPES", "response_schemas", "spec_schemas"]

JSON = dict[str, Any]

V2_DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)


def _nullable(t: str) -> JSON:
    return {"type": [t, "null"]}


def response_schemas() -> dict[str, JSON]:
    """The schemas of every answer (the same for every model)."""
    ref = "#/components/schemas/"
    breaker = {
        "type": "object",
        "properties": {
            "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
            "window_requests": {"type": "integer"},
            "window_failures": {"type": "integer"},
            "transitions": {"type": "integer"},
        },
        "required": ["state"],
    }
    model = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "integer"},
            "flavor": _nullable("string"),
            "role": {"type": "string"},
            "warmed": {"type": "boolean"},
            "warm_error": _nullable("string"),
            "fast_path": {"type": "boolean"},
            "breaker": breaker,
            "inputs": {"type": ["array", "null"], "items": {"type": "string"}},
        },
        "required": ["name", "version", "warmed", "breaker"],
    }
    last_swap = {
        "type": "object",
        "description": "The last spec swap's outcome ({} before the first).",
        "properties": {
            "ok": {"type": "boolean"},
            "error": _nullable("string"),
            "at_ms": {"type": "integer"},
            "seconds": {"type": "number"},
            "models": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    deployment_props = {
        "endpoint": {"type": "string"},
        "models": {"type": "object", "additionalProperties": {"$ref": ref + "ModelInfo"}},
        "fallback": {
            "anyOf": [
                {"$ref": ref + "ModelInfo"},
                {"type": "object", "properties": {"constant": {}}, "required": ["constant"]},
                {"type": "null"},
            ]
        },
        "traffic": {"type": "object", "properties": {"kind": {"type": "string"}}, "required": ["kind"]},
    }
    deployment = {"type": "object", "properties": deployment_props, "required": list(deployment_props)}
    readiness = {
        "type": "object",
        "description": "200 when every model is loaded and warmed; 503 (same body) otherwise.",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "warming", "not_ready"]},
            "reason": {"type": "string"},
            **deployment_props,
            "last_swap": {"$ref": ref + "LastSwap"},
        },
        "required": ["status", "last_swap"],
    }
    worker = {
        "type": "object",
        "properties": {
            "pid": {"type": "integer"},
            "digest": _nullable("string"),
            "ok": {"type": "boolean"},
            "error": _nullable("string"),
            "at_ms": {"type": "integer"},
        },
        "required": ["pid", "digest", "ok"],
    }
    admin = {
        "type": "object",
        "properties": {
            "spec": {"anyOf": [{"$ref": ref + "DeploymentSpec"}, {"type": "null"}]},
            "last_swap": {"$ref": ref + "LastSwap"},
            "digest": {
                "type": ["string", "null"],
                "description": "sha256 of the spec file every worker follows (several workers only).",
            },
            "workers": {
                "type": "array",
                "items": {"$ref": ref + "WorkerState"},
                "description": "Each worker's applied spec (several workers only).",
            },
        },
        "required": ["spec", "last_swap"],
    }
    swapped = {
        "type": "object",
        "description": "Sent once every worker serves the new spec.",
        "properties": {
            "status": {"type": "string", "const": "swapped"},
            "last_swap": {"$ref": ref + "LastSwap"},
            "digest": _nullable("string"),
            "workers": {"type": "array", "items": {"$ref": ref + "WorkerState"}},
        },
        "required": ["status", "last_swap"],
    }
    error_fields: JSON = {
        "error": {"type": "string"},
        "code": {"type": "string"},
        "problems": {"type": "array", "items": {"type": "string"}},
        "request_id": {"type": "string"},
    }
    error = {"type": "object", "properties": error_fields, "required": ["error", "code"]}
    workers = {"workers": {"type": "array", "items": {"$ref": ref + "WorkerState"}}}
    swap_error = {**error, "properties": {**error_fields, **workers}}
    v2_tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(V2_DATATYPES)},
            "data": {"type": "array"},
            "parameters": {"type": "object"},
        },
        "required": ["name", "shape", "datatype"],
    }
    v2_meta_tensor = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "datatype": {"type": "string", "enum": list(V2_DATATYPES)},
            "shape": {"type": "array", "items": {"type": "integer"}},
        },
        "required": ["name", "datatype", "shape"],
    }
    return {
        "Error": error,
        "SwapError": swap_error,
        "PredictResponse": {
            "type": "object",
            "properties": {
                "model": {"type": "string"},
                "version": {
                    "type": ["integer", "null"],
                    "description": "null when a constant fallback answered.",
                },
                "request_id": {"type": "string"},
                "predictions": {"type": "array"},
                "fallback": {"type": "boolean"},
                "fallback_reason": _nullable("string"),
                "classes": {
                    "type": "array",
                    "description": "With proba: the class of each probability column.",
                },
            },
            "required": ["model", "version", "request_id", "predictions", "fallback"],
        },
        "MLflowResponse": {
            "type": "object",
            "properties": {"predictions": {"type": "array"}, "classes": {"type": "array"}},
            "required": ["predictions"],
        },
        "V2InferResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {
                    "type": "string",
                    "description": "'constant' when a constant fallback answered.",
                },
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "outputs": {"type": "array", "items": v2_tensor},
            },
            "required": ["model_name", "outputs"],
        },
        "V2Error": {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]},
        "V2ServerMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "extensions": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name", "version", "extensions"],
        },
        "V2ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"type": "string"},
                "inputs": {"type": "array", "items": v2_meta_tensor},
                "outputs": {"type": "array", "items": v2_meta_tensor},
            },
            "required": ["name", "platform", "inputs", "outputs"],
        },
        "V2NotReady": {"anyOf": [{"$ref": ref + "V2ModelReady"}, {"$ref": ref + "V2Error"}]},
        "Metrics": {"type": "string", "description": "Prometheus text exposition format"},
        "V2Live": {"type": "object", "properties": {"live": {"type": "boolean"}}, "required": ["live"]},
        "V2Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}, "required": ["ready"]},
        "V2ModelReady": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
            "required": ["name", "ready"],
        },
        "FeedbackResponse": {
            "type": "object",
            "properties": {
                "accepted": {"type": "integer"},
                "unmatched": {"type": "integer"},
                "arms": {"type": "object", "additionalProperties": {"type": "integer"}},
            },
            "required": ["accepted", "unmatched", "arms"],
        },
        "Live": {
            "type": "object",
            "properties": {"status": {"type": "string", "const": "alive"}},
            "required": ["status"],
        },
        "ModelInfo": model,
        "LastSwap": last_swap,
        "Deployment": deployment,
        "Models": {
            "type": "object",
            "properties": {"models": {"type": "array", "items": {"$ref": ref + "Deployment"}}},
            "required": ["models"],
        },
        "Readiness": readiness,
        "WorkerState": worker,
        "AdminSpec": admin,
        "Swapped": swapped,
        "OpenAPI": {"type": "object", "required": ["openapi", "paths"]},
    }


def spec_schemas() -> dict[str, JSON]:
    """The deployment spec's schemas from its pydantic model: ``DeploymentSpecInput`` (what a
    swap accepts) and ``DeploymentSpec`` (what ``GET /admin/spec`` answers), their parts hoisted
    into components/schemas."""
    from modelyard.serving._spec import DeploymentSpec

    out: dict[str, JSON] = {}
    for mode, top, suffix in (
        ("validation", "DeploymentSpecInput", "Input"),
        ("serialization", "DeploymentSpec", ""),
    ):
        tmpl = "#/components/schemas/{model}" + suffix
        schema = DeploymentSpec.model_json_schema(mode=mode, ref_template=tmpl)  # type: ignore[arg-type]
        for name, sub in schema.pop("$defs", {}).items():
            out[name + suffix] = sub
        out[top] = schema
    # a slot may be a bare reference ("clf@production"), as the spec's own validator accepts
    models = out["DeploymentSpecInput"]["properties"]["models"]
    models["additionalProperties"] = {
        "anyOf": [models["additionalProperties"], {"type": "string", "description": "A model reference"}]
    }
    return out
