"""The request and response plumbing every route shares: the raw ASGI request of the hot path,
the JSON response, the error body, body reading with limits, content types and ``?proba``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs

from modelyard.errors import did_you_mean
from modelyard.serving._codec import HTTPProblem, Payload, dumps
from modelyard.serving._types import Receive, Scope, Send

__all__ = [
    "JSONResponse",
    "RawRequest",
    "check_type",
    "csv_payload",
    "problem",
    "read_body",
    "respond",
    "wants_proba",
]

_JSON = "application/json"


class RawRequest:
    """The little of a Starlette Request the predict routes use, straight from the ASGI scope."""

    __slots__ = ("_receive", "headers", "method", "path_params", "query")

    def __init__(self, scope: Scope, receive: Receive, params: dict[str, str]) -> None:
        self._receive = receive
        self.method: str = scope["method"]
        self.query: bytes = scope.get("query_string", b"")
        # Every header, lower-cased: traffic policies read their own (sticky keys, preview, A/B arms).
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.path_params = params

    async def read(self, limit: int) -> bytes:
        """The whole body (at most ``limit`` bytes); one ``receive`` when it came in one message."""
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            body: bytes = message.get("body", b"")
            if len(body) > limit:
                raise HTTPProblem(
                    413, "body_too_large", f"The body is larger than the limit of {limit} bytes."
                )
            return body
        if message["type"] == "http.disconnect":
            raise HTTPProblem(400, "client_disconnected", "The client disconnected before sending the body.")
        chunks = [message.get("body", b"")]
        size = len(chunks[0])
        if size > limit:
            raise HTTPProblem(413, "body_too_large", f"The body is larger than the limit of {limit} bytes.")
        async for chunk in self.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPProblem(
                    413, "body_too_large", f"The body is larger than the limit of {limit} bytes."
                )
            chunks.append(chunk)
        return b"".join(chunks)

    async def stream(self) -> AsyncIterator[bytes]:
        while True:
            message = await self._receive()
            if message["type"] == "http.request":
                body = message.get("body", b"")
                if body:
                    yield body
                if not message.get("more_body", False):
                    return
            elif message["type"] == "http.disconnect":
                raise HTTPProblem(
                    400, "client_disconnected", "The client disconnected before sending the body."
                )


class JSONResponse:
    """A JSON response sent as two ASGI messages (what Starlette's Response does, minus its
    header machinery on the hot path). Usable wherever Starlette expects a response."""

    __slots__ = ("body", "headers", "status_code")

    def __init__(self, body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.status_code = status
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = [(b"content-type", b"application/json"), (b"content-length", str(len(self.body)).encode())]
        if self.headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def respond(status: int, body: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    """``body`` as a JSON response."""
    return JSONResponse(dumps(body), status, headers)


def problem(p: HTTPProblem, rid: str) -> JSONResponse:
    """The error body of ``p``: ``{"error", "code", "request_id"[, "problems"]}``."""
    body: dict[str, Any] = {"error": p.message, "code": p.code, "request_id": rid}
    if p.problems:
        body["problems"] = p.problems
    return respond(p.status, body, {"x-request-id": rid, **p.headers})


async def read_body(request: Any, limit: int) -> bytes:
    """The body of ``request`` (a :class:`RawRequest` or a Starlette request), at most ``limit`` bytes."""
    cl = request.headers.get("content-length")
    if cl is not None:
        try:
            if int(cl) > limit:
                raise HTTPProblem(
                    413, "body_too_large", f"The body has {int(cl)} bytes; the limit is {limit}."
                )
        except ValueError:
            raise HTTPProblem(400, "bad_header", f"Content-Length {cl!r} is not a number.") from None
    if type(request) is RawRequest:
        return await request.read(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPProblem(413, "body_too_large", f"The body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def check_type(request: Any, *, csv_ok: bool = False) -> str:
    """``"json"`` or ``"csv"`` from the Content-Type; 415 for anything else."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("", _JSON, "application/x-www-form-urlencoded") or ctype.endswith("+json"):
        return "json"
    if csv_ok and ctype == "text/csv":
        return "csv"
    accepted = "application/json" + (" or text/csv" if csv_ok else "")
    raise HTTPProblem(
        415, "unsupported_media_type", f"Content-Type {ctype!r} is not supported; send {accepted}."
    )


_TRUE = ("true", "1", "yes")


def wants_proba(request: Any, obj: Any, api: str) -> bool:
    """Whether a request asks for class probabilities: ``?proba=true``, ``"params": {"proba": true}``
    (our API and /invocations) or, in V2, the named output ``probabilities``."""
    raw = request.query if type(request) is RawRequest else request.url.query.encode()
    if raw and b"proba" in raw:
        values = parse_qs(raw.decode("latin-1")).get("proba", [])
        if values:
            if values[-1].lower() not in (*_TRUE, "false", "0", "no"):
                raise HTTPProblem(
                    400, "bad_format", f"?proba must be true or false. Got {values[-1][:40]!r} instead."
                )
            return values[-1].lower() in _TRUE
    if not isinstance(obj, dict):
        return False
    if api == "v2":
        outputs = obj.get("outputs")
        if outputs is None:
            return False
        if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
        ):
            raise HTTPProblem(
                400,
                "bad_format",
                "'outputs' must be a list of {'name': ...}; the outputs are 'predict' and 'probabilities'.",
            )
        names = {o["name"] for o in outputs}
        unknown = names - {"predict", "probabilities"}
        if unknown:
            name = sorted(unknown)[0]
            raise HTTPProblem(
                400,
                "bad_format",
                f"Unknown output {name[:80]!r}; the outputs are 'predict' and "
                "'probabilities'." + did_you_mean(name, ["predict", "probabilities"]),
            )
        return "probabilities" in names
    params = obj.get("params")
    if params is None:
        return False
    if not isinstance(params, dict) or not isinstance(params.get("proba", False), bool):
        raise HTTPProblem(400, "bad_format", "'params' must be an object like {\"proba\": true}.")
    return bool(params.get("proba", False))


def csv_payload(body: bytes) -> Payload:
    """The rows of a CSV body with a header row (an empty cell is a missing value)."""
    import io

    import pandas as pd

    try:
        frame = pd.read_csv(io.BytesIO(body))
    except Exception as exc:
        raise HTTPProblem(400, "malformed_csv", f"The CSV body does not parse: {exc}") from None
    if not len(frame):
        raise HTTPProblem(400, "no_rows", "The CSV body has a header but no rows.")
    # an empty cell is a missing value: None, as JSON null would be (NaN is refused as a value)
    cols = {str(c): frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns}
    payload = Payload(cols, len(frame))
    payload.source = "csv"
    return payload
