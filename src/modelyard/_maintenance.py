"""Store health: ``yard doctor`` (verify every blob and reference) and ``yard gc`` (sweep).

Blobs are referenced from metadata rows. :data:`BLOB_REFERENCES` is the visible table of
``(table, digest column)`` pairs that point at blobs; every feature that stores blobs adds its
pair here. A referenced blob that is a manifest keeps every blob it lists alive too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from modelyard._workspace import Workspace, get_workspace

__all__ = ["BLOB_REFERENCES", "DoctorReport", "GcReport", "doctor", "gc", "referenced_digests"]

#: (table, column) pairs whose values are blob digests. Features append to this list.
BLOB_REFERENCES: list[tuple[str, str]] = [
    ("artifacts", "digest"),
    # registry: a model version's manifest (model files, yard-model.json, input example)
    ("model_versions", "manifest_digest"),
    # serving: Parquet segments of the prediction log
    ("prediction_log_segments", "digest"),
]

_MANIFEST_PREFIX = b'{"entries":['


def _roots(ws: Workspace) -> set[str]:
    out: set[str] = set()
    with ws.store.read() as conn:
        insp = sa.inspect(conn)
        for table, column in BLOB_REFERENCES:
            if not insp.has_table(table):
                continue
            t = sa.table(table, sa.column(column))
            out.update(r[0] for r in conn.execute(sa.select(t.c[column]).distinct()) if r[0])
    return out


def _children(ws: Workspace, digest: str) -> list[str]:
    """Digests listed by ``digest`` when it is a manifest, else nothing."""
    blobs = ws.blobs
    try:
        if blobs.is_local:
            path = blobs.local_path(digest)
            with open(path, "rb") as f:
                head = f.read(len(_MANIFEST_PREFIX))
        else:
            head = blobs.read_bytes(digest)[: len(_MANIFEST_PREFIX)]
    except (OSError, Exception):
        return []
    if head != _MANIFEST_PREFIX:
        return []
    try:
        return [e.digest for e in blobs.read_manifest(digest)]
    except Exception:
        return []


def referenced_digests(ws: Workspace) -> tuple[set[str], set[str]]:
    """``(live digests, referenced-but-missing digests)``, following manifests."""
    live: set[str] = set()
    missing: set[str] = set()
    frontier = list(_roots(ws))
    while frontier:
        d = frontier.pop()
        if d in live or d in missing:
            continue
        if not ws.blobs.exists(d):
            missing.add(d)
            continue
        live.add(d)
        frontier.extend(_children(ws, d))
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


def doctor(uri: str | Workspace | None = None, *, on_progress: Callable[[int, int], None] | None = None) -> DoctorReport:
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


def gc(uri: str | Workspace | None = None, *, grace_seconds: float = 3600.0, dry_run: bool = False, purge_runs: bool = True) -> GcReport:
    """Purge soft-deleted runs, then remove blobs nothing references.

    Blobs younger than ``grace_seconds`` are kept: a writer may have stored them and not yet
    recorded the row that references them.
    """
    from modelyard.tracking._service import TrackingService

    ws = get_workspace(uri)
    report = GcReport(dry_run=dry_run)
    if purge_runs and not dry_run:
        report.runs_purged = TrackingService(ws).purge_deleted_runs()
    live, _ = referenced_digests(ws)
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
