"""The Open Inference Protocol (V2, KServe/Triton) routes: server and model metadata,
readiness, and the rendering of an infer answer (``POST .../infer`` goes through the
server's predict path with ``api="v2"``; the request is decoded in
:mod:`modelyard.serving._v2_request`).

Supported extensions (listed by ``GET /v2``): ``binary_tensor_data`` (requests with binary
inputs, answers with binary outputs when asked, :mod:`modelyard.serving._v2_binary`).

A model's outputs are ``predict`` (its predictions; a model returning a table gives one tensor
per column) and, when it has class probabilities, ``probabilities`` (FP64, shape
``[rows, n_classes]``, the classes in the output's ``parameters.classes``). Without
``outputs`` in the request the answer holds ``predict``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.serving._codec import HTTPProblem, Payload
from modelyard.serving._http import JSONResponse, respond
from modelyard.serving._v2_binary import binary_answer, encode_tensor
from modelyard.serving._v2_request import OUTPUTS, V2Request, decode_v2

if TYPE_CHECKING:
    from modelyard.serving._app import ModelServer
    from modelyard.serving._runtime import Answer, Deployment, ModelRuntime

__all__ = [
    "EXTENSIONS",
    "decode_v2_request",
    "model_outputs",
    "render_infer",
    "v2_live",
    "v2_model",
    "v2_model_ready",
    "v2_ready",
    "v2_server",
    "v2_type",
]

#: The protocol extensions this server supports (``GET /v2``).
EXTENSIONS = ["binary_tensor_data"]


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

    return respond(200, {"name": "modelyard", "version": __version__, "extensions": EXTENSIONS})


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
            "outputs": model_outputs(rt),
        },
    )


async def v2_model_ready(server: ModelServer, request: Any) -> JSONResponse:
    """``GET /v2/models/{name}[/versions/{version}]/ready``."""
    try:
        _, rt = _lookup(server, request)
    except HTTPProblem as p:
        return respond(p.status, {"error": p.message})
    return respond(200 if rt.warmed else 503, {"name": rt.name, "ready": rt.warmed})


def model_outputs(rt: ModelRuntime) -> list[dict[str, Any]]:
    """The V2 metadata of ``rt``'s outputs: ``predict`` and, with class probabilities, ``probabilities``."""
    classes = rt.classes
    if classes is not None:
        kinds = {type(c) for c in classes}
        dtype = (
            "BOOL"
            if kinds == {bool}
            else "INT64"
            if kinds <= {int}
            else "FP64"
            if kinds <= {int, float}
            else "BYTES"
        )
    else:
        dtype = "FP64"
    out: list[dict[str, Any]] = [{"name": "predict", "datatype": dtype, "shape": [-1]}]
    if rt.has_proba:
        width = len(classes) if classes is not None else -1
        proba: dict[str, Any] = {"name": "probabilities", "datatype": "FP64", "shape": [-1, width]}
        if classes is not None:
            proba["parameters"] = {"classes": classes}
        out.append(proba)
    return out


def available_outputs(runtimes: list[ModelRuntime]) -> tuple[str, ...]:
    """The outputs a request may ask of a deployment: ``probabilities`` when any of its models has them."""
    return OUTPUTS if any(rt.has_proba for rt in runtimes) else OUTPUTS[:1]


_TYPES_OK = ("", "application/json", "application/octet-stream", "application/x-www-form-urlencoded")


def decode_v2_request(request: Any, body: bytes, dep: Deployment) -> tuple[Payload, V2Request]:
    """The payload and the asks of a V2 infer request (JSON, or JSON + binary tensors)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in _TYPES_OK and not ctype.endswith("+json"):
        raise HTTPProblem(
            415,
            "unsupported_media_type",
            f"Content-Type {ctype[:80]!r} is not supported; send application/json, or "
            "application/octet-stream with the Inference-Header-Content-Length header for binary tensors.",
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise HTTPProblem(
            415,
            "unsupported_media_type",
            f"Content-Encoding {encoding[:40]!r} is not supported; send the body uncompressed.",
        )
    return decode_v2(body, request.headers, dep.columns, available_outputs(dep.all_runtimes()))


def _datatype(arr: Any) -> str:
    kind = arr.dtype.kind
    return "FP64" if kind == "f" else "INT64" if kind in "iu" else "BOOL" if kind == "b" else "BYTES"


def _tensors(name: str, value: Any) -> list[tuple[str, Any]]:
    """``(name, array)`` of one output: a table gives one tensor per column."""
    import numpy as np

    if hasattr(value, "columns") and hasattr(value, "to_numpy"):
        return [(str(c), value[c].to_numpy()) for c in value.columns]
    return [(name, np.asarray(value))]


def render_infer(
    answer: Answer,
    endpoint: str,
    rid: str,
    request: V2Request | None,
    proba: bool,
    headers: dict[str, str],
) -> JSONResponse:
    """The V2 infer response of ``answer``: the outputs ``request`` asked for (each as JSON
    data or, when asked, binary data after the JSON header)."""
    import numpy as np

    rt = answer.runtime
    asked = request.outputs if request is not None else [("probabilities" if proba else "predict", False)]
    out = answer.output
    both = getattr(out, "proba", None) is not None and hasattr(out, "predict")
    values = {
        "predict": out.predict if both else out,
        "probabilities": out.proba if both else out,
    }
    tensors: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, binary in asked:
        for tname, arr in _tensors(name, values[name]):
            dtype = _datatype(arr)
            tensor: dict[str, Any] = {"name": tname, "shape": list(arr.shape), "datatype": dtype}
            params: dict[str, Any] = {}
            if name == "probabilities" and rt is not None and rt.classes is not None:
                params["classes"] = rt.classes
            if binary:
                blob = encode_tensor(arr, dtype)
                params["binary_data_size"] = len(blob)
                blobs.append(blob)
            elif dtype == "BYTES":
                tensor["data"] = [
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                    for v in arr.reshape(-1).tolist()
                ]
            else:
                tensor["data"] = (
                    arr.reshape(-1) if arr.dtype.kind in "fiub" else np.asarray(arr).reshape(-1).tolist()
                )
            if params:
                tensor["parameters"] = params
            tensors.append(tensor)
    version = rt.version if rt is not None else None
    v2_id = request.id if request is not None else None
    body: dict[str, Any] = {
        "model_name": rt.name if rt is not None else endpoint,
        "model_version": str(version) if version is not None else "constant",
        "id": v2_id if v2_id is not None else rid,
        "outputs": tensors,
    }
    if answer.fallback:
        body["parameters"] = {"fallback": True, "fallback_reason": answer.reason}
    if blobs:
        return binary_answer(body, blobs, headers)
    return respond(200, body, headers)
