"""Store health: ``yard doctor`` (verify every blob and reference) and ``yard gc`` (sweep).

Blobs are referenced from metadata rows. :data:`BLOB_REFERENCES` is the visible table of
``(table, digest column)`` pairs that point at blobs; every feature that stores blobs adds its
pair here. A referenced manifest (a column in :data:`MANIFEST_REFERENCES`, or a ``dir``
artifact) keeps every blob it lists alive too; any other blob is a file, whatever its bytes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from modelyard._workspace import Workspace, get_workspace
from modelyard.errors import IntegrityError

__all__ = [
    "BLOB_REFERENCES",
    "MANIFEST_REFERENCES",
    "DoctorReport",
    "GcReport",
    "doctor",
    "gc",
    "referenced_digests",
]

#: (table, column) pairs whose values are blob digests. Features append to this list.
BLOB_REFERENCES: list[tuple[str, str]] = [
    ("artifacts", "digest"),
    # registry: a model version's manifest (model files, yard-model.json, input example)
    ("model_versions", "manifest_digest"),
    # data: dataset versions (manifest, schema and profile blobs)
    ("dataset_versions", "manifest_digest"),
    ("dataset_versions", "schema_digest"),
    ("dataset_versions", "profile_digest"),
    # pipelines: step outputs (manifest digests) in the cache index (step runs hold them as artifacts)
    ("pipeline_cache", "output_digest"),
    # serving: Parquet segments of the prediction log
    ("prediction_log_segments", "digest"),
]
# monitoring: stored JSON reports and reference profiles
BLOB_REFERENCES += [("monitor_runs", "report_digest"), ("monitor_references", "profile_digest")]

#: Reference columns that always hold a manifest digest (plus ``artifacts.digest`` of kind
#: ``dir``). Such a blob that cannot be read as a manifest is damage, never "a plain file".
MANIFEST_REFERENCES: set[tuple[str, str]] = {
    ("model_versions", "manifest_digest"),
    ("dataset_versions", "manifest_digest"),
    ("pipeline_cache", "output_digest"),
}


def _roots(ws: Workspace) -> tuple[set[str], set[str]]:
    """``(every referenced digest, the ones known to be manifests)``."""
    out: set[str] = set()
    manifests: set[str] = set()
    with ws.store.read() as conn:
        insp = sa.inspect(conn)
        for table, column in BLOB_REFERENCES:
            if not insp.has_table(table):
                continue
            t = sa.table(table, sa.column(column))
            found = {r[0] for r in conn.execute(sa.select(t.c[column]).distinct()) if r[0]}
            out.update(found)
            if (table, column) in MANIFEST_REFERENCES:
                manifests.update(found)
        if insp.has_table("artifacts"):
            t = sa.table("artifacts", sa.column("digest"), sa.column("kind"))
            manifests.update(
                r[0] for r in conn.execute(sa.select(t.c.digest).where(t.c.kind == "dir").distinct()) if r[0]
            )
    return out, manifests


class _DamagedManifest(Exception):
    """A referenced blob that is (or may be) a manifest cannot be read and verified."""


def _children(ws: Workspace, digest: str, *, manifest: bool) -> list[str]:
    """Digests listed by ``digest`` when it is a manifest (``manifest``: a digest from
    :data:`MANIFEST_REFERENCES` or a ``dir`` artifact), else nothing: other blobs are files.

    Raises FileNotFoundError when the blob is gone, and _DamagedManifest when a manifest cannot be
    read, does not verify or is not a manifest (treating it as "no children" would sweep the files
    it lists).
    """
    from modelyard.errors import BlobNotFoundError

    if not manifest:
        return []
    try:
        return ws.blobs.manifest_children(digest)
    except BlobNotFoundError:
        raise FileNotFoundError(digest) from None
    except Exception as exc:
        raise _DamagedManifest(digest) from exc


def _walk(ws: Workspace) -> tuple[set[str], set[str], set[str]]:
    """``(live, referenced-but-missing, damaged manifests)``, following manifests."""
    live: set[str] = set()
    missing: set[str] = set()
    damaged: set[str] = set()
    roots, manifests = _roots(ws)
    frontier = list(roots)
    while frontier:
        d = frontier.pop()
        if d in live or d in missing:
            continue
        if not ws.blobs.exists(d):
            missing.add(d)
            continue
        live.add(d)
        try:
            frontier.extend(_children(ws, d, manifest=d in manifests))
        except FileNotFoundError:
            live.discard(d)
            missing.add(d)
        except _DamagedManifest:
            damaged.add(d)
    return live, missing, damaged


def referenced_digests(ws: Workspace) -> tuple[set[str], set[str]]:
    """``(live digests, referenced-but-missing digests)``, following manifests."""
    live, missing, _ = _walk(ws)
    return live, missing


@dataclass
class DoctorReport:
    """What ``yard doctor`` found."""

    blobs_checked: int = 0
    bytes_checked: int = 0
    corrupt: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stale_temp_files: int = 0
    unreferenced: int = 0
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.corrupt and not self.missing

    def to_dict(self) -> dict[str, object]:
        return {
            "healthy": self.healthy,
            "blobs_checked": self.blobs_checked,
            "bytes_checked": self.bytes_checked,
            "corrupt": self.corrupt,
            "missing": self.missing,
            "stale_temp_files": self.stale_temp_files,
            "unreferenced": self.unreferenced,
            "seconds": round(self.seconds, 3),
        }


def doctor(
    uri: str | Workspace | None = None, *, on_progress: Callable[[int, int], None] | None = None
) -> DoctorReport:
    """Verify every blob against its digest and every reference against the blob store."""
    ws = get_workspace(uri)
    t0 = time.perf_counter()
    report = DoctorReport()
    digests = list(ws.blobs.iter_digests())
    total = len(digests)

    def check(d: str) -> tuple[str, bool, int]:
        try:
            size = ws.blobs.size(d)
        except Exception:
            size = 0
        return d, ws.blobs.verify(d), size

    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        for i, (d, ok, size) in enumerate(pool.map(check, digests), 1):
            report.blobs_checked += 1
            report.bytes_checked += size
            if not ok:
                report.corrupt.append(d)
            if on_progress:
                on_progress(i, total)
    live, missing = referenced_digests(ws)
    report.missing = sorted(missing)
    report.unreferenced = len(set(digests) - live)
    report.stale_temp_files = len(ws.blobs.stale_temp_files())
    report.seconds = time.perf_counter() - t0
    return report


@dataclass
class GcReport:
    """What ``yard gc`` removed (or would remove with ``dry_run``)."""

    runs_purged: int = 0
    blobs_removed: int = 0
    bytes_removed: int = 0
    temp_files_removed: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def gc(
    uri: str | Workspace | None = None,
    *,
    grace_seconds: float = 3600.0,
    dry_run: bool = False,
    purge_runs: bool = True,
) -> GcReport:
    """Purge soft-deleted runs, then remove blobs nothing references.

    Blobs younger than ``grace_seconds`` are kept: a writer may have stored them and not yet
    recorded the row that references them.
    """
    from modelyard.tracking._service import TrackingService

    ws = get_workspace(uri)
    report = GcReport(dry_run=dry_run)
    if purge_runs and not dry_run:
        report.runs_purged = TrackingService(ws).purge_deleted_runs()
    if not dry_run and ws.remote is None:
        ws.store.refresh_statistics()  # PostgreSQL: plans after bulk loads and purges (autovacuum off)
    live, _, damaged = _walk(ws)
    if damaged and not dry_run:
        # the files a damaged manifest lists cannot be told apart from garbage: deleting now would
        # make restoring the manifest from a backup useless
        raise IntegrityError(
            f"yard gc stopped: {len(damaged)} referenced manifest(s) are damaged "
            f"({', '.join(sorted(d[:12] for d in damaged))}…), "
            "so the files they list cannot be told apart from garbage. Run `yard doctor`, restore or re-log "
            "those artifacts, then run `yard gc` again."
        )
    cutoff = time.time() - grace_seconds
    for d in _unreferenced(ws, live):
        try:
            if ws.blobs.mtime(d) > cutoff:
                continue
            size = ws.blobs.size(d)
        except FileNotFoundError:
            continue
        report.blobs_removed += 1
        report.bytes_removed += size
        if not dry_run:
            ws.blobs.delete(d)
    for tmp in ws.blobs.stale_temp_files():
        try:
            if tmp.stat().st_mtime <= cutoff:
                report.temp_files_removed += 1
                if not dry_run:
                    tmp.unlink()
        except FileNotFoundError:
            pass
    return report


def _unreferenced(ws: Workspace, live: set[str]) -> Iterable[str]:
    return [d for d in ws.blobs.iter_digests() if d not in live]
