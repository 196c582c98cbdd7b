"""The content-addressed blob store: dedup, atomic publish, verified reads, manifests, fsspec."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from modelyard.blobs import BlobStore, ManifestEntry, hash_bytes, hash_file, is_digest, manifest_bytes
from modelyard.errors import BlobError, BlobNotFoundError, IntegrityError, InvalidArgumentError


@pytest.fixture(params=["local", "memory", "fsspec-local"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    """Every store contract test runs on both backends: the local folder (LocalBackend) and
    fsspec (FsspecBackend), in memory and on a real filesystem (``local://`` is fsspec's)."""
    if request.param == "local":
        return BlobStore(tmp_path / "blobs")
    if request.param == "memory":
        return BlobStore(f"memory://yard-test-{uuid.uuid4().hex}")
    store = BlobStore(f"local://{tmp_path}/fs-blobs")
    assert type(store.backend).__name__ == "FsspecBackend" and not store.is_local
    return store


def _corrupt(store: BlobStore, digest: str, data: bytes) -> None:
    if store.is_local:
        p = store.local_path(digest)
        os.chmod(p, 0o644)
        p.write_bytes(data)
    else:
        store.backend.fs.pipe_file(store.backend.path(digest), data)  # type: ignore[attr-defined]


def test_put_and_read_roundtrip(blobs: BlobStore, tmp_path: Path) -> None:
    d = blobs.put_bytes(b"hello")
    assert d == hash_bytes(b"hello") and is_digest(d)
    assert blobs.exists(d) and blobs.read_bytes(d) == b"hello" and blobs.size(d) == 5
    assert blobs.open(d).read() == b"hello"
    f = tmp_path / "f.bin"
    f.write_bytes(os.urandom(10_000))
    d2, size = blobs.put_file(f)
    assert size == 10_000 and d2 == hash_file(f)
    out = blobs.get_file(d2, tmp_path / "out" / "f.bin")
    assert out.read_bytes() == f.read_bytes()
    assert set(blobs.iter_digests()) == {d, d2}
    assert blobs.verify(d) and blobs.verify(d2)


def test_identical_bytes_are_stored_once(blobs: BlobStore, tmp_path: Path) -> None:
    a = blobs.put_bytes(b"same bytes")
    f = tmp_path / "same.txt"
    f.write_bytes(b"same bytes")
    b, _ = blobs.put_file(f)
    c = blobs.put_bytes(b"same bytes")
    assert a == b == c
    assert list(blobs.iter_digests()) == [a]


def test_large_file_hash_uses_mmap_path(tmp_path: Path) -> None:
    f = tmp_path / "big.bin"
    data = os.urandom(9 * 1024 * 1024)
    f.write_bytes(data)
    assert hash_file(f) == hash_bytes(data)


def test_local_publish_is_atomic_and_read_only(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = store.put_bytes(b"x" * 1000)
    p = store.local_path(d)
    assert p.parent.name == d[:2] and p.name == d[2:]
    assert (p.stat().st_mode & 0o777) == 0o444
    assert store.stale_temp_files() == []  # the temp file was renamed, not left behind
    # a crashed writer's leftovers live in tmp/, never under objects/
    (tmp_path / "blobs" / "tmp" / "dead.part").write_bytes(b"partial")
    assert list(store.iter_digests()) == [d]
    assert [t.name for t in store.stale_temp_files()] == ["dead.part"]


def test_corrupt_blob_raises_integrity_error(blobs: BlobStore, tmp_path: Path) -> None:
    d = blobs.put_bytes(b"precious model weights")
    _corrupt(blobs, d, b"tampered model weights")
    with pytest.raises(
        IntegrityError, match=rf"Blob {d[:12]}… .* does not match its digest.*`yard doctor` lists"
    ):
        blobs.read_bytes(d)
    with pytest.raises(IntegrityError):
        blobs.get_file(d, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    assert not blobs.verify(d)


def test_missing_blob(blobs: BlobStore, tmp_path: Path) -> None:
    d = hash_bytes(b"never stored")
    with pytest.raises(BlobNotFoundError, match=r"is missing from .*run `yard doctor`"):
        blobs.read_bytes(d)
    with pytest.raises(BlobNotFoundError):
        blobs.get_file(d, tmp_path / "x")
    with pytest.raises(BlobNotFoundError):
        blobs.size(d)
    assert not blobs.verify(d) and not blobs.exists(d)


def test_bad_digest_and_bad_sources(blobs: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="is not a blob digest"):
        blobs.read_bytes("../../etc/passwd")
    with pytest.raises(BlobError, match="does not exist"):
        blobs.put_file(tmp_path / "nope")
    with pytest.raises(BlobError, match="is not a directory"):
        blobs.put_tree(tmp_path / "nope")


def test_tree_roundtrip_with_modes(blobs: BlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    (src / "top.txt").write_text("top")
    (src / "a" / "b" / "deep.bin").write_bytes(os.urandom(500))
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o755)
    for i in range(20):  # more than 16 files: the parallel path
        (src / "a" / f"f{i}.txt").write_text(str(i))
    d, total = blobs.put_tree(src, note="hi")
    entries = blobs.read_manifest(d)
    assert [e.path for e in entries] == sorted(e.path for e in entries)
    assert total == sum(e.size for e in entries)
    assert blobs.manifest_meta(d) == {"note": "hi"}
    out = blobs.get_tree(d, tmp_path / "out")
    for p in src.rglob("*"):
        if p.is_file():
            q = out / p.relative_to(src)
            assert q.read_bytes() == p.read_bytes()
    assert (out / "run.sh").stat().st_mode & 0o777 == 0o755
    # the same tree stores the same manifest
    assert blobs.put_tree(src, note="hi")[0] == d


def test_get_tree_with_hard_links(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "src"
    src.mkdir()
    (src / "w.bin").write_bytes(b"w" * 100)
    d, _ = store.put_tree(src)
    out = store.get_tree(d, tmp_path / "out", link=True)
    assert (out / "w.bin").read_bytes() == b"w" * 100


@pytest.mark.parametrize("bad", ["../escape.txt", "/etc/passwd", "a/../../b"])
def test_get_tree_rejects_unsafe_paths(blobs: BlobStore, tmp_path: Path, bad: str) -> None:
    d_file = blobs.put_bytes(b"evil")
    m = blobs.put_manifest([ManifestEntry(path=bad, digest=d_file, size=4)])
    with pytest.raises(IntegrityError, match=r"has an unsafe path"):
        blobs.get_tree(m, tmp_path / "out" / "inner")
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "out" / "escape.txt").exists()


def test_read_manifest_of_a_non_manifest(blobs: BlobStore) -> None:
    d = blobs.put_bytes(b"plain bytes")
    with pytest.raises(BlobError, match="is not a manifest"):
        blobs.read_manifest(d)
    d2 = blobs.put_bytes(json.dumps({"type": "other"}).encode())
    with pytest.raises(BlobError, match="is not a manifest"):
        blobs.read_manifest(d2)


def test_delete_and_mtime(blobs: BlobStore) -> None:
    d = blobs.put_bytes(b"gone soon")
    assert blobs.mtime(d) >= 0
    blobs.delete(d)
    assert not blobs.exists(d)
    blobs.delete(d)  # deleting twice is fine


def test_memory_store_through_a_workspace(tmp_path: Path) -> None:
    import modelyard as yard

    blob_uri = f"memory://yard-ws-{uuid.uuid4().hex}"
    ws = yard.Workspace(str(tmp_path / "s"), blob_uri=blob_uri).open()
    try:
        f = tmp_path / "model.bin"
        f.write_bytes(b"weights")
        with yard.start_run(experiment="e", uri=ws, capture_env=False) as run:
            art = run.log_artifact(f)
        assert not ws.blobs.is_local
        assert ws.blobs.read_bytes(art.digest) == b"weights"
        assert run.download_artifact("model.bin", tmp_path / "dl").read_bytes() == b"weights"
    finally:
        ws.close()


def test_manifest_children(blobs: BlobStore, tmp_path: Path) -> None:
    a, b = blobs.put_bytes(b"a"), blobs.put_bytes(b"b")
    m = blobs.put_manifest([ManifestEntry("y/b.txt", b, 1), ManifestEntry("a.txt", a, 1)])
    assert blobs.manifest_children(m) == [a, b]  # in path order
    assert blobs.manifest_children(blobs.put_manifest([])) == []
    with pytest.raises(BlobError, match=rf"^Blob {a[:12]}… is not a manifest\.$"):
        blobs.manifest_children(a)
    gone = hash_bytes(b"never stored")
    with pytest.raises(BlobNotFoundError, match=rf"^Blob {gone[:12]}… is missing from "):
        blobs.manifest_children(gone)
    _corrupt(blobs, m, manifest_bytes([ManifestEntry("a.txt", b, 1)]))
    with pytest.raises(
        IntegrityError, match=rf"^Blob {m[:12]}… in BlobStore\(.*\) does not match its digest"
    ):
        blobs.manifest_children(m)
    with pytest.raises(InvalidArgumentError, match="is not a blob digest"):
        blobs.manifest_children("../etc/passwd")


def test_manifest_children_of_an_unreadable_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    m = store.put_manifest([ManifestEntry("a.txt", store.put_bytes(b"a"), 1)])
    p = store.local_path(m)
    os.chmod(p, 0o644)
    p.unlink()
    p.mkdir()  # present, but reading it fails
    assert store.exists(m)
    with pytest.raises(
        BlobError, match=rf"^Cannot read blob {m[:12]}… in BlobStore\('.*/blobs'\): Is a directory\.$"
    ):
        store.manifest_children(m)
