"""Deploy: Kubernetes manifests (kustomize) and Helm values of a deployment spec.

    from modelyard.deploy import K8sOptions, write_kustomize
    from modelyard.serving import load_spec

    opts = K8sOptions(name="churn", image="reg/churn:7")
    write_kustomize(load_spec("serve.yaml"), opts, "k8s/", "serve.yaml")

or ``yard deploy k8s churn-clf@production --image reg/churn:7 --out k8s/``. Names load lazily:
importing this package stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IN_FLIGHT_METRIC",
    "K8sOptions",
    "dump_yaml",
    "manifests",
    "prestop_seconds",
    "render",
    "write_kustomize",
]

_LAZY = {
    "IN_FLIGHT_METRIC": "modelyard.deploy._k8s",
    "K8sOptions": "modelyard.deploy._k8s",
    "manifests": "modelyard.deploy._k8s",
    "prestop_seconds": "modelyard.deploy._k8s",
    "dump_yaml": "modelyard.deploy._kustomize",
    "render": "modelyard.deploy._kustomize",
    "write_kustomize": "modelyard.deploy._kustomize",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.deploy' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
