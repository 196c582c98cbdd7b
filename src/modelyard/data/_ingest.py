"""The caller's half of adding a dataset version: files or a frame → stored blobs, schema, profile.

:func:`prepare_version` stores everything a new version needs in the blob store (its files, a
manifest, the schema and profile documents) and returns a :class:`PreparedVersion`; the version
exists once :meth:`DataService.commit <modelyard.data.DataService.commit>` records it (an
operation that runs where the metadata store is). It runs on the caller's side because it reads
local files; on a server workspace the blobs are streamed, digest-verified uploads.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from modelyard.blobs import BlobStore, ManifestEntry, manifest_digest
from modelyard.data._io import TabularSource, detect_format, iter_file_batches, unify_schemas
from modelyard.data._record import DatasetVersion, walk
from modelyard.errors import InvalidArgumentError, NotFoundError, invalid_param
from modelyard.tracking._validation import check_key

__all__ = ["PreparedVersion", "check_dataset_name", "prepare_version"]


@dataclass(frozen=True)
class PreparedVersion:
    """A dataset version whose blobs are stored but which is not recorded yet.

    :meth:`DataService.commit <modelyard.data.DataService.commit>` records it as the next
    version of :attr:`name`. Its blobs are as young as any just written, so ``yard gc`` (which
    spares young blobs) leaves them alone in between.
    """

    name: str
    manifest: str
    schema_digest: str | None
    profile_digest: str | None
    fmt: str
    files: int
    rows: int | None
    size: int
    source: str
    description: str | None = None
    run_id: str | None = None

    def fields(self) -> dict[str, Any]:
        """The keyword arguments of ``DataService.record_version`` (everything but the name)."""
        d = asdict(self)
        del d["name"]
        return d


def check_dataset_name(name: str) -> None:
    check_key(name, "dataset name")
    if "@" in name:
        raise InvalidArgumentError(f"Dataset name {name!r} cannot contain '@' (it separates the version).")


def prepare_version(
    blobs: BlobStore,
    latest_version: Callable[[str], DatasetVersion | None],
    source: Any,
    name: str,
    *,
    description: str | None = None,
    run_id: str | None = None,
    profile: bool = True,
) -> PreparedVersion | DatasetVersion:
    """Store a file, a folder or a DataFrame as blobs of the next version of ``name``.

    Returns the latest version (``created=False``) when it holds the same bytes: then there is
    nothing to record (and, when every file is known to the stat cache, nothing was stored).
    """
    check_dataset_name(name)
    if isinstance(source, str | os.PathLike):
        return _prepare_path(
            blobs, latest_version, Path(source), name, description=description, run_id=run_id, profile=profile
        )
    mod = type(source).__module__
    if mod.startswith(("pandas", "polars", "pyarrow")):
        with tempfile.TemporaryDirectory(prefix="yard-frame-") as tmp:
            path = Path(tmp) / "data.parquet"
            _write_parquet(source, path)
            return _prepare_path(
                blobs,
                latest_version,
                path,
                name,
                description=description,
                run_id=run_id,
                profile=profile,
                source_label=f"<{type(source).__name__}>",
            )
    raise invalid_param(
        "source",
        "yard.data.add",
        "a file or folder path, or a pandas/polars DataFrame",
        type(source).__name__,
    )


def _prepare_path(
    blobs: BlobStore,
    latest_version: Callable[[str], DatasetVersion | None],
    path: Path,
    name: str,
    *,
    description: str | None,
    run_id: str | None,
    profile: bool,
    source_label: str | None = None,
) -> PreparedVersion | DatasetVersion:
    if not path.exists():
        raise NotFoundError(f"Cannot add {str(path)!r}: no such file or folder.")
    stats: list[os.stat_result] | None = None
    files: list[str | Path]
    if path.is_dir():
        walked = walk(path)
        if not walked:
            raise InvalidArgumentError(f"Cannot add {str(path)!r}: the folder has no files.")
        files = [a for a, _, _ in walked]
        rels = [r for _, r, _ in walked]
        stats = [st for _, _, st in walked]
    else:
        files, rels = [path], [path.name]
    known = blobs.known_entries(files, rels, stats)
    latest: DatasetVersion | None = None
    if known is None and not blobs.is_local:
        # a remote store has no stat cache: hash here (no upload, no request per file) when there
        # is a latest version the bytes may equal, so an unchanged re-add costs two requests
        latest = latest_version(name)
        if latest is not None:
            known = _hashed_entries(files, rels, stats)
    if known is not None:  # every file unchanged since it was stored: maybe nothing to do at all
        latest = latest or latest_version(name)
        digest = manifest_digest(known, kind="dataset")
        if latest is not None and latest.manifest_digest == digest and blobs.exists(digest):
            return latest
    tabular = [(p, r, f) for p, r in zip(files, rels, strict=True) if (f := detect_format(r))]
    formats = sorted({f for _, _, f in tabular})
    schema = None
    if tabular:
        schema = unify_schemas([TabularSource(p, f, r) for p, r, f in tabular])  # before storing anything
    entries = _store_files(blobs, files, rels, stats)
    manifest = blobs.put_manifest(entries, kind="dataset")
    total = sum(e.size for e in entries)
    latest = latest_version(name)
    if latest is not None and latest.manifest_digest == manifest:
        return latest
    fmt = (formats[0] if len(formats) == 1 else "mixed") if tabular else "files"
    if tabular and len(tabular) != len(files):
        fmt = "mixed"
    schema_digest = profile_digest = None
    rows: int | None = None
    if tabular and schema is not None:
        schema_digest = blobs.put_bytes(json.dumps(_schema_doc(schema, fmt), sort_keys=True).encode())
        if profile:
            from modelyard.data._profile import ProfileBuilder

            builder = ProfileBuilder()
            for p, r, f in tabular:
                for batch in iter_file_batches(TabularSource(p, f, r), dictionary_strings=True):
                    builder.add(batch)
            prof = builder.result()
            rows = prof.rows
            profile_digest = blobs.put_bytes(prof.to_json().encode())
    return PreparedVersion(
        name,
        manifest=manifest,
        schema_digest=schema_digest,
        profile_digest=profile_digest,
        fmt=fmt,
        files=len(entries),
        rows=rows,
        size=total,
        source=source_label or str(path.resolve()),
        description=description,
        run_id=run_id,
    )


def _schema_doc(schema: Any, fmt: str) -> dict[str, Any]:
    return {
        "type": "modelyard.schema",
        "format": fmt,
        "columns": [{"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)} for f in schema],
    }


def _store_files(
    blobs: BlobStore, files: list[Any], rels: list[str], stats: list[os.stat_result] | None
) -> list[ManifestEntry]:
    if len(files) == 1:
        digest, size = blobs.put_file(files[0])
        return [ManifestEntry(rels[0], digest, size, stat.S_IMODE(os.stat(files[0]).st_mode))]
    return blobs.put_files(list(zip(files, rels, strict=True)), stats=stats)


def _hashed_entries(
    files: list[Any], rels: list[str], stats: list[os.stat_result] | None
) -> list[ManifestEntry]:
    """Manifest entries of local files by hashing them (what storing them would record)."""
    from modelyard.blobs import hash_file

    out = []
    for i, (p, rel) in enumerate(zip(files, rels, strict=True)):
        st = stats[i] if stats is not None else os.stat(p)
        out.append(ManifestEntry(rel, hash_file(p), st.st_size, stat.S_IMODE(st.st_mode)))
    return out


def _write_parquet(frame: Any, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    mod = type(frame).__module__
    if mod.startswith("polars"):
        table = frame.to_arrow()
    elif mod.startswith("pandas"):
        table = pa.Table.from_pandas(frame, preserve_index=False)
    elif isinstance(frame, pa.RecordBatch):
        table = pa.Table.from_batches([frame])
    else:
        table = frame
    # fixed writer settings: the same frame gives the same bytes, so re-adding it is a no-op
    pq.write_table(table, path, compression="zstd", write_statistics=True, store_schema=True)
