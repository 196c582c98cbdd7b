"""Blob routes: streamed downloads (with Range), resumable uploads verified before they are kept.

``PUT /api/v1/blobs/{digest}`` appends the body at ``Upload-Offset`` to a partial file of that digest,
hashing it as it arrives (one pass; a resumed upload hashes the part already on disk first); when the
partial file reaches ``Upload-Length`` it is fsynced once and kept as the blob only when the digest
matches (otherwise deleted, 400). ``HEAD /api/v1/uploads/{digest}`` tells a client where
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
    """Blobs are content-addressed and reachable only through recorded, scope-checked metadata, so
    anyone who holds ``role`` on anything (globally or by a grant) may move bytes."""
    principal = request.state.principal
    if principal.can(role) or any(principal.can(role, kind, name) for kind, name in principal.grants):
        return
    raise errors.PermissionDeniedError(
        f"Blob transfers need role {role!r} (globally or on some experiment, model or dataset); "
        f"{principal.name} has {principal.role!r}."
    )


def can_presign(ws: Any) -> bool:
    """True when the blobs live on S3 (the server can sign URLs for them)."""
    fs = getattr(ws.blobs.backend, "fs", None)
    protocol = getattr(fs, "protocol", None)
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return bool({"s3", "s3a"} & set(protocols))


class _Signer:
    """Presigned S3 URLs for blobs (GET) and for staged uploads (PUT), valid ``expires_s``."""

    def __init__(self, backend: Any, expires_s: int) -> None:
        self.backend, self.fs, self.expires_s = backend, backend.fs, expires_s

    def staging(self, digest: str) -> str:
        prefix = self.backend.prefix
        return f"{prefix}/uploads/{digest}" if prefix else f"uploads/{digest}"

    def get_url(self, digest: str) -> str:
        return str(self.fs.sign(self.backend.path(digest), expiration=self.expires_s))

    def put_url(self, digest: str) -> str:
        from fsspec.asyn import sync

        bucket, key = self.staging(digest).split("/", 1)
        return str(
            sync(
                self.fs.loop,
                self.fs.s3.generate_presigned_url,
                "put_object",
                Params={"Bucket": bucket, "Key": key},
                ExpiresIn=self.expires_s,
            )
        )

    def commit(self, digest: str) -> None:
        """Hash the staged upload; keep it as the blob only when it matches ``digest``."""
        staged = self.staging(digest)
        if not self.fs.exists(staged):
            raise errors.NotFoundError(f"No staged upload of {digest}: PUT it to the presigned URL first.")
        h = blake3.blake3()
        with self.fs.open(staged, "rb") as fh:
            while data := fh.read(1 << 22):
                h.update(data)
        if h.hexdigest() != digest:
            self.fs.rm_file(staged)
            raise errors.IntegrityError(
                f"The uploaded bytes hash to {h.hexdigest()}, not {digest}; nothing was stored. Upload again."
            )
        self.fs.copy(staged, self.backend.path(digest))
        self.fs.rm_file(staged)


def blob_routes(app: FastAPI, state: _State, settings: ServerSettings) -> None:
    blobs = state.ws.blobs
    uploads = _upload_dir(state)
    signer = (
        _Signer(blobs.backend, settings.presign_expires_s)
        if settings.presign and can_presign(state.ws)
        else None
    )

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
        if signer is not None:  # the client fetches it from S3 itself, with no credentials of its own
            return Response(
                status_code=307, headers={"Location": signer.get_url(digest), "X-Yard-Presigned": "1"}
            )
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

    if signer is not None:

        @app.post("/api/v1/uploads/{digest}/presign", tags=["blobs"])
        def presign_upload(digest: str, request: Request) -> dict[str, Any]:
            """A presigned S3 URL to PUT the blob's bytes to (staged; commit afterwards)."""
            _require(request, "writer")
            check_digest(digest)
            if blobs.exists(digest):
                return {"stored": True}
            return {"stored": False, "url": signer.put_url(digest), "expires_in": signer.expires_s}

        @app.post("/api/v1/uploads/{digest}/commit", tags=["blobs"])
        def commit_upload(digest: str, request: Request) -> dict[str, Any]:
            """Verify a staged upload against its digest and keep it as the blob (400 when it differs)."""
            _require(request, "writer")
            check_digest(digest)
            if not blobs.exists(digest):
                signer.commit(digest)
            return {"stored": True}

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
            # hashed while it streams in (one pass over the bytes): a resumed upload first hashes the
            # part already on disk, then goes on with what arrives
            h = await anyio.to_thread.run_sync(_hash_prefix, part, offset)
            # the body arrives in ~64 KiB pieces: gather them so each trip to a worker thread writes
            # and hashes 1 MiB (a thread hop per piece cost more than the write)
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
                    await anyio.to_thread.run_sync(_write_and_hash, fd, h, bytes(pending))
                    pending.clear()
            if pending:
                await anyio.to_thread.run_sync(_write_and_hash, fd, h, bytes(pending))
            if written < total:
                return Response(status_code=202, headers={"Upload-Offset": str(written)})
            await anyio.to_thread.run_sync(_finish, blobs, part, fd, digest, h.hexdigest())
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


def _write_and_hash(fd: int, h: Any, data: bytes) -> None:
    _write_all(fd, data)
    h.update(data)


def _hash_prefix(part: Path, size: int) -> Any:
    """A hasher fed the first ``size`` bytes of a partial upload (what an earlier attempt stored)."""
    h = blake3.blake3()
    if size:
        with open(part, "rb") as fh:
            left = size
            while left > 0 and (data := fh.read(min(left, 1 << 22))):
                h.update(data)
                left -= len(data)
        if left:
            raise errors.ConflictError(f"The partial upload is shorter than {size} bytes; resume again.")
    return h


def _finish(blobs: Any, part: Path, fd: int, digest: str, got: str) -> None:
    """Keep the complete upload as the blob when its digest (hashed while it arrived) matches;
    delete it either way. One fsync, after the last byte, before it is published."""
    if got != digest:
        part.unlink(missing_ok=True)
        raise errors.IntegrityError(
            f"The uploaded bytes hash to {got}, not {digest}; nothing was stored. Upload again."
        )
    if blobs.is_local:
        os.fsync(fd)
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
