"""The client side of a modelyard server: operations, blobs and credentials over HTTP(S).

A workspace whose URI is ``http(s)://host[:port][/prefix]`` talks to ``yard server`` through one
:class:`RemoteClient`: service operations (:mod:`modelyard._rpc`) are JSON POSTs validated by
pydantic on both sides, blobs stream in and out (never whole in memory), and every mutating call
carries an ``Idempotency-Key`` that stays the same across retries, so a batch retried after a lost
answer is stored once. The token comes from ``YARD_TOKEN`` or from ``yard login`` (a 0600 file in the
user's config folder) and is never printed: reprs, errors and logs show the server URL only.
"""

from __future__ import annotations

import functools
import json
import os
import stat
import threading
import time
import types
import typing
import uuid
from collections import abc
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard import errors
from modelyard._redact import redact_url
from modelyard._version import __version__

if TYPE_CHECKING:
    import httpx

    from modelyard._rpc import OpSpec

__all__ = [
    "API_VERSION",
    "RemoteClient",
    "credentials_path",
    "load_token",
    "save_token",
]

#: The HTTP API version this client speaks (the path prefix ``/api/v1``).
API_VERSION = 1

#: Header the server answers with its API version; the client checks it.
API_HEADER = "X-Yard-Api"

_RETRY_STATUS = frozenset({502, 503, 504})


def credentials_path() -> Path:
    """Where ``yard login`` keeps tokens: ``$XDG_CONFIG_HOME/modelyard/credentials.json`` (0600)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "modelyard" / "credentials.json"


def _server_key(url: str) -> str:
    return url.rstrip("/")


def load_token(url: str) -> str | None:
    """The token for server ``url``: ``YARD_TOKEN``, else the one ``yard login`` stored for it."""
    env = os.environ.get("YARD_TOKEN", "").strip()
    if env:
        return env
    path = credentials_path()
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise errors.ConfigError(
            f"{path} holds API tokens but can be read by other users (mode {stat.S_IMODE(st.st_mode):o}); "
            f"run: chmod 600 {path}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise errors.ConfigError(f"{path} is not a credentials file written by yard login: {exc}") from exc
    token = data.get("servers", {}).get(_server_key(url), {}).get("token") if isinstance(data, dict) else None
    return token if isinstance(token, str) and token else None


def save_token(url: str, token: str, user: str | None = None) -> Path:
    """Store ``token`` for server ``url`` in the credentials file, created with mode 0600."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data: dict[str, Any] = {"servers": {}}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict) and isinstance(loaded.get("servers"), dict):
                data = loaded
        except (OSError, ValueError):
            pass
    data["servers"][_server_key(url)] = {"token": token, "user": user}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def _error_for(name: object, message: str, details: object, status: int) -> errors.ModelyardError:
    """The error a server's answer names, of the same class (only one of ``modelyard.errors``' own:
    :func:`modelyard.errors.from_wire`); an unknown name gets the class of the HTTP status."""
    rebuilt = errors.from_wire(name, message, details)
    if rebuilt is not None:
        return rebuilt
    cls = {
        400: errors.InvalidArgumentError,
        401: errors.AuthenticationError,
        403: errors.PermissionDeniedError,
        404: errors.NotFoundError,
        409: errors.ConflictError,
        413: errors.InvalidArgumentError,
        422: errors.InvalidArgumentError,
    }.get(status, errors.ServerError)
    return cls(message)


_AS_LIST = frozenset({abc.Sequence, abc.MutableSequence, abc.Collection, abc.Iterable, abc.Iterator})


def _wire_type(tp: Any) -> Any:
    """An argument's type as the wire model validates it: ``Sequence[X]``/``Iterable[X]`` as ``list[X]``.

    Both accept the same JSON (and, client-side, the same lists, tuples and generators), but pydantic
    checks an abstract ``Sequence`` item by item in Python, 5-10x slower than a list in its core:
    a 50,000-point ``write_metrics`` batch spent a fifth of the server's time there.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in _AS_LIST and len(args) == 1:
        return list[args[0]]  # type: ignore[valid-type]
    if origin is typing.Union or origin is types.UnionType:
        return typing.Union[tuple(_wire_type(a) for a in args)]  # noqa: UP007
    return tp


class _Codec:
    """pydantic adapters for one operation's arguments and result."""

    def __init__(self, spec: OpSpec) -> None:
        from pydantic import ConfigDict, create_model

        hints = spec.hints()
        fields: dict[str, Any] = {}
        for p in spec.parameters():
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (_wire_type(hints.get(p.name, Any)), default)
        cfg = ConfigDict(
            extra="forbid",
            ser_json_inf_nan="constants",
            ser_json_bytes="base64",
            val_json_bytes="base64",
            arbitrary_types_allowed=False,
        )
        model_name = f"{spec.service}_{spec.name}".title().replace("_", "") + "Request"
        self.args_model = create_model(model_name, __config__=cfg, **fields)
        ret = hints.get("return", Any)
        ret = Any if ret is type(None) else ret
        #: The answer's body: ``{"result": ...}`` (an envelope leaves room for more keys later).
        self.result_model = create_model(
            model_name.removesuffix("Request") + "Response", __config__=cfg, result=(ret, None)
        )

    def dump_args(self, values: dict[str, Any]) -> bytes:
        return self.args_model(**values).model_dump_json(round_trip=True).encode()

    def load_args(self, body: bytes) -> Any:
        return self.args_model.model_validate_json(body)

    def dump_result(self, value: Any) -> bytes:
        return self.result_model(result=value).model_dump_json(round_trip=True).encode()

    def load_result(self, body: bytes) -> Any:
        return getattr(self.result_model.model_validate_json(body), "result")  # noqa: B009


@functools.cache
def codec(spec: OpSpec) -> _Codec:
    """The (cached) argument/result codec of an operation; the server uses the same one."""
    return _Codec(spec)


class RemoteClient:
    """One modelyard server: operations, blobs, the version handshake and retries."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = None) -> None:
        self.url = url.rstrip("/")
        self._token = token if token is not None else load_token(self.url)
        self.timeout = timeout if timeout is not None else float(os.environ.get("YARD_HTTP_TIMEOUT", "60"))
        self.retries = max(0, int(os.environ.get("YARD_HTTP_RETRIES", "4")))
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._checked = False
        self._info: dict[str, Any] | None = None
        self._pid = os.getpid()

    def __repr__(self) -> str:
        return f"RemoteClient({redact_url(self.url)!r})"

    @property
    def token(self) -> str | None:
        """The bearer token this client sends (never shown in reprs or errors)."""
        return self._token

    # -- plumbing --------------------------------------------------------------------------
    @property
    def http(self) -> httpx.Client:
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    import httpx

                    headers = {"User-Agent": f"modelyard/{__version__}", API_HEADER: str(API_VERSION)}
                    if self._token:
                        headers["Authorization"] = f"Bearer {self._token}"
                    self._client = httpx.Client(
                        base_url=self.url,
                        headers=headers,
                        timeout=httpx.Timeout(self.timeout, connect=min(10.0, self.timeout)),
                        follow_redirects=False,
                    )
                    self._pid = os.getpid()
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _unreachable(self, exc: BaseException) -> errors.ServerError:
        return errors.ServerError(
            f"Cannot reach the modelyard server at {redact_url(self.url)}: {type(exc).__name__}: {exc}. "
            "Check the URL and that `yard server` runs there."
        )

    def raise_for(self, resp: httpx.Response) -> None:
        """Turn an error answer into the modelyard error it names (message from the server)."""
        if resp.status_code < 400:
            self._check_api(resp)
            return
        name, message, details = None, None, None
        try:
            body = resp.json()
            err = body.get("error") if isinstance(body, dict) else None
            if isinstance(err, dict):
                name, details = err.get("type"), err.get("details")
                message = str(err["message"]) if err.get("message") is not None else None
            elif isinstance(body, dict) and "detail" in body:
                message = str(body["detail"])
        except ValueError:
            pass
        if message is None:
            message = f"The server at {redact_url(self.url)} answered HTTP {resp.status_code}."
            self._check_api(resp)
        raise _error_for(name, message, details, resp.status_code)

    def _check_api(self, resp: httpx.Response) -> None:
        got = resp.headers.get(API_HEADER)
        if got is not None and got != str(API_VERSION):
            server_version = resp.headers.get("X-Yard-Version", "?")
            raise errors.ApiVersionError(
                f"This client speaks modelyard API v{API_VERSION} (modelyard {__version__}) but the server "
                f"at {redact_url(self.url)} speaks v{got} (modelyard {server_version}). "
                "Install a modelyard whose API version matches the server's."
            )

    def handshake(self) -> dict[str, Any]:
        """``GET /api/v1/version``: the server's versions (ApiVersionError when incompatible)."""
        import httpx

        try:
            resp = self.http.get("/api/v1/version")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if resp.status_code == 404:
            raise errors.ApiVersionError(
                f"The server at {redact_url(self.url)} has no /api/v1 (is it a modelyard server of API "
                f"v{API_VERSION}? this client is modelyard {__version__})."
            )
        self.raise_for(resp)
        info: dict[str, Any] = resp.json()
        if int(info.get("api", -1)) != API_VERSION:
            raise errors.ApiVersionError(
                f"This client speaks modelyard API v{API_VERSION} (modelyard {__version__}) but the server "
                f"at {redact_url(self.url)} speaks v{info.get('api')} (modelyard {info.get('version')})."
            )
        self._checked = True
        self._info = info
        return info

    def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        **kw: Any,
    ) -> httpx.Response:
        """One request with bounded retries on lost connections and 502/503/504 (only when the
        call is safe to repeat: reads, or writes that carry an Idempotency-Key)."""
        import httpx

        if not self._checked:
            self.handshake()
        attempt = 0
        while True:
            try:
                resp = self.http.request(method, path, **kw)
            except httpx.TransportError as exc:
                if not idempotent or attempt >= self.retries:
                    raise self._unreachable(exc) from exc
            else:
                if resp.status_code not in _RETRY_STATUS or not idempotent or attempt >= self.retries:
                    return resp
            attempt += 1
            time.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))

    # -- operations ------------------------------------------------------------------------
    def call(self, spec: OpSpec, args: dict[str, Any]) -> Any:
        c = codec(spec)
        try:
            body = c.dump_args(args)
        except Exception as exc:  # pydantic ValidationError: a value the API cannot carry
            raise errors.InvalidArgumentError(
                f"{spec.service}.{spec.name}: arguments cannot be sent to the server: {exc}"
            ) from exc
        headers = {"Content-Type": "application/json"}
        if not spec.read_only:
            from modelyard._rpc import current_idempotency_key

            headers["Idempotency-Key"] = current_idempotency_key() or uuid.uuid4().hex
        for _ in range(20):  # 409 "in progress": the first attempt of this key is still running
            resp = self.request("POST", spec.path, idempotent=True, content=body, headers=headers)
            if resp.status_code == 409 and resp.headers.get("X-Yard-Idempotency") == "in-progress":
                time.sleep(0.5)
                continue
            break
        self.raise_for(resp)
        return c.load_result(resp.content)

    # -- blobs -----------------------------------------------------------------------------
    def blob_head(self, digest: str) -> int | None:
        """Size of a stored blob, or None when the server has no such blob."""
        resp = self.request("HEAD", f"/api/v1/blobs/{digest}", idempotent=True)
        if resp.status_code == 404:
            return None
        self.raise_for(resp)
        return int(resp.headers["Content-Length"])

    def blob_stream(self, digest: str, offset: int = 0) -> Iterator[bytes]:
        """The blob's bytes as chunks (not verified here: the caller hashes while writing)."""
        import httpx

        headers = {"Range": f"bytes={offset}-"} if offset else {}
        if not self._checked:
            self.handshake()
        try:
            with self.http.stream("GET", f"/api/v1/blobs/{digest}", headers=headers) as resp:
                if resp.status_code == 307 and resp.headers.get("X-Yard-Presigned") == "1":
                    location = resp.headers["Location"]
                else:
                    if resp.status_code >= 400:
                        resp.read()
                        self.raise_for(resp)
                    yield from resp.iter_bytes(1 << 20)
                    return
            # a presigned URL: fetched without this client's token (it is not for the object store)
            with httpx.stream("GET", location, headers=headers, timeout=self.timeout) as direct:
                if direct.status_code >= 400:
                    raise errors.BlobError(
                        f"The object store refused the presigned download of {digest} "
                        f"(HTTP {direct.status_code})."
                    )
                yield from direct.iter_bytes(1 << 20)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from exc

    def blob_upload(self, source: Path | bytes, digest: str, size: int) -> None:
        """Upload a local file (or bytes) as blob ``digest``, resuming where an interrupted upload stopped.

        The server hashes what it receives and keeps the blob only when it matches ``digest``.
        """
        import httpx

        if self.server_info().get("presign"):
            self._presigned_upload(source, digest, size)
            return
        attempt = 0
        while True:
            offset = self._upload_offset(digest)
            if offset is None:  # already stored
                return
            try:
                with _opened(source) as fh:
                    fh.seek(offset)
                    resp = self.http.put(
                        f"/api/v1/blobs/{digest}",
                        content=_chunks(fh, size - offset),
                        headers={
                            "Upload-Offset": str(offset),
                            "Upload-Length": str(size),
                            "Content-Type": "application/octet-stream",
                            "Content-Length": str(size - offset),
                        },
                    )
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self.retries:
                    raise self._unreachable(exc) from exc
                time.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))
                continue
            if resp.status_code in _RETRY_STATUS and attempt < self.retries:
                attempt += 1
                time.sleep(min(5.0, 0.2 * 2 ** (attempt - 1)))
                continue
            self.raise_for(resp)
            return

    def server_info(self) -> dict[str, Any]:
        """What ``GET /api/v1/version`` said (fetched once)."""
        if self._info is None:
            self._info = self.handshake()
        return self._info

    def _presigned_upload(self, source: Path | bytes, digest: str, size: int) -> None:
        """Upload straight to the server's object store through a presigned URL, then have the server
        verify the bytes against the digest before it keeps them."""
        import httpx

        resp = self.request("POST", f"/api/v1/uploads/{digest}/presign", idempotent=True)
        self.raise_for(resp)
        grant = resp.json()
        if grant.get("stored"):
            return
        with _opened(source) as fh:
            direct = httpx.put(
                grant["url"],
                content=_chunks(fh, size),
                headers={"Content-Length": str(size)},
                timeout=self.timeout,
            )
        if direct.status_code >= 400:
            raise errors.BlobError(
                f"The object store refused the presigned upload of {digest} (HTTP {direct.status_code})."
            )
        done = self.request("POST", f"/api/v1/uploads/{digest}/commit", idempotent=True)
        self.raise_for(done)

    def _upload_offset(self, digest: str) -> int | None:
        resp = self.request("HEAD", f"/api/v1/uploads/{digest}", idempotent=True)
        if resp.status_code == 404:
            return 0
        self.raise_for(resp)
        if resp.headers.get("X-Yard-Stored") == "1":
            return None
        return int(resp.headers.get("Upload-Offset", "0"))


def _opened(source: Path | bytes) -> Any:
    import io

    return io.BytesIO(source) if isinstance(source, bytes | bytearray) else open(source, "rb")


def _chunks(fh: Any, remaining: int, size: int = 1 << 20) -> Iterator[bytes]:
    while remaining > 0:
        data = fh.read(min(size, remaining))
        if not data:
            break
        remaining -= len(data)
        yield data
