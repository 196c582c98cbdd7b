"""``yard gc`` and ``yard doctor``: sweeping unreferenced blobs and verifying the store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import modelyard as yard
from modelyard._maintenance import BLOB_REFERENCES, doctor, gc, referenced_digests
from modelyard.tracking import TrackingService


def _folder(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    root = tmp_path / name
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def test_gc_keeps_referenced_blobs_and_files_inside_manifests(workspace, tmp_path: Path) -> None:
    kept_folder = _folder(tmp_path, "kept", {"a.bin": b"kept-a", "sub/b.bin": b"kept-b"})
    gone_folder = _folder(tmp_path, "gone", {"c.bin": b"gone-c"})
    with yard.start_run(experiment="e", capture_env=False) as keep:
        k = keep.log_artifact(kept_folder)
        keep.log_text("kept file", "notes.txt")
    with yard.start_run(experiment="e", capture_env=False) as drop:
        g = drop.log_artifact(gone_folder)
        drop.log_text("kept file", "same-bytes.txt")  # shares its blob with the kept run
    orphan = workspace.blobs.put_bytes(b"nobody points at me")
    live, missing = referenced_digests(workspace)
    kept_entries = {e.digest for e in workspace.blobs.read_manifest(k.digest)}
    assert kept_entries <= live and k.digest in live and orphan not in live and not missing

    # within the grace period nothing is removed
    report = gc(workspace, grace_seconds=3600)
    assert report.blobs_removed == 0 and workspace.blobs.exists(orphan)

    yard.delete_run(drop.id)
    dry = gc(workspace, grace_seconds=0, dry_run=True)
    assert (
        dry.dry_run and dry.runs_purged == 0 and dry.blobs_removed == 1
    )  # only the orphan: drop not purged yet
    assert workspace.blobs.exists(orphan)

    gone_entries = {e.digest for e in workspace.blobs.read_manifest(g.digest)}
    report = gc(workspace, grace_seconds=0)
    assert report.runs_purged == 1
    assert report.blobs_removed == 1 + 1 + len(gone_entries)  # orphan, gone manifest, its file
    assert not workspace.blobs.exists(orphan) and not workspace.blobs.exists(g.digest)
    assert not any(workspace.blobs.exists(d) for d in gone_entries)
    for d in kept_entries | {k.digest}:
        assert workspace.blobs.verify(d)
    # the kept run reads back whole
    out = TrackingService(workspace).download_artifact(keep.id, "kept", tmp_path / "out")
    assert (out / "sub" / "b.bin").read_bytes() == b"kept-b"
    assert (
        TrackingService(workspace).download_artifact(keep.id, "notes.txt", tmp_path)
    ).read_text() == "kept file"
    assert doctor(workspace).healthy


def test_gc_removes_old_temp_files_only(workspace) -> None:
    tmp_dir = workspace.blobs.local_path("0" * 64).parents[2] / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    old, new = tmp_dir / "old.part", tmp_dir / "new.part"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (1, 1))
    report = gc(workspace, grace_seconds=600)
    assert report.temp_files_removed == 1 and not old.exists() and new.exists()


def test_doctor_reports_corrupt_and_missing_blobs(workspace, tmp_path: Path) -> None:
    with yard.start_run(experiment="e", capture_env=False) as run:
        a = run.log_text("good", "good.txt")
        b = run.log_text("will be damaged", "bad.txt")
        c = run.log_text("will vanish", "gone.txt")
    report = doctor(workspace)
    assert report.healthy and report.blobs_checked == 3 and report.unreferenced == 0
    p = workspace.blobs.local_path(b.digest)
    os.chmod(p, 0o644)
    p.write_bytes(b"will be DAMAGED")
    workspace.blobs.delete(c.digest)
    workspace.blobs.put_bytes(b"orphan")
    report = doctor(workspace)
    assert not report.healthy
    assert report.corrupt == [b.digest] and report.missing == [c.digest] and report.unreferenced == 1
    d = report.to_dict()
    assert d["healthy"] is False and d["corrupt"] == [b.digest] and d["missing"] == [c.digest]
    assert d["blobs_checked"] == 3
    # reading the damaged artifact is an IntegrityError
    import pytest

    from modelyard.errors import IntegrityError

    with pytest.raises(IntegrityError):
        TrackingService(workspace).download_artifact(run.id, "bad.txt", tmp_path)
    assert workspace.blobs.read_bytes(a.digest) == b"good"


def test_blob_references_table_is_visible() -> None:
    assert ("artifacts", "digest") in BLOB_REFERENCES


def test_gc_and_doctor_on_an_fsspec_blob_store(tmp_path: Path) -> None:
    import uuid

    ws = yard.Workspace(str(tmp_path / "s"), blob_uri=f"memory://gc-{uuid.uuid4().hex}").open()
    try:
        folder = _folder(tmp_path, "m", {"x.bin": b"x", "y/z.bin": b"z"})
        with yard.start_run(experiment="e", uri=ws, capture_env=False) as run:
            art = run.log_artifact(folder)
        orphan = ws.blobs.put_bytes(b"orphan")
        assert gc(ws, grace_seconds=3600).blobs_removed == 0
        report = gc(ws, grace_seconds=0)
        assert report.blobs_removed == 1 and not ws.blobs.exists(orphan)
        assert all(ws.blobs.verify(e.digest) for e in ws.blobs.read_manifest(art.digest))
        d = doctor(ws)
        assert d.healthy and d.blobs_checked == 3 and d.unreferenced == 0
        assert run.download_artifact("m", tmp_path / "out").joinpath("y", "z.bin").read_bytes() == b"z"
    finally:
        ws.close()


def test_empty_folder_artifact(workspace, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with yard.start_run(experiment="e", capture_env=False) as run:
        art = run.log_artifact(tmp_path / "empty")
    assert art.kind == "dir" and art.size == 0 and workspace.blobs.read_manifest(art.digest) == []
    assert gc(workspace, grace_seconds=0).blobs_removed == 0 and workspace.blobs.exists(art.digest)


def test_gc_refuses_to_sweep_when_a_manifest_is_damaged(workspace, tmp_path: Path) -> None:
    import json

    import pytest

    from modelyard.errors import IntegrityError

    folder = _folder(tmp_path, "m", {"a.bin": b"aaa", "b.bin": b"bbb"})
    with yard.start_run(experiment="e", capture_env=False) as run:
        art = run.log_artifact(folder)
    entries = workspace.blobs.read_manifest(art.digest)
    p = workspace.blobs.local_path(art.digest)
    doc = json.loads(p.read_bytes())
    doc["entries"][0]["size"] += 1  # one flipped value: the manifest no longer matches its digest
    os.chmod(p, 0o644)
    p.write_bytes(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    with pytest.raises(
        IntegrityError,
        match=rf"yard gc stopped: 1 referenced manifest\(s\) are damaged \({art.digest[:12]}….*Run `yard "
        rf"doctor`",
    ):
        gc(workspace, grace_seconds=0)
    assert all(workspace.blobs.exists(e.digest) for e in entries)  # nothing was swept
    report = doctor(workspace)
    assert report.corrupt == [art.digest] and not report.healthy


def test_gc_between_a_dedup_hit_and_its_row_keeps_the_blob(workspace, tmp_path: Path) -> None:
    import time

    from modelyard.data import DataService, PreparedVersion

    f = tmp_path / "labels.bin"
    f.write_bytes(b"label " * 100)
    blob, _ = workspace.blobs.put_file(f)  # stored long ago, unreferenced since (say its run was purged)
    old = time.time() - 7200
    os.utime(workspace.blobs.local_path(blob), (old, old))
    svc = DataService(workspace)
    prepared = svc.prepare(f, "labels")  # `add`'s first half: the blobs are written, no row yet
    assert isinstance(prepared, PreparedVersion)
    sweep = gc(workspace, grace_seconds=3600, purge_runs=False)  # a gc runs in between
    v = svc.commit(prepared)
    assert v.created and sweep.blobs_removed == 0 and workspace.blobs.exists(blob)
    assert svc.manifest(v)[0].digest == blob
    report = doctor(workspace)
    assert report.healthy and report.missing == []


def _dataset_with_files(workspace, tmp_path: Path):  # type: ignore[no-untyped-def]
    from modelyard.data import DataService

    folder = _folder(tmp_path, "ds", {"a.bin": b"aaa", "b.bin": b"bbb"})
    svc = DataService(workspace)
    v = svc.add(folder, "ds")
    return v, svc.manifest(v)


def test_gc_stops_when_a_referenced_manifest_cannot_be_read(workspace, tmp_path: Path, monkeypatch) -> None:
    import pytest

    from modelyard.errors import IntegrityError

    v, entries = _dataset_with_files(workspace, tmp_path)
    p = workspace.blobs.local_path(v.manifest_digest)
    os.chmod(p, 0o644)
    p.unlink()
    p.mkdir()  # still there, but reading it fails (as an I/O error or a permission problem would)
    with pytest.raises(
        IntegrityError,
        match=rf"^yard gc stopped: 1 referenced manifest\(s\) are damaged \({v.manifest_digest[:12]}…\)",
    ):
        gc(workspace, grace_seconds=0)
    assert all(workspace.blobs.exists(e.digest) for e in entries)


def test_gc_stops_when_a_dataset_manifest_is_replaced_by_other_bytes(workspace, tmp_path: Path) -> None:
    import pytest

    from modelyard.errors import IntegrityError

    v, entries = _dataset_with_files(workspace, tmp_path)
    p = workspace.blobs.local_path(v.manifest_digest)
    os.chmod(p, 0o644)
    p.write_bytes(b"not a manifest at all")  # does not even start like one
    with pytest.raises(
        IntegrityError,
        match=rf"^yard gc stopped: 1 referenced manifest\(s\) are damaged \({v.manifest_digest[:12]}…\)",
    ):
        gc(workspace, grace_seconds=0)
    assert all(workspace.blobs.exists(e.digest) for e in entries)


def test_gc_treats_a_file_artifact_as_a_file_whatever_its_bytes(workspace, tmp_path: Path) -> None:
    """Only manifest references (and dir artifacts) are read as manifests: a logged JSON file
    that starts like one is a file, neither "damaged" (blocking gc) nor keeping blobs alive."""
    orphan = workspace.blobs.put_bytes(b"nobody points at me")
    fake = {
        "entries": [{"digest": orphan, "mode": 420, "path": "x", "size": 19}],
        "type": "modelyard.manifest",
    }
    with yard.start_run(experiment="e", capture_env=False) as run:
        looks_like = run.log_text('{"entries":[1, 2, "not a manifest"]}', "odd.json")
        real_manifest = run.log_text(
            json.dumps(fake, sort_keys=True, separators=(",", ":")), "copy-of-a-manifest.json"
        )
    assert looks_like.kind == real_manifest.kind == "file"
    assert workspace.blobs.manifest_children(real_manifest.digest) == [orphan]  # it reads as one when asked
    report = gc(workspace, grace_seconds=0, purge_runs=False)
    assert report.blobs_removed == 1 and not workspace.blobs.exists(orphan)
    assert workspace.blobs.exists(looks_like.digest) and workspace.blobs.exists(real_manifest.digest)
    assert doctor(workspace).healthy
