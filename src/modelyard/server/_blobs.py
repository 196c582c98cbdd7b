"""Blob routes: streamed downloads (with Range), resumable uploads verified before they are kept.

``PUT /api/v1/blobs/{digest}`` appends the body at ``Upload-Offset`` to a partial file of that digest;
when the partial file reaches ``Upload-Length`` it is hashed, and kept as the blob only when it
matches the digest (otherwise deleted, 400). ``HEAD /api/v1/uploads/{digest}`` tells a client where
to resume. A worker killed mid-upload leaves only the partial file, never a blob; the next attempt
resumes from what reached the disk. Neither side holds a whole blob in memory.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import blake3
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from modelyard import errors
from modelyard.blobs._hashing import check_digest

if TYPE_CHECKING:
    from modelyard.server._app import ServerSettings, _State

__all__ = ["blob_routes"]

_DIGEST_PARAM = {
    "name": "digest",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "description": "blake3 hex digest of the blob.",
}


def _require(request: Request, role: str) -> None:
    principal = request.state.principal
    if not principal.can(role):
        raise errors.PermissionDeniedError(
            f"Blob access here needs role {role!r}; {principal.name} has {principal.role!r}."
        )


def blob_routes(app: FastAPI, state: _State, settings: ServerSettings) -> None:
    blobs = state.ws.blobs
    uploads = _upload_dir(state)

    def part_path(digest: str) -> Path:
        return uploads / f"{digest}.upload"

    @app.head("/api/v1/blobs/{digest}", tags=["blobs"], openapi_extra={"parameters": [_DIGEST_PARAM]})
    def blob_head(digest: str, request: Request) -> Response:
        """Whether a blob is stored, and its size (Content-Length)."""
        _require(request, "reader")
        check_digest(digest)
        if not blobs.exists(digest):
            return Response(status_code=404)
        return Response(headers={"Content-Length": str(blobs.size(digest)), "Accept-Ranges": "bytes"})

    @app.get(
        "/api/v1/blobs/{digest}",
        tags=["blobs"],
        response_class=Response,
        responses={200: {"content": {"application/octet-stream": {}}}, 404: {"description": "No such blob."}},
    )
    def blob_get(digest: str, request: Request) -> Response:
        """The blob's bytes, streamed (Range requests are honoured for resuming)."""
        _require(request, "reader")
        check_digest(digest)
        if not blobs.exists(digest):
            raise errors.BlobNotFoundError(f"No blob {digest} on this server.")
        if blobs.is_local:
            return _BlobFile(blobs.local_path(digest), media_type="application/octet-stream")
        backend: Any = blobs.backend
        fs, path = backend.fs, backend.path(digest)

        def chunks() -> Any:
            with fs.open(path, "rb") as fh:
                while True:
                    data = fh.read(1 << 20)
                    if not data:
                        return
                    yield data

        return StreamingResponse(
            chunks(),
            media_type="application/octet-stream",
            headers={"Content-Length": str(blobs.size(digest))},
        )

    @app.head("/api/v1/uploads/{digest}", tags=["blobs"])
    def upload_state(digest: str, request: Request) -> Response:
        """Where to resume an upload: ``Upload-Offset`` bytes are on the server (``X-Yard-Stored: 1``
        when the blob is already stored and nothing needs sending)."""
        _require(request, "writer")
        check_digest(digest)
        if blobs.exists(digest):
            return Response(headers={"X-Yard-Stored": "1", "Upload-Offset": "0"})
        part = part_path(digest)
        size = part.stat().st_size if part.exists() else 0
        return Response(headers={"Upload-Offset": str(size), "X-Yard-Stored": "0"})

    @app.put(
        "/api/v1/blobs/{digest}",
        tags=["blobs"],
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
            },
            "parameters": [
                {
                    "name": "Upload-Offset",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0},
                },
                {
                    "name": "Upload-Length",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 0},
                },
            ],
        },
        responses={
            201: {"description": "Stored (or already stored)."},
            202: {"description": "Partial upload kept; resume at Upload-Offset."},
            400: {"description": "The bytes do not hash to the digest, or the offsets do not add up."},
            409: {
                "description": "Another upload of this blob is running, or the offset is not where "
                "the server is."
            },
            413: {"description": "Larger than this server takes."},
        },
    )
    async def blob_put(digest: str, request: Request) -> Response:
        """Upload (part of) a blob; the server keeps it only when its bytes hash to ``digest``."""
        _require(request, "writer")
        check_digest(digest)
        try:
            total = int(request.headers["Upload-Length"])
            offset = int(request.headers.get("Upload-Offset", "0"))
        except (KeyError, ValueError) as exc:
            raise errors.InvalidArgumentError(
                "An upload needs the integer headers Upload-Length (the blob's size) and Upload-Offset "
                "(where this body starts)."
            ) from exc
        if total < 0 or offset < 0 or offset > total:
            raise errors.InvalidArgumentError(
                f"Upload-Offset {offset} / Upload-Length {total} do not fit together."
            )
        if total > settings.max_upload:
            return JSONResponse(
                {
                    "error": {
                        "type": "InvalidArgumentError",
                        "message": f"{total} bytes is more than this server takes "
                        f"({settings.max_upload}, YARD_SERVER_MAX_UPLOAD).",
                    }
                },
                status_code=413,
            )
        if await anyio.to_thread.run_sync(blobs.exists, digest):
            async for _ in request.stream():  # drain: the client may already be sending
                pass
            return Response(status_code=201, headers={"X-Yard-Stored": "1"})
        part = part_path(digest)
        fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return JSONResponse(
                    {
                        "error": {
                            "type": "ConflictError",
                            "message": "Another upload of this blob is running; retry.",
                        }
                    },
                    status_code=409,
                    headers={"X-Yard-Upload": "busy"},
                )
            have = os.fstat(fd).st_size
            if have != offset:
                return JSONResponse(
                    {
                        "error": {
                            "type": "ConflictError",
                            "message": f"The server has {have} bytes of this upload; "
                            f"resume at Upload-Offset {have}.",
                        }
                    },
                    status_code=409,
                    headers={"Upload-Offset": str(have)},
                )
            os.lseek(fd, offset, os.SEEK_SET)
            written = offset
            # the body arrives in ~64 KiB pieces: gather them so each trip to a worker thread writes
            # 1 MiB (a thread hop per piece cost more than the write; on disk it is the same bytes)
            pending = bytearray()
            async for chunk in request.stream():
                if not chunk:
                    continue
                written += len(chunk)
                if written > total:
                    os.ftruncate(fd, offset)
                    raise errors.InvalidArgumentError(f"The body runs past Upload-Length {total}.")
                pending += chunk
                if len(pending) >= _WRITE_AT:
                    await anyio.to_thread.run_sync(_write_all, fd, bytes(pending))
                    pending.clear()
            if pending:
                await anyio.to_thread.run_sync(_write_all, fd, bytes(pending))
            if written < total:
                return Response(status_code=202, headers={"Upload-Offset": str(written)})
            await anyio.to_thread.run_sync(_finish, blobs, part, fd, digest)
        finally:
            os.close(fd)
        return Response(status_code=201, headers={"X-Yard-Stored": "1"})


_WRITE_AT = 1 << 20


class _BlobFile(FileResponse):
    """A local blob sent in 1 MiB reads (starlette's 64 KiB means a worker-thread trip per 64 KiB)."""

    chunk_size = 1 << 20


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _finish(blobs: Any, part: Path, fd: int, digest: str) -> None:
    """Hash the complete upload; keep it as the blob when it matches, delete it either way."""
    os.fsync(fd)
    h = blake3.blake3()
    with open(part, "rb") as fh:
        while data := fh.read(1 << 22):
            h.update(data)
    if h.hexdigest() != digest:
        part.unlink(missing_ok=True)
        raise errors.IntegrityError(
            f"The uploaded bytes hash to {h.hexdigest()}, not {digest}; nothing was stored. Upload again."
        )
    if blobs.is_local:
        local = blobs._local_backend()
        tmp = local.tmp_file()
        os.link(part, tmp)
        part.unlink()
        local.publish(tmp, digest)
    else:
        blobs.put_file(part)
        part.unlink(missing_ok=True)


def _upload_dir(state: _State) -> Path:
    ws = state.ws
    if ws.blobs.is_local:
        folder = Path(ws.blobs._local) / "uploads"  # type: ignore[arg-type]
    else:
        import tempfile

        folder = Path(os.environ.get("YARD_SERVER_UPLOADS") or Path(tempfile.gettempdir()) / "yard-uploads")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder
