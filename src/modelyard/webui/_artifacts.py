"""Artifact previews: images, text, JSON, CSV and Parquet heads; the raw bytes of images only.

Stored bytes are untrusted: they are escaped by the template, parsed with size limits, and served raw
only as an image type chosen by the file's extension (never HTML or SVG, never sniffed).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from fastapi.responses import Response

from modelyard import errors
from modelyard._workspace import Workspace

__all__ = ["Preview", "artifact_preview", "raw_artifact"]

#: Largest file previewed (bytes read from the blob store).
MAX_PREVIEW = 8 << 20
HEAD_LINES = 200
HEAD_ROWS = 50
IMAGES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


@dataclass
class Preview:
    path: str
    size: int
    kind: str  # image | json | table | text | folder | binary | large
    text: str = ""
    head: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    files: list[tuple[str, int]] = field(default_factory=list)
    note: str = ""


def _find(ws: Workspace, run: Any, path: str) -> tuple[str, str, int, list[tuple[str, int]] | None]:
    """``(path, digest, size, folder files or None)`` of an artifact or a file inside a folder artifact."""
    path = path.strip("/")
    for art in run.artifacts:
        if art.path == path:
            if art.kind == "dir":
                files = [(f"{art.path}/{e.path}", e.size) for e in ws.blobs.read_manifest(art.digest)]
                return path, art.digest, art.size, files
            return path, art.digest, art.size, None
        if art.kind == "dir" and path.startswith(art.path + "/"):
            inner = path[len(art.path) + 1 :]
            for e in ws.blobs.read_manifest(art.digest):
                if e.path == inner:
                    return path, e.digest, e.size, None
    names = [a.path for a in run.artifacts]
    hint = errors.did_you_mean(path, names) or (
        f" Its artifacts: {', '.join(names[:10])}." if names else " It has no artifacts."
    )
    raise errors.NotFoundError(f"Run {run.id} has no artifact {path!r}.{hint}")


def artifact_preview(ws: Workspace, run: Any, path: str) -> Preview:
    path, digest, size, files = _find(ws, run, path)
    if files is not None:
        return Preview(path, size, "folder", files=files)
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in IMAGES:
        return Preview(path, size, "image")
    if size > MAX_PREVIEW:
        return Preview(path, size, "large", note=f"{size:,} bytes: too large to preview here.")
    data = ws.blobs.read_bytes(digest)
    if suffix == ".parquet":
        return _parquet(path, size, data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return Preview(path, size, "binary", note=f"{size:,} bytes of binary data.")
    if suffix == ".json":
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError as exc:
            return _text(path, size, text, f"Not valid JSON ({exc}); shown as text.")
        return _text(path, size, text, "", kind="json")
    if suffix in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
        try:
            rows = [row for _, row in zip(range(HEAD_ROWS + 1), reader, strict=False)]
        except csv.Error as exc:
            return _text(path, size, text, f"Not valid CSV ({exc}); shown as text.")
        head, body = (rows[0], rows[1:]) if rows else ([], [])
        note = f"First {len(body)} rows." if len(body) == HEAD_ROWS else ""
        return Preview(path, size, "table", head=head, rows=body, note=note)
    return _text(path, size, text, "")


def _text(path: str, size: int, text: str, note: str, kind: str = "text") -> Preview:
    lines = text.splitlines()
    if len(lines) > HEAD_LINES:
        note = (note + " " if note else "") + f"First {HEAD_LINES} of {len(lines):,} lines."
        text = "\n".join(lines[:HEAD_LINES])
    return Preview(path, size, kind, text=text, note=note)


def _parquet(path: str, size: int, data: bytes) -> Preview:
    try:
        import pyarrow.parquet as pq

        f = pq.ParquetFile(io.BytesIO(data))
        table = f.read_row_group(0).slice(0, HEAD_ROWS) if f.num_row_groups else None
    except ImportError:
        return Preview(path, size, "binary", note="Parquet preview needs pyarrow.")
    except Exception as exc:  # untrusted bytes: any parse failure is a note, never a 500
        return Preview(path, size, "binary", note=f"Not a readable Parquet file ({type(exc).__name__}).")
    if table is None:
        return Preview(path, size, "table", note="No rows.")
    cols = table.column_names
    data_cols = [table.column(c).to_pylist() for c in cols]
    rows = [[str(col[i]) for col in data_cols] for i in range(table.num_rows)]
    return Preview(path, size, "table", head=cols, rows=rows, note=f"First rows of {f.metadata.num_rows:,}.")


def raw_artifact(ws: Workspace, run: Any, path: str) -> Response:
    """An image artifact's bytes (other kinds are previewed as text, never served raw)."""
    path, digest, size, files = _find(ws, run, path)
    media = IMAGES.get(PurePosixPath(path).suffix.lower())
    if files is not None or media is None:
        raise errors.InvalidArgumentError(f"Only images are served raw; {path!r} is previewed as text.")
    if size > 4 * MAX_PREVIEW:
        raise errors.InvalidArgumentError(f"{path!r} is {size:,} bytes: too large to show here.")
    return Response(
        ws.blobs.read_bytes(digest),
        media_type=media,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'",
            "Cache-Control": "private, max-age=3600",
        },
    )
