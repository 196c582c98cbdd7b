"""Blob ingest paths used by dataset versions: stat cache, batched small files, single-pass large files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import blake3

from modelyard.blobs import BlobStore, hash_file


def _age(path: Path, seconds: float = 10) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_stat_cache_skips_rehash_and_notices_changes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    f = tmp_path / "a.bin"
    f.write_bytes(b"x" * 1000)
    _age(f)
    d1, size = store.put_file(f)
    assert size == 1000 and d1 == blake3.blake3(b"x" * 1000).hexdigest()
    known = store.known_entries([f], ["a.bin"])  # answered from the stat cache, no byte read
    assert known is not None and [(e.path, e.digest, e.size) for e in known] == [("a.bin", d1, 1000)]
    f.write_bytes(b"y" * 1000)  # same size, new mtime: the cache must not answer
    _age(f, 5)
    assert store.known_entries([f], ["a.bin"]) is None
    d2, _ = store.put_file(f)
    assert d2 == blake3.blake3(b"y" * 1000).hexdigest() != d1
    assert store.read_bytes(d2) == b"y" * 1000
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"z")  # modified just now: not remembered (racy mtime)
    store.put_file(fresh)
    assert store.known_entries([fresh], ["fresh.bin"]) is None


def test_put_files_batch_and_large_single_pass(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "src"
    src.mkdir()
    for i in range(40):
        (src / f"{i:03d}.txt").write_bytes(f"file {i % 30}".encode())  # some duplicates
    big = src / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    items = [(p, p.name) for p in sorted(src.iterdir())]
    entries = store.put_files(items)
    assert [e.path for e in entries] == [p.name for p, _ in items]
    for e, (p, _) in zip(entries, items, strict=True):
        assert e.digest == hash_file(p) and e.size == p.stat().st_size and store.verify(e.digest)
    assert not store.stale_temp_files()
    assert len(set(store.iter_digests())) == 31
    digest, _ = store.put_tree(src)
    out = store.get_tree(digest, tmp_path / "out", link=True)
    assert (out / "big.bin").read_bytes() == big.read_bytes()


def test_many_small_files_on_threads_and_known_entries(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    src = tmp_path / "many"
    src.mkdir()
    files = []
    for i in range(300):  # enough for the threaded slices
        f = src / f"{i:04d}.bin"
        f.write_bytes(f"payload {i % 250}".encode())  # 50 duplicates inside the batch
        files.append(f)
    for f in files:
        _age(f)
    rels = [f.name for f in files]
    assert store.known_entries(files, rels) is None  # nothing stored yet
    entries = store.put_files(list(zip(files, rels, strict=True)), workers=2)
    assert [e.digest for e in entries] == [hash_file(f) for f in files]
    assert len(set(store.iter_digests())) == 250 and not store.stale_temp_files()
    assert all(store.local_path(e.digest).stat().st_mode & 0o222 == 0 for e in entries)  # published read-only
    known = store.known_entries(files, rels)
    assert known == entries  # answered from the stat cache, no byte read
    files[7].write_bytes(b"changed!")
    _age(files[7], 5)
    assert store.known_entries(files, rels) is None


def test_large_file_without_kernel_copy(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import errno

    def unsupported(*args: object, **kwargs: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "copy_file_range", unsupported)
    store = BlobStore(tmp_path / "blobs")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024 + 5))
    digest, size = store.put_file(big)
    assert digest == hash_file(big) and size == big.stat().st_size
    assert store.read_bytes(digest) == big.read_bytes() and not store.stale_temp_files()
