"""``values.schema.json`` of the ``model-deployment`` Helm chart, generated from the spec's model.

The chart's ``spec`` value *is* a deployment spec, so its schema is the JSON schema pydantic makes
of :class:`~modelyard.serving.DeploymentSpec` (one source of truth: a field added to the spec
appears here when the file is regenerated, and a test fails until it is). The rest of the values
(image, sizing, autoscaling...) are described by hand below. Regenerate with::

    python -m modelyard.deploy._chart_schema charts/model-deployment/values.schema.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["model_deployment_schema", "spec_schema"]

_QUANTITY = {"type": ["string", "number"], "pattern": r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"}
_LABEL = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", "maxLength": 253}


def spec_schema() -> dict[str, Any]:
    """The JSON schema of a deployment spec as the chart accepts it (slots may be plain strings)."""
    from modelyard.serving import DeploymentSpec

    schema = DeploymentSpec.model_json_schema()
    # a slot is a registry reference or {ref, warmup}: the model's "before" validator takes both
    models = schema["properties"]["models"]
    models["additionalProperties"] = {
        "anyOf": [{"type": "string", "minLength": 1}, models["additionalProperties"]]
    }
    models["minProperties"] = 1
    return schema


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    return out


def _resources() -> dict[str, Any]:
    pair = _obj({"cpu": _QUANTITY, "memory": _QUANTITY})
    return _obj({"requests": pair, "limits": pair})


def model_deployment_schema() -> dict[str, Any]:
    """The whole ``values.schema.json`` (draft 2020-12; ``$defs`` of the spec at the root)."""
    spec = spec_schema()
    defs = spec.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "modelyard model-deployment values",
        "type": "object",
        "additionalProperties": False,
        "required": ["image", "spec"],
        "properties": {
            "global": {"type": "object"},
            "image": _obj(
                {
                    "repository": {"type": "string"},
                    "tag": {"type": ["string", "integer"]},
                    "pullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
                },
                ["repository", "tag"],
            ),
            "imagePullSecrets": {"type": "array", "items": _NAME},
            "spec": spec,
            "store": _obj({"existingSecret": {"type": "string"}, "key": {"type": "string", "minLength": 1}}),
            "replicas": {"type": "integer", "minimum": 1},
            "resources": _resources(),
            "autoscaling": _obj(
                {
                    "enabled": {"type": "boolean"},
                    "maxReplicas": {"type": "integer", "minimum": 1},
                    "targetCPUUtilizationPercentage": {"type": "integer", "minimum": 1, "maximum": 100},
                    "targetInFlightRequests": {"type": ["integer", "null"], "minimum": 1},
                }
            ),
            "podDisruptionBudget": _obj(
                {"enabled": {"type": "boolean"}, "maxUnavailable": {"type": ["integer", "string"]}}
            ),
            "networkPolicy": _obj({"enabled": {"type": "boolean"}}),
            "serviceMonitor": _obj(
                {
                    "enabled": {"type": "boolean"},
                    "interval": {"type": "string", "pattern": r"^[0-9]+(ms|s|m|h)$"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                }
            ),
            "service": _obj(
                {
                    "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                    "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                }
            ),
            "rolloutController": _obj(
                {
                    "serviceAccount": {"anyOf": [{"const": ""}, _LABEL]},
                    "namespace": {"anyOf": [{"const": ""}, _LABEL]},
                }
            ),
            "runAsUser": {"type": "integer", "minimum": 1},
            "podAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
            "nodeSelector": {"type": "object", "additionalProperties": {"type": "string"}},
            "tolerations": {"type": "array", "items": {"type": "object"}},
            "affinity": {"type": "object"},
        },
        "$defs": defs,
    }


def main(argv: list[str]) -> int:
    text = json.dumps(model_deployment_schema(), indent=2, sort_keys=False) + "\n"
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
