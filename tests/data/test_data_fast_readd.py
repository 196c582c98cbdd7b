"""`yard data add` of an unchanged path: the fast path answers exactly like the full command, or defers to it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.data._quick import _parse, migration_heads, try_unchanged_add, unchanged_version
from modelyard.store import known_heads

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _yard(*args: str, cwd: Path, fast: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("YARD_NO_FAST_PATH", None)
    if not fast:
        env["YARD_NO_FAST_PATH"] = "1"
    return subprocess.run([sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def _age(*paths: Path) -> None:
    t = time.time() - 10  # out of the stat cache's racy window
    for p in paths:
        os.utime(p, (t, t))


def _folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    (d / "sub").mkdir(parents=True)
    files = [d / f"f{i}.bin" for i in range(20)] + [d / "sub" / "x.txt"]
    for i, f in enumerate(files):
        f.write_bytes(os.urandom(100 + i))
    _age(*files)
    return d


def test_migration_heads_match_the_store() -> None:
    assert migration_heads() == known_heads()


def test_parse_accepts_only_what_it_understands() -> None:
    assert _parse(["data", "add", "p", "--name", "n"]) == {"uri": None, "name": "n", "json": False, "path": "p"}
    got = _parse(["--uri", "/s", "data", "add", "--json", "-n", "n", "p", "--no-profile", "-d", "why"])
    assert got == {"uri": "/s", "name": "n", "json": True, "path": "p", "description": "why"}
    assert _parse(["--uri=/s", "data", "add", "p", "--name=n"])["uri"] == "/s"
    for argv in (["data", "add", "p"], ["data", "add", "p", "--name", "n", "--help"], ["data", "list"],
                 ["data", "add", "p", "q", "--name", "n"], ["data", "add", "p", "--name", "a", "--name", "b"],
                 ["data", "add", "p", "--name"], ["runs", "list"], []):
        assert _parse(argv) is None, argv


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_fast_path_prints_what_the_full_command_prints(tmp_path: Path, kind: str) -> None:
    store = tmp_path / ".yard"
    if kind == "file":
        target = tmp_path / "one.bin"
        target.write_bytes(os.urandom(5000))
        _age(target)
    else:
        target = _folder(tmp_path)
    first = _yard("--uri", str(store), "data", "add", str(target), "--name", "ds", cwd=tmp_path)
    assert first.returncode == 0 and first.stdout.startswith("added ds@v1"), first.stderr
    for extra in ([], ["--json"]):
        full = _yard("--uri", str(store), "data", "add", str(target), "--name", "ds", *extra, cwd=tmp_path, fast=False)
        fast = _yard("--uri", str(store), "data", "add", str(target), "--name", "ds", *extra, cwd=tmp_path)
        assert full.returncode == fast.returncode == 0, (full.stderr, fast.stderr)
        assert fast.stdout == full.stdout and fast.stderr == ""
    assert unchanged_version(target, "ds", str(store)) is not None
    assert yard.data.versions("ds", uri=str(store))[-1].version == 1


def test_fast_path_defers_whenever_it_is_not_sure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / ".yard")
    folder = _folder(tmp_path)
    yard.data.add(folder, name="ds", uri=store)
    yard.get_workspace(store).close()
    argv = ["--uri", store, "data", "add", str(folder), "--name", "ds"]
    assert try_unchanged_add(argv) and "unchanged, still ds@v1" in capsys.readouterr().out
    assert not try_unchanged_add(["--uri", store, "data", "add", str(folder), "--name", "other"])  # no such dataset
    assert unchanged_version(folder, "ds", str(tmp_path / "nowhere")) is None  # no store
    # a changed file (same size, new mtime): the stat cache does not vouch for it
    (folder / "f3.bin").write_bytes(os.urandom(103))
    _age(folder / "f3.bin")
    assert unchanged_version(folder, "ds", store) is None
    v2 = yard.data.add(folder, name="ds", uri=store)
    assert v2.version == 2 and v2.created
    assert unchanged_version(folder, "ds", store).version == 2
    # a new file in the folder
    (folder / "new.bin").write_bytes(b"new")
    _age(folder / "new.bin")
    assert unchanged_version(folder, "ds", store) is None
    (folder / "new.bin").unlink()
    # a missing blob: the full command stores it again
    entry = yard.data.DataService(store).manifest("ds@v2")[0]
    blob = yard.get_workspace(store).blobs.local_path(entry.digest)
    os.chmod(blob, 0o644)
    blob.unlink()
    assert unchanged_version(folder, "ds", store) is None
    again = yard.data.add(folder, name="ds", uri=store)
    assert not again.created and blob.exists()
    # a store at another schema revision: the full command migrates or explains
    yard.get_workspace(store).close()
    db = sqlite3.connect(Path(store) / "yard.db")
    with db:
        db.execute("DELETE FROM alembic_version")
        db.execute("INSERT INTO alembic_version VALUES ('someone-elses-revision')")
    db.close()
    assert unchanged_version(folder, "ds", store) is None
    assert not try_unchanged_add(argv)
    os.environ["YARD_NO_FAST_PATH"] = "1"
    try:
        assert not try_unchanged_add(argv)
    finally:
        del os.environ["YARD_NO_FAST_PATH"]
