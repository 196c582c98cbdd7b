"""Deploy: container images of the model server (``yard build``), Kubernetes manifests (kustomize)
and Helm values of a deployment spec.

    import modelyard.deploy as deploy

    deploy.build_image("churn-clf@production", tag="registry.example.com/churn:7")   # docker/podman/buildah
    deploy.build_image("churn-clf/7", dockerfile_only="image/")    # the Dockerfile and build context only

or ``yard build churn-clf@production -t reg/churn:7`` and ``yard deploy k8s churn-clf@production
--image reg/churn:7 --out k8s/``. An image runs ``python -m modelyard.deploy serve`` as user 10001
on port 8080 (``YARD_PORT``), writes only under ``/tmp`` (``YARD_URI=/tmp/yard`` holds the
prediction log unless it names a team store), serves the spec at ``/opt/yard/model/serve.yaml``
(``--spec PATH`` or ``YARD_IMAGE_SPEC`` for a mounted one, watched for changes) with
``YARD_WORKERS`` workers (a number or ``auto``). Names load lazily: importing this package stays
light (a container's start and health check import it).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "IN_FLIGHT_METRIC",
    "BuildResult",
    "ImageBuildError",
    "ImageLoader",
    "K8sOptions",
    "build_image",
    "check_tag",
    "dump_yaml",
    "find_builder",
    "manifests",
    "prepare_context",
    "prestop_seconds",
    "render",
    "render_dockerfile",
    "verify_image",
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
    "BuildResult": "modelyard.deploy._build",
    "ImageBuildError": "modelyard.deploy._builder",
    "build_image": "modelyard.deploy._build",
    "check_tag": "modelyard.deploy._build",
    "find_builder": "modelyard.deploy._builder",
    "prepare_context": "modelyard.deploy._build",
    "render_dockerfile": "modelyard.deploy._dockerfile",
    "ImageLoader": "modelyard.deploy._image",
    "verify_image": "modelyard.deploy._image",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard.deploy' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
