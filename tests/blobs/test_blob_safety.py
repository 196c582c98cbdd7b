"""Nothing stored can be corrupted or leaked from outside: materialized files are copies, links
never lead out of a stored folder or into a destination, modes never widen, and the stat cache
notices an in-place rewrite."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from modelyard.blobs import BlobStore, ManifestEntry, hash_file
from modelyard.blobs._walk import walk
from modelyard.errors import BlobError, IntegrityError, InvalidArgumentError


def _old(*paths: Path) -> None:
    t = time.time() - 10  # out of the stat cache's racy window
    for p in paths:
        os.utime(p, (t, t))


def _tree(store: BlobStore, tmp_path: Path, files: dict[str, bytes]) -> str:
    src = tmp_path / "src"
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    return store.put_tree(src)[0]


@pytest.mark.parametrize("size", [100, 2 * 1024 * 1024])  # a small file, and one taken by the kernel copy
def test_materialized_files_are_copies_editing_them_leaves_the_blob_intact(tmp_path: Path, size: int) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = _tree(store, tmp_path, {"w.bin": os.urandom(size)})
    blob = store.local_path(store.read_manifest(d)[0].digest)
    out = store.get_tree(d, tmp_path / "out")
    f = out / "w.bin"
    assert f.stat().st_ino != blob.stat().st_ino
    with open(f, "r+b") as fh:  # edit in place, as root would despite any read-only mode
        fh.write(b"EDITED")
    assert store.verify(store.read_manifest(d)[0].digest)
    linked = store.get_tree(d, tmp_path / "linked", link=True)  # on request only
    assert (linked / "w.bin").stat().st_ino == blob.stat().st_ino


def test_get_file_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = store.put_bytes(b"payload")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    dest = tmp_path / "dl"
    dest.mkdir()
    (dest / "model.bin").symlink_to(victim)
    with pytest.raises(
        BlobError,
        match=r"^Refused to write '.*/dl/model.bin': it is a symbolic link \(to '.*victim.txt'\) and a "
        r"download never writes through a link\. Remove the link or choose another destination\.$",
    ):
        store.get_file(d, dest / "model.bin")
    assert victim.read_bytes() == b"precious"
    assert sorted(p.name for p in dest.iterdir()) == ["model.bin"]  # no .part file left


def test_get_tree_refuses_a_symlinked_folder_in_the_destination(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = _tree(store, tmp_path, {"a.txt": b"a", "sub/evil.sh": b"echo owned"})
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(
        BlobError,
        match=r"^Refused to write '.*/out/sub/evil.sh': '.*/out/sub' is a symbolic link \(to "
        r"'.*outside'\) and a download never writes through a link",
    ):
        store.get_tree(d, dest)
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in dest.iterdir()) == ["sub"]  # checked before anything was written


def test_get_tree_never_applies_setuid_setgid_or_world_write_from_a_manifest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    d_file = store.put_bytes(b"#!/bin/sh\n")
    m = store.put_manifest(
        [ManifestEntry("tool", d_file, 10, 0o6777), ManifestEntry("dir/x", d_file, 10, 0o1666)]
    )
    old = os.umask(0)  # show it is the mask, not the umask, that drops the bits
    try:
        out = store.get_tree(m, tmp_path / "out")
    finally:
        os.umask(old)
    assert (out / "tool").stat().st_mode & 0o7777 == 0o775
    assert (out / "dir" / "x").stat().st_mode & 0o7777 == 0o664


def test_blobs_and_copies_are_never_more_readable_than_the_source(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "src"
    src.mkdir()
    for name, mode in (("secret.key", 0o600), ("team.csv", 0o640), ("public.txt", 0o644)):
        (src / name).write_bytes(name.encode() * 10)
        os.chmod(src / name, mode)
    big = src / "big.key"
    big.write_bytes(os.urandom(2 * 1024 * 1024))
    os.chmod(big, 0o600)
    d, _ = store.put_tree(src)
    modes = {e.path: store.local_path(e.digest).stat().st_mode & 0o777 for e in store.read_manifest(d)}
    assert modes == {"secret.key": 0o400, "team.csv": 0o440, "public.txt": 0o444, "big.key": 0o400}
    many = tmp_path / "many"  # more than 16 files: the threaded small-file path
    many.mkdir()
    for i in range(20):
        (many / f"{i}.key").write_bytes(f"secret {i}".encode())
        os.chmod(many / f"{i}.key", 0o600)
    d2, _ = store.put_tree(many)
    assert {store.local_path(e.digest).stat().st_mode & 0o777 for e in store.read_manifest(d2)} == {0o400}
    out = store.get_tree(d, tmp_path / "out")
    assert (out / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (out / "team.csv").stat().st_mode & 0o777 == 0o640


def test_walk_refuses_links_out_of_the_folder_and_follows_links_inside(tmp_path: Path) -> None:
    root = tmp_path / "data"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.csv").write_text("x\n1\n")
    (root / "alias.csv").symlink_to(root / "real" / "a.csv")  # inside: followed
    (root / "latest").symlink_to("real")
    assert [rel for _, rel, _ in walk(root)] == ["alias.csv", "latest/a.csv", "real/a.csv"]
    (root / "etc").symlink_to("/etc")
    (root / "passwd").symlink_to("/etc/passwd")
    with pytest.raises(
        InvalidArgumentError,
        match=r"^Cannot store the folder '.*data': 2 symbolic link\(s\) lead out of it and were refused "
        r"\(modelyard never follows a link out of the folder it stores\): 'etc' → '/etc', 'passwd' "
        r"→ '/etc/passwd'\. Remove them, or copy the files they point at into the folder\.$",
    ):
        walk(root)
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(InvalidArgumentError, match="2 symbolic link"):
        store.put_tree(root)
    assert list(store.iter_digests()) == []  # nothing stored


@pytest.mark.parametrize("kind", ["parent", "pair", "self"])
def test_walk_refuses_symlink_loops(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "data"
    (root / "a").mkdir(parents=True)
    (root / "a" / "f.txt").write_text("f")
    if kind == "parent":
        (root / "a" / "up").symlink_to("..")
    elif kind == "pair":
        (root / "b").mkdir()
        (root / "a" / "to_b").symlink_to("../b")
        (root / "b" / "to_a").symlink_to("../a")
    else:
        (root / "me").symlink_to("me")
    n = 2 if kind == "pair" else 1  # each link of the pair closes the loop
    with pytest.raises(
        InvalidArgumentError,
        match=rf"^Cannot store the folder '.*data': {n} symbolic link\(s\) make a loop \(they point at a "
        rf"folder that contains them\): '.*' → '.*'\. Remove them and try again\.$",
    ):
        walk(root)


def test_stat_cache_notices_a_same_size_rewrite_with_the_mtime_restored(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    f = tmp_path / "w.bin"
    f.write_bytes(b"A" * 1000)
    _old(f)
    time.sleep(0.05)  # the ctime of the next write must differ (coarse filesystem clocks)
    d1, _ = store.put_file(f)
    before = os.stat(f)
    with open(f, "r+b") as fh:  # in place: same inode, same size
        fh.write(b"B" * 1000)
    os.utime(f, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime restored
    assert os.stat(f).st_mtime_ns == before.st_mtime_ns and os.stat(f).st_ino == before.st_ino
    assert store.known_entries([f], ["w.bin"]) is None
    d2, _ = store.put_file(f)
    assert d2 != d1 and d2 == hash_file(f)


@pytest.mark.parametrize(
    "how", ["put_bytes", "put_file", "put_file_cached", "put_file_large", "put_files", "put_files_cached"]
)
def test_a_reused_blob_is_freshened_for_gc(tmp_path: Path, how: str) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "src"
    src.mkdir()
    files = [src / f"{i}.bin" for i in range(20)]
    for i, p in enumerate(files):
        p.write_bytes(
            os.urandom(2 * 1024 * 1024) if (how == "put_file_large" and i == 0) else f"file {i}".encode()
        )
    _old(*files)
    if how == "put_bytes":
        digests = [store.put_bytes(b"manifest-ish")]
    elif how.startswith("put_file") and not how.startswith("put_files"):
        digests = [store.put_file(files[0])[0]]
    else:
        digests = [e.digest for e in store.put_files([(p, p.name) for p in files])]
    long_ago = time.time() - 7200
    for d in digests:
        os.utime(store.local_path(d), (long_ago, long_ago))
    if how == "put_bytes":
        store.put_bytes(b"manifest-ish")
    elif how in ("put_file", "put_file_large"):
        copy = tmp_path / "copy.bin"  # same bytes, another file: a dedup hit, not a stat-cache hit
        copy.write_bytes(files[0].read_bytes())
        store.put_file(copy)
    elif how == "put_file_cached":
        store.put_file(files[0])
    elif how == "put_files":
        other = tmp_path / "other"
        other.mkdir()
        for p in files:
            (other / p.name).write_bytes(p.read_bytes())
        store.put_files([(p, p.name) for p in sorted(other.iterdir())])
    else:
        store.put_files([(p, p.name) for p in files])
    assert all(store.mtime(d) > time.time() - 600 for d in digests)


def test_put_files_on_a_full_disk_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(30):
        (src / f"{i}.bin").write_bytes(f"file {i}".encode())

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(
        BlobError,
        match=r"^Cannot store '.*\.bin': the disk is full \(no space left on device\); free some space "
        r"and try again\.$",
    ):
        store.put_tree(src)
    with pytest.raises(BlobError, match=r"^Cannot store the bytes: the disk is full"):
        store.put_bytes(b"a manifest")
    assert list(store.iter_digests()) == [] and store.stale_temp_files() == []


def test_a_malformed_manifest_entry_is_refused(tmp_path: Path) -> None:
    import json

    store = BlobStore(tmp_path / "blobs")
    doc = {
        "type": "modelyard.manifest",
        "entries": [{"path": "x", "digest": "0" * 64, "size": 1, "mode": "rwx"}],
    }
    m = store.put_bytes(json.dumps(doc).encode())
    with pytest.raises(IntegrityError, match=r"^Manifest .{12}… has a malformed entry: "):
        store.get_tree(m, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_get_file_on_a_full_disk_is_one_line_and_leaves_no_part_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path / "blobs")
    d = store.put_bytes(b"weights" * 100)

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    monkeypatch.setattr(os, "write", full)
    dest = tmp_path / "dl"
    with pytest.raises(
        BlobError,
        match=r"^Cannot write '.*/dl/model.bin': the disk is full \(no space left on device\); free some "
        r"space and try again\.$",
    ):
        store.get_file(d, dest / "model.bin")
    assert list(dest.iterdir()) == []
