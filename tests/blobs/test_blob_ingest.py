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
    assert store._stat_cache().get(f, f.stat()) == d1
    f.write_bytes(b"y" * 1000)  # same size, new mtime: the cache must not answer
    _age(f, 5)
    d2, _ = store.put_file(f)
    assert d2 == blake3.blake3(b"y" * 1000).hexdigest() != d1
    assert store.read_bytes(d2) == b"y" * 1000
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"z")  # modified just now: not remembered (racy mtime)
    store.put_file(fresh)
    assert store._stat_cache().get(fresh, fresh.stat()) is None


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
