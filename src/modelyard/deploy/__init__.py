"""Deploying models beyond one machine: Kubernetes manifests (kustomize) of a deployment spec.

    from modelyard.deploy import K8sOptions, write_kustomize
    from modelyard.serving import load_spec

    write_kustomize(load_spec("serve.yaml"), K8sOptions(name="churn", image="reg/churn:7"), "k8s/", "serve.yaml")

or ``yard deploy k8s churn-clf@production --image reg/churn:7 --out k8s/``.
"""

from modelyard.deploy._k8s import IN_FLIGHT_METRIC, K8sOptions, manifests, prestop_seconds
from modelyard.deploy._kustomize import dump_yaml, render, write_kustomize

__all__ = ["IN_FLIGHT_METRIC", "K8sOptions", "dump_yaml", "manifests", "prestop_seconds", "render", "write_kustomize"]
