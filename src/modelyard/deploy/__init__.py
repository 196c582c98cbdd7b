"""Deploy: container images of the model server (``yard build``) and what runs inside them.

    import modelyard.deploy as deploy

    result = deploy.build_image("churn-clf@production", tag="registry.example.com/churn:7")
    result.builder, result.size_bytes          # "podman", 431_000_000
    deploy.build_image("churn-clf/7", dockerfile_only="image/")   # the Dockerfile and context only

The image runs ``python -m modelyard.deploy serve`` as user 10001 on port 8080 (``YARD_PORT``),
with every write under ``/tmp`` (``YARD_URI=/tmp/yard`` holds the prediction log unless it names a
team store), the deployment spec at ``/opt/yard/model/serve.yaml`` (``--spec PATH`` or
``YARD_IMAGE_SPEC`` for a mounted one, watched for changes), and ``YARD_WORKERS`` (a number or
``auto``) worker processes. Importing this package stays light: a container's health check and
start import it.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BuildResult",
    "ImageBuildError",
    "ImageLoader",
    "build_image",
    "check_tag",
    "find_builder",
    "prepare_context",
    "render_dockerfile",
    "verify_image",
]

_LAZY = {
    "BuildResult": "modelyard.deploy._build",
    "ImageBuildError": "modelyard.deploy._build",
    "build_image": "modelyard.deploy._build",
    "check_tag": "modelyard.deploy._build",
    "find_builder": "modelyard.deploy._build",
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
