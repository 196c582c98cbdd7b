"""`yard data add` of an unchanged path: the read-only check answers exactly like the full command, or defers
to it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.data._unchanged import migration_heads, unchanged_version
from modelyard.store import known_heads
from testkit.cli import SRC, yard_subprocess


def _yard(
    *args: str, cwd: Path, fast: bool = True, py: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """``fast=False`` turns the unchanged-add fast path off (YARD_NO_FAST_PATH=1)."""
    return yard_subprocess(*args, cwd=cwd, python=py, timeout=120, YARD_NO_FAST_PATH="" if fast else "1")


def _imported(p: subprocess.CompletedProcess[str]) -> set[str]:
    """Top-level modules a ``python -X importtime`` run imported (from its stderr)."""
    return {
        line.split("|")[-1].strip().split(".")[0]
        for line in p.stderr.splitlines()
        if line.startswith("import time:")
    }


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


def test_the_query_reads_what_the_store_reads(tmp_path: Path) -> None:
    store = str(tmp_path / ".yard")
    folder = _folder(tmp_path)
    yard.data.add(folder, name="ds", uri=store, description="why")
    yard.get_workspace(store).close()
    got = unchanged_version(folder, "ds", store)
    assert got == replace(yard.data.versions("ds", uri=store)[-1], created=False)


def test_typer_parses_and_the_check_answers_before_sqlalchemy_loads(tmp_path: Path) -> None:
    store = tmp_path / ".yard"
    target = tmp_path / "one.bin"
    target.write_bytes(os.urandom(5000))
    _age(target)
    assert (
        _yard("--uri", str(store), "data", "add", str(target), "--name", "ds", cwd=tmp_path).returncode == 0
    )
    # any spelling Typer accepts (options first, `=`, short names, --description, --no-profile) takes the
    # check
    for argv in (
        ["data", "add", "--name=ds", str(target)],
        ["data", "add", "-n", "ds", "-d", "a note", "--no-profile", str(target)],
    ):
        p = _yard("--uri", str(store), *argv, cwd=tmp_path, py=("-X", "importtime"))
        assert p.returncode == 0 and p.stdout.startswith("unchanged, still ds@v1"), p.stderr[-2000:]
        mods = _imported(p)
        assert "typer" in mods and "sqlalchemy" not in mods and "alembic" not in mods
    # the full command answers the same when the check cannot vouch (here: turned off)
    p = _yard(
        "--uri",
        str(store),
        "data",
        "add",
        str(target),
        "--name",
        "ds",
        cwd=tmp_path,
        fast=False,
        py=("-X", "importtime"),
    )
    assert (
        p.returncode == 0 and p.stdout.startswith("unchanged, still ds@v1") and "sqlalchemy" in _imported(p)
    )
    # what Typer refuses is refused as before (no second parser to disagree with it)
    bad = _yard("--uri", str(store), "data", "add", str(target), "--name", "ds", "--frobnicate", cwd=tmp_path)
    assert bad.returncode == 2 and "No such option: --frobnicate" in bad.stderr


_COUNT = r"""
import runpy, sys
import modelyard.data._unchanged as u
calls = []
real = u.unchanged_version
u.unchanged_version = lambda *a, **k: calls.append(a) or real(*a, **k)
sys.argv = ["modelyard", *sys.argv[1:]]
try:
    runpy.run_module("modelyard", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
print(f"checks={len(calls)}")
"""


def test_python_m_modelyard_checks_once(tmp_path: Path) -> None:
    target = tmp_path / "one.bin"
    target.write_bytes(os.urandom(5000))
    _age(target)
    env = {**os.environ, "PYTHONPATH": SRC}
    env.pop("YARD_NO_FAST_PATH", None)
    for state in ("added", "unchanged, still"):  # the full path (first add), then the answered one
        p = subprocess.run(
            [
                sys.executable,
                "-c",
                _COUNT,
                "--uri",
                str(tmp_path / "s"),
                "data",
                "add",
                str(target),
                "--name",
                "ds",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=120,
        )
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith(f"{state} ds@v1") and p.stdout.rstrip().endswith("checks=1"), p.stdout


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_the_check_prints_what_the_full_command_prints(tmp_path: Path, kind: str) -> None:
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
        full = _yard(
            "--uri", str(store), "data", "add", str(target), "--name", "ds", *extra, cwd=tmp_path, fast=False
        )
        fast = _yard("--uri", str(store), "data", "add", str(target), "--name", "ds", *extra, cwd=tmp_path)
        assert full.returncode == fast.returncode == 0, (full.stderr, fast.stderr)
        assert fast.stdout == full.stdout and fast.stderr == ""
    assert unchanged_version(target, "ds", str(store)) is not None
    assert yard.data.versions("ds", uri=str(store))[-1].version == 1


def test_the_check_defers_whenever_it_is_not_sure(tmp_path: Path) -> None:
    store = str(tmp_path / ".yard")
    folder = _folder(tmp_path)
    yard.data.add(folder, name="ds", uri=store)
    yard.get_workspace(store).close()
    assert unchanged_version(folder, "ds", store).ref == "ds@v1"
    assert unchanged_version(folder, "other", store) is None  # no such dataset
    assert (
        unchanged_version(tmp_path / "missing", "ds", store) is None
    )  # no such path: the full command explains
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
    db = sqlite3.connect(Path(store) / "yard.db")
    with db:
        db.execute("UPDATE alembic_version SET version_num = ?", (sorted(migration_heads())[0],))
        db.executemany(
            "INSERT INTO alembic_version VALUES (?)", [(h,) for h in sorted(migration_heads())[1:]]
        )
    db.close()
    assert unchanged_version(folder, "ds", store).version == 2
    os.environ["YARD_NO_FAST_PATH"] = "1"
    try:
        assert unchanged_version(folder, "ds", store) is None
    finally:
        del os.environ["YARD_NO_FAST_PATH"]
