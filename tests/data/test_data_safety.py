"""``yard data get/add`` cannot corrupt or leak what is stored: copies by default, links only on
request, no links followed out of a folder, a rewritten file is noticed, a full disk is one line."""

from __future__ import annotations

import errno
import os
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard._maintenance import doctor
from modelyard.cli import app
from testkit.cli import yard_subprocess


def _yard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return yard_subprocess(*args, cwd=cwd, YARD_NO_FAST_PATH="")  # the fast path allowed


def _error(out: object) -> str:
    """What the CLI prints for a failed CliRunner invocation (``handle_errors`` prints ``Error: <exc>``)."""
    from modelyard.errors import ModelyardError

    exc = out.exception  # type: ignore[attr-defined]
    assert out.exit_code != 0 and isinstance(exc, ModelyardError), repr(exc)  # type: ignore[attr-defined]
    assert "\n" not in str(exc)
    return f"Error: {exc}"


def _folder(tmp_path: Path, n: int = 3) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for i in range(n):
        (d / f"f{i}.bin").write_bytes(f"image {i}".encode() * 50)
    t = time.time() - 10  # out of the stat cache's racy window
    for p in d.iterdir():
        os.utime(p, (t, t))
    return d


def test_editing_a_materialized_file_leaves_the_stored_version_intact(tmp_path: Path) -> None:
    r = CliRunner()
    folder = _folder(tmp_path)
    assert r.invoke(app, ["data", "add", str(folder), "--name", "imgs"]).exit_code == 0
    out = r.invoke(app, ["data", "get", "imgs@v1", str(tmp_path / "copy")])
    assert out.exit_code == 0, out.output
    f = tmp_path / "copy" / "f0.bin"
    with open(f, "r+b") as fh:  # in place, as root (the blobs' read-only mode would not stop it)
        fh.write(b"CORRUPTED")
    report = doctor()
    assert report.healthy and report.corrupt == []
    again = r.invoke(app, ["data", "get", "imgs@v1", str(tmp_path / "again")])
    assert (
        again.exit_code == 0
        and (tmp_path / "again" / "f0.bin").read_bytes() == (folder / "f0.bin").read_bytes()
    )


def test_data_get_never_writes_through_a_symlink_in_the_destination(tmp_path: Path) -> None:
    r = CliRunner()
    folder = _folder(tmp_path)
    assert r.invoke(app, ["data", "add", str(folder), "--name", "imgs"]).exit_code == 0
    victim = tmp_path / "bashrc"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "f1.bin").symlink_to(victim)
    got = r.invoke(app, ["data", "get", "imgs@v1", str(out)])
    assert _error(got) == (
        f"Error: Refused to write {str(out / 'f1.bin')!r}: it is a symbolic link (to "
        f"{str(victim)!r}) and a download "
        "never writes through a link. Remove the link or choose another destination."
    )
    assert victim.read_text() == "precious" and sorted(p.name for p in out.iterdir()) == ["f1.bin"]


def test_data_get_link_is_opt_in_and_its_risk_is_documented(tmp_path: Path) -> None:
    r = CliRunner()
    folder = _folder(tmp_path)
    assert r.invoke(app, ["data", "add", str(folder), "--name", "imgs"]).exit_code == 0
    assert r.invoke(app, ["data", "get", "imgs@v1", str(tmp_path / "l"), "--link"]).exit_code == 0
    digest = yard.data.show("imgs@v1")["files"][0]["digest"]
    blob = yard.Workspace().open().blobs.local_path(digest)
    assert (tmp_path / "l" / "f0.bin").stat().st_ino == blob.stat().st_ino
    both = r.invoke(app, ["data", "get", "imgs@v1", str(tmp_path / "x"), "--link", "--copy"])
    assert _error(both) == "Error: Give --link or --copy, not both (copying is the default)."
    helptext = " ".join(r.invoke(app, ["data", "get", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "--link" in helptext and "editing one in place corrupts it" in helptext
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "--link" in readme and "corrupts" in readme


def test_data_add_refuses_a_folder_with_a_link_out_of_it(tmp_path: Path) -> None:
    r = CliRunner()
    folder = _folder(tmp_path)
    (folder / "etc").symlink_to("/etc")
    out = r.invoke(app, ["data", "add", str(folder), "--name", "imgs"])
    assert _error(out).startswith(
        f"Error: Cannot store the folder {str(folder)!r}: 1 symbolic link(s) lead out of it and were refused "
        "(modelyard never follows a link out of the folder it stores): 'etc' → '/etc'."
    )
    assert yard.data.list_datasets() == []
    loop = tmp_path / "loop"
    loop.mkdir()
    (loop / "a.txt").write_text("a")
    (loop / "again").symlink_to(".")
    out = _yard("data", "add", str(loop), "--name", "loop", cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr == (
        f"Error: Cannot store the folder {str(loop)!r}: 1 symbolic link(s) make a loop (they point "
        f"at a folder "
        "that contains them): 'again' → '.'. Remove them and try again.\n"
    )


def test_a_same_size_rewrite_with_the_mtime_restored_is_a_new_version(tmp_path: Path) -> None:
    store = tmp_path / "store"
    f = tmp_path / "labels.bin"
    f.write_bytes(b"A" * 4000)
    t = time.time() - 10
    os.utime(f, (t, t))
    time.sleep(0.05)  # the rewrite's ctime must differ from this one (coarse filesystem clocks)
    first = _yard("--uri", str(store), "data", "add", str(f), "--name", "labels", cwd=tmp_path)
    assert first.returncode == 0 and first.stdout.startswith("added labels@v1"), first.stderr
    st = os.stat(f)
    with open(f, "r+b") as fh:
        fh.write(b"B" * 4000)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = _yard(
        "--uri", str(store), "data", "add", str(f), "--name", "labels", cwd=tmp_path
    )  # the fast path is tried first
    assert again.returncode == 0 and again.stdout.startswith("added labels@v2"), (again.stdout, again.stderr)
    got = tmp_path / "got"
    assert _yard("--uri", str(store), "data", "get", "labels@v2", str(got), cwd=tmp_path).returncode == 0
    assert (got / "labels.bin").read_bytes() == b"B" * 4000


@pytest.mark.parametrize("files", [1, 30])  # one file, and the threaded many-files path
def test_data_add_on_a_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: int
) -> None:
    folder = _folder(tmp_path, files)
    target = folder / "f0.bin" if files == 1 else folder

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    ws = yard.Workspace().open()
    before = set(ws.blobs.iter_digests())
    monkeypatch.setattr(os, "write", full)
    out = CliRunner().invoke(app, ["data", "add", str(target), "--name", "imgs"])
    monkeypatch.undo()
    assert _error(out).startswith("Error: Cannot store '") and _error(out).endswith(
        ": the disk is full (no space left on device); free some space and try again."
    )
    assert set(ws.blobs.iter_digests()) == before and ws.blobs.stale_temp_files() == []
    assert yard.data.list_datasets() == []


def test_data_add_of_a_large_file_on_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 * 1024 * 1024))

    def full(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    ws = yard.Workspace().open()
    monkeypatch.setattr(os, "copy_file_range", full)
    out = CliRunner().invoke(app, ["data", "add", str(big), "--name", "big"])
    monkeypatch.undo()
    assert (
        _error(out)
        == f"Error: Cannot store {str(big)!r}: the disk is full (no space left on device); free some "
        f"space and try again."
    )
    assert list(ws.blobs.iter_digests()) == [] and ws.blobs.stale_temp_files() == []
    assert yard.data.list_datasets() == []
