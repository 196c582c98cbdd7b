"""The OpenAPI 3.1 document of a model server, built from what the server itself runs on.

* the paths come from the route table the server dispatches from
  (:data:`modelyard.serving._routes.ROUTES`, or the rows a server was given): every row is one
  operation, with its path parameters, its query parameters, every status it can answer and the
  schema of each answer;
* the request schemas are as strict as the decoders and input checks of the served model: the
  signature's columns are required, typed as the server casts them (see :func:`column_schema`),
  with their ranges and nullability; bodies need at least one row and at most ``limits.max_rows``;
* the admin spec schemas are the pydantic models the server validates a spec with
  (:class:`~modelyard.serving._spec.DeploymentSpec`).

What JSON Schema cannot say (the rows of ``columns``+``data`` have as many values as there are
columns; the columns of an ``inputs`` object have the same length; a V2 tensor holds
``prod(shape)`` values of its ``datatype``) is in the descriptions and answered with a 400.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelyard.serving._openapi_responses import V2_DATATYPES, response_schemas, spec_schemas

if TYPE_CHECKING:
    from modelyard.serving._routes import Route

__all__ = ["column_schema", "openapi_document", "request_schemas", "response_schemas"]

JSON = dict[str, Any]

_INT64 = {"minimum": -(2**63), "maximum": 2**64 - 1}  # what the input check lets through


def column_schema(spec: Any) -> JSON:
    """The JSON Schema of one value of a signature column (a :class:`ColSpec`), as the server
    reads it: a float column takes numbers (and true/false as 1/0), an int column integers
    (1.0 counts; true/false as 1/0), a bool column true/false or 0/1, a datetime column a date
    string; ``min``/``max`` bound the numbers; a nullable column also takes null."""
    d = str(getattr(spec, "dtype", "")).lower()
    s: JSON
    if d.startswith("float"):
        s = {"type": ["number", "boolean"]}
    elif d.startswith("int"):
        s = {"type": ["integer", "boolean"], **_INT64}
    elif d == "bool":
        s = {"anyOf": [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]}
    elif d == "datetime":
        s = {"type": "string", "format": "date-time", "description": "ISO 8601 (other formats parse too)"}
    else:
        s = {"type": "string"}
    if getattr(spec, "min", None) is not None and "type" in s:
        s["minimum"] = max(spec.min, s.get("minimum", spec.min))
    if getattr(spec, "max", None) is not None and "type" in s:
        s["maximum"] = min(spec.max, s.get("maximum", spec.max))
    if getattr(spec, "nullable", False):
        if "anyOf" in s:
            s["anyOf"].append({"type": "null"})
        else:
            s["type"] = [*(s["type"] if isinstance(s["type"], list) else [s["type"]]), "null"]
    return s


_ANY_SCALAR: JSON = {"type": ["number", "string", "boolean", "null"]}


def _row_schema(signature: Any) -> tuple[JSON, list[str], list[JSON]]:
    """``(Row schema, column names, column value schemas)`` of a frame signature (none: any scalars)."""
    cols = list(getattr(signature, "inputs", None) or []) if signature is not None else []
    if getattr(signature, "kind", "frame") != "frame":
        cols = []
    if not cols:
        return {"type": "object", "minProperties": 1, "additionalProperties": _ANY_SCALAR}, [], []
    names = [str(c.name) for c in cols]
    values = [column_schema(c) for c in cols]
    row = {
        "type": "object",
        "description": "One row: a value for each of the model's columns. Other keys are ignored.",
        "properties": dict(zip(names, values, strict=True)),
        "required": names,
    }
    return row, names, values


def request_schemas(signature: Any, max_rows: int) -> dict[str, JSON]:
    """The request body schemas of the predict routes for a model with ``signature``."""
    row, names, values = _row_schema(signature)
    k = len(names)
    rows = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/Row"},
        "minItems": 1,
        "maxItems": max_rows,
    }
    params = {
        "type": "object",
        "properties": {
            "proba": {
                "type": "boolean",
                "description": "true: each prediction is the row's class probabilities (in the order "
                "of 'classes' in the answer) instead of the predicted value. Same as ?proba=true.",
            }
        },
    }
    version = {
        "type": ["integer", "null"],
        "description": "Answer with this loaded version (overrides the path's; null: not pinned).",
    }
    positional: JSON = (
        {"type": "array", "prefixItems": values, "items": False, "minItems": k, "maxItems": k}
        if names
        else {"type": "array", "items": _ANY_SCALAR, "minItems": 1}
    )
    named_cols: JSON = {
        "type": "array",
        "items": {"type": "string"},
        "uniqueItems": True,
        "description": "Column names; each row of 'data' has one value per name, in this order.",
    }
    if names:
        named_cols["allOf"] = [{"contains": {"const": n}} for n in names]
    column_dict: JSON = (
        {
            "type": "object",
            "properties": {
                n: {"anyOf": [v, {"type": "array", "items": v, "minItems": 1, "maxItems": max_rows}]}
                for n, v in zip(names, values, strict=True)
            },
            "required": names,
            "description": "Column name → its values (every column as long as the others).",
        }
        if names
        else {"type": "object", "minProperties": 1}
    )
    rows_of_values: JSON = {"type": "array", "items": {"type": "array"}, "minItems": 1, "maxItems": max_rows}
    native = {
        "description": "One of: 'records' (a list of rows), 'columns' + 'data' (rows as lists; "
        "without 'columns' each row lists the model's columns in signature order), or 'inputs' "
        "(column → values).",
        "anyOf": [
            {
                "type": "object",
                "properties": {"records": rows, "version": version, "params": params},
                "required": ["records"],
            },
            {
                "type": "object",
                "properties": {
                    "columns": named_cols,
                    "data": rows_of_values,
                    "version": version,
                    "params": params,
                },
                "required": ["columns", "data"],
            },
            {
                "type": "object",
                "properties": {
                    "data": {"type": "array", "items": positional, "minItems": 1, "maxItems": max_rows},
                    "version": version,
                    "params": params,
                },
                "required": ["data"],
                "not": {"required": ["columns"]},
            },
            {
                "type": "object",
                "properties": {"inputs": column_dict, "version": version, "params": params},
                "required": ["inputs"],
                "not": {"anyOf": [{"required": ["records"]}, {"required": ["data"]}]},
            },
        ],
    }
    split = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "columns": named_cols,
                    "data": rows_of_values,
                    "index": {"type": "array"},
                },
                "required": ["columns", "data"],
            },
            {
                "type": "object",
                "properties": {
                    "data": {"type": "array", "items": positional, "minItems": 1, "maxItems": max_rows},
                    "index": {"type": "array"},
                },
                "required": ["data"],
                "not": {"required": ["columns"]},
            },
        ]
    }
    instance = {"anyOf": [{"$ref": "#/components/schemas/Row"}, positional]}
    if k == 1:  # a one-column model also takes bare values
        instance["anyOf"].append(values[0])
    instances = {
        "anyOf": [
            {"type": "array", "items": instance, "minItems": 1, "maxItems": max_rows},
            column_dict,
        ]
    }
    mlflow = {
        "description": "MLflow's scoring protocol: exactly one of the four keys.",
        "oneOf": [
            {"type": "object", "properties": {"dataframe_split": split, "params": params}, "required": [key]}
            if key == "dataframe_split"
            else {
                "type": "object",
                "properties": {key: rows if key == "dataframe_records" else instances, "params": params},
                "required": [key],
            }
            for key in ("dataframe_split", "dataframe_records", "instances", "inputs")
        ],
    }
    tensor = {
        "type": "object",
        "required": ["name", "shape", "datatype", "data"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "shape": {
                "type": "array",
                "description": "[rows, ...]: at least one row.",
                "prefixItems": [{"type": "integer", "minimum": 1, "maximum": 2**31 - 1}],
                "items": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
                "minItems": 1,
                "maxItems": 8,
            },
            "datatype": {"type": "string", "enum": list(V2_DATATYPES)},
            "data": {
                "type": "array",
                "description": "prod(shape) values of the datatype, flat or nested row-major.",
            },
            "parameters": {"type": "object"},
        },
        "description": (
            f"One tensor per column (named {names}, shape [rows] or [rows, 1]) or one [rows, {k}] "
            "tensor holding the columns in signature order."
            if names
            else "One tensor per column, shape [rows] or [rows, 1]."
        ),
    }
    v2 = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": tensor, "minItems": 1},
            "outputs": {
                "type": "array",
                "description": "[{'name': 'probabilities'}] answers class probabilities "
                "(shape [rows, classes]; the tensor's parameters.classes names the columns).",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": ["predict", "probabilities"]},
                        "parameters": {"type": "object"},
                    },
                },
            },
        },
        "required": ["inputs"],
    }
    feedback_item = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "The A/B key header's value of the request."},
            "request_id": {"type": "string", "description": "Or the request id of the answer."},
            "outcome": {"type": "string", "description": "Kept to its first 64 characters."},
            "value": {"type": ["number", "boolean"], "description": "Finite; 0/1 for conversions."},
        },
        "anyOf": [{"required": ["key"]}, {"required": ["request_id"]}],
    }
    feedback = {
        "anyOf": [
            feedback_item,
            {
                "type": "object",
                "properties": {"feedback": {"type": "array", "items": feedback_item, "minItems": 1}},
                "required": ["feedback"],
            },
        ]
    }
    return {
        "Row": row,
        "PredictRequest": native,
        "MLflowRequest": mlflow,
        "V2InferRequest": v2,
        "V2BinaryHeader": _binary_header(v2),
        "Feedback": feedback,
    }


def _binary_header(v2: JSON) -> JSON:
    """The JSON header of a V2 request with binary tensors: a V2 request whose inputs carry
    ``parameters.binary_data_size`` (their bytes follow the header) instead of ``data``."""
    tensor = dict(v2["properties"]["inputs"]["items"])
    tensor["required"] = ["name", "shape", "datatype"]
    binary = {
        "required": ["parameters"],
        "properties": {
            "parameters": {
                "type": "object",
                "required": ["binary_data_size"],
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            }
        },
        "not": {"required": ["data"]},
    }
    has_size = {"required": ["parameters"], "properties": {"parameters": {"required": ["binary_data_size"]}}}
    tensor["oneOf"] = [{"required": ["data"], "not": has_size}, binary]  # one of the two, never both
    parameters = {
        "type": "object",
        "properties": {"binary_data_output": {"type": "boolean"}},
        "description": "binary_data_output: true answers every output as binary tensor data.",
    }
    outputs = dict(v2["properties"]["outputs"])
    outputs["items"] = {
        **outputs["items"],
        "properties": {
            **outputs["items"]["properties"],
            "parameters": {"type": "object", "properties": {"binary_data": {"type": "boolean"}}},
        },
    }
    properties = {
        **v2["properties"],
        "inputs": {**v2["properties"]["inputs"], "items": tensor},
        "parameters": parameters,
        "outputs": outputs,
    }
    return {
        **v2,
        "properties": properties,
        "description": "The JSON header of an application/octet-stream V2 request (its length in "
        "bytes in the Inference-Header-Content-Length header), followed by the binary inputs' bytes "
        "in the order of the inputs: little-endian, row-major; BOOL one byte per element; BYTES a "
        "4-byte little-endian length before each element. parameters.binary_data_output, or an "
        "output's parameters.binary_data, asks for binary outputs.",
    }


_PARAMETERS: dict[str, JSON] = {
    "proba": {
        "name": "proba",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no"]},
        "description": "true: answer class probabilities (models with predict_proba).",
    },
    "version": {
        "name": "version",
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "description": "A model version loaded by the spec (404 for any other).",
    },
    "binary_header": {
        "name": "Inference-Header-Content-Length",
        "in": "header",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
        "description": "With an application/octet-stream body (the binary tensor data extension): "
        "the length in bytes of the JSON header (schema V2BinaryHeader) that starts the body.",
    },
}

#: The bodies besides JSON: a string schema each, and what it holds.
_MEDIA: dict[str, JSON] = {
    "text/csv": {"type": "string", "description": "A header row naming the columns, then one row per line."},
    "application/yaml": {"type": "string", "description": "The spec as YAML (schema DeploymentSpecInput)."},
    "application/octet-stream": {
        "type": "string",
        "format": "binary",
        "contentMediaType": "application/octet-stream",
        "description": "The binary tensor data extension: a JSON header (schema V2BinaryHeader; its "
        "length in the Inference-Header-Content-Length header), then the raw tensor bytes.",
    },
}

_PREDICT_HEADERS: JSON = {
    "x-request-id": {"schema": {"type": "string"}, "description": "The request id (sent or made)."},
    "x-model-version": {"schema": {"type": "string"}, "description": "The version that answered."},
    "x-fallback": {"schema": {"type": "string"}, "description": "Why the fallback answered, when it did."},
}

_BINARY_ANSWER: JSON = {
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
    "description": "With an application/octet-stream answer: the length of its JSON header.",
}


def openapi_document(
    endpoint: str,
    signature: Any,
    version: str,
    routes: Sequence[Route],
    *,
    max_rows: int = 100_000,
) -> dict[str, Any]:
    """The document of ``routes`` on a server serving ``endpoint`` (``{name}`` in the paths)
    for a model with ``signature``; bodies carry at most ``max_rows`` rows."""
    schemas: dict[str, JSON] = {
        **response_schemas(),
        **request_schemas(signature, max_rows),
        **spec_schemas(),
    }

    def ref(name: str) -> JSON:
        return {"$ref": f"#/components/schemas/{name}"}

    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        ok: JSON = {"description": r.ok}
        if r.response is not None:
            ok["content"] = {
                r.media: {"schema": ref(r.response) if r.media == "application/json" else {"type": "string"}}
            }
        for media in r.response_media:  # the V2 binary extension: binary outputs asked for
            ok["content"][media] = {
                "schema": {
                    **_MEDIA[media],
                    "description": "Binary outputs asked for: the JSON answer (schema V2InferResponse, "
                    "binary outputs with parameters.binary_data_size instead of data; its length in the "
                    "Inference-Header-Content-Length header), then the outputs' raw bytes in order.",
                }
            }
        if r.api is not None:
            ok["headers"] = _PREDICT_HEADERS
            if r.response_media:
                ok["headers"] = {**_PREDICT_HEADERS, "inference-header-content-length": _BINARY_ANSWER}
        responses: JSON = {"200": ok}
        for code, text in r.errors:
            schema = dict(r.status_schemas).get(code, r.error_schema)
            answer: JSON = {"description": text, "content": {"application/json": {"schema": ref(schema)}}}
            if code == 401:
                answer["headers"] = {"www-authenticate": {"schema": {"type": "string"}}}
            if code == 429:
                answer["headers"] = {"retry-after": {"schema": {"type": "string"}}}
            responses[str(code)] = answer
        op: JSON = {
            "operationId": r.name,
            "summary": r.summary,
            "tags": [r.tag],
            "parameters": [_PARAMETERS[p] for p in r.params],
            "responses": responses,
        }
        if r.request is not None:
            content = {"application/json": {"schema": ref(r.request)}}
            for media in r.request_media:
                content[media] = {"schema": _MEDIA[media]}
            op["requestBody"] = {"required": True, "content": content}
        if r.auth:
            op["security"] = [{"adminToken": []}]
        paths.setdefault(r.path.replace("{name}", endpoint), {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"modelyard model server: {endpoint}",
            "version": version,
            "description": "Every route of this server. Any route answers 405 (with Allow) to another "
            "method, and 503 when the worker is over limits.max_connections.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
        },
    }
