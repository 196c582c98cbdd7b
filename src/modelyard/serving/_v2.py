"""The Open Inference Protocol (V2, KServe/Triton) routes: server and model metadata,
readiness, and the rendering of an infer answer (``POST .../infer`` goes through the
server's predict path with ``api="v2"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.serving._codec import HTTPProblem, v2_outputs
from modelyard.serving._http import JSONResponse, respond

if TYPE_CHECKING:
    from modelyard.serving._app import ModelServer
    from modelyard.serving._runtime import Answer, Deployment, ModelRuntime

__all__ = ["render_infer", "v2_live", "v2_model", "v2_model_ready", "v2_ready", "v2_server", "v2_type"]


def v2_type(dtype: str) -> str:
    """The V2 datatype of a signature dtype."""
    d = dtype.lower()
    if "bool" in d:
        return "BOOL"
    if "int" in d:
        return "INT64"
    if "float" in d or "double" in d:
        return "FP64"
    return "BYTES"


async def v2_server(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /v2``: server metadata."""
    from modelyard._version import __version__

    return respond(200, {"name": "modelyard", "version": __version__, "extensions": []})


async def v2_live(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /v2/health/live``."""
    return respond(200, {"live": True})


async def v2_ready(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /v2/health/ready``: every model of the spec loaded and warmed."""
    ok, _ = server.readiness()
    return respond(200 if ok else 503, {"ready": ok})


def _lookup(server: ModelServer, request: Any) -> tuple[Deployment, ModelRuntime]:
    dep = server.enter(request.path_params["name"])
    dep.leave()
    version = request.path_params.get("version")
    rt = dep.primary
    if version is not None:
        try:
            rt = dep.runtime_for(int(version))
        except ValueError:
            raise HTTPProblem(404, "unknown_version", f"Version {version!r} is not a number.") from None
    return dep, rt


async def v2_model(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /v2/models/{name}[/versions/{version}]``: the model's metadata and inputs."""
    try:
        dep, rt = _lookup(server, request)
    except HTTPProblem as p:
        return respond(p.status, {"error": p.message})
    sig = getattr(rt.model, "signature", None)
    inputs = [
        {"name": s.name, "datatype": v2_type(str(getattr(s, "dtype", ""))), "shape": [-1]}
        for s in (getattr(sig, "inputs", None) or [])
    ]
    return respond(
        200,
        {
            "name": dep.endpoint,
            "versions": [str(v) for v in sorted(dep.by_version)],
            "platform": f"modelyard-{getattr(rt.model, 'flavor', 'model')}",
            "inputs": inputs,
            "outputs": [{"name": "predict", "datatype": "FP64", "shape": [-1]}],
        },
    )


async def v2_model_ready(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /v2/models/{name}[/versions/{version}]/ready``."""
    try:
        _, rt = _lookup(server, request)
    except HTTPProblem as p:
        return respond(p.status, {"error": p.message})
    return respond(200 if rt.warmed else 503, {"name": rt.name, "ready": rt.warmed})


def render_infer(
    answer: Answer, endpoint: str, rid: str, v2_id: Any, proba: bool, headers: dict[str, str]
) -> JSONResponse:
    """The V2 infer response body of ``answer``."""
    import numpy as np

    rt = answer.runtime
    classes = rt.classes if proba and rt is not None else None
    version = rt.version if rt is not None else None
    out = answer.output if rt is not None else np.asarray(answer.output)
    body: dict[str, Any] = {
        "model_name": rt.name if rt is not None else endpoint,
        "model_version": str(version) if version is not None else "constant",
        "id": v2_id if v2_id is not None else rid,
        "outputs": v2_outputs(out, "probabilities" if proba else "predict"),
    }
    if classes is not None:
        body["outputs"][0]["parameters"] = {"classes": classes}
    if answer.fallback:
        body["parameters"] = {"fallback": True, "fallback_reason": answer.reason}
    return respond(200, body, headers)
