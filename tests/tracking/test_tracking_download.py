"""``yard runs download``: a folder in the way or a symbolic link in the destination is one clear
line, and nothing is left behind or written through the link."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.errors import BlobError

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _run_with(tmp_path: Path) -> yard.Run:
    (tmp_path / "model.bin").write_bytes(b"weights")
    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<p>hi</p>")
    (folder / "sub" / "run.sh").write_text("echo hi")
    with yard.start_run(experiment="dl", capture_env=False) as run:
        run.log_artifact(tmp_path / "model.bin")
        run.log_artifact(folder)
    return run


def test_download_onto_a_folder_is_one_line_and_leaves_no_part_file(tmp_path: Path) -> None:
    run = _run_with(tmp_path)
    dest = tmp_path / "d"
    (dest / "model.bin").mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": SRC}
    p = subprocess.run(
        [sys.executable, "-m", "modelyard", "runs", "download", run.id, "model.bin", "--dest", str(dest)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert p.returncode == 1 and p.stdout == ""
    assert (
        p.stderr == f"Error: Cannot write {str(dest / 'model.bin')!r}: a folder is in the way. Remove it or "
        f"choose another destination.\n"
    )
    assert [q.name for q in dest.iterdir()] == ["model.bin"] and list((dest / "model.bin").iterdir()) == []


def test_download_of_a_folder_over_a_file_is_refused_before_writing(tmp_path: Path) -> None:
    run = _run_with(tmp_path)
    dest = tmp_path / "d"
    (dest / "report").mkdir(parents=True)
    (dest / "report" / "sub").write_text("a file where the folder goes")
    with pytest.raises(
        BlobError,
        match=r"^Cannot write '.*/d/report/sub/run.sh': '.*/d/report/sub' is a file, not a folder\.$",
    ):
        run.download_artifact("report", dest)
    assert sorted(q.name for q in (dest / "report").iterdir()) == ["sub"]  # index.html was not written either


def test_download_never_writes_through_a_symlink_in_the_destination(tmp_path: Path) -> None:
    run = _run_with(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "model.bin").symlink_to(victim)
    with pytest.raises(
        BlobError,
        match=r"^Refused to write '.*/d/model.bin': it is a symbolic link \(to '.*/victim.txt'\) and a "
        r"download never writes through a link\.",
    ):
        run.download_artifact("model.bin", dest)
    (dest / "report").symlink_to(outside)
    with pytest.raises(
        BlobError, match=r"^Refused to write '.*/d/report': it is a symbolic link \(to '.*/outside'\)"
    ):
        run.download_artifact("report", dest)
    (dest / "report").unlink()
    (dest / "report").mkdir()
    (dest / "report" / "sub").symlink_to(outside)
    with pytest.raises(
        BlobError, match=r"^Refused to write '.*/d/report/sub/run.sh': '.*/d/report/sub' is a symbolic link"
    ):
        run.download_artifact("report", dest)
    assert victim.read_text() == "precious" and list(outside.iterdir()) == []
    assert sorted(q.name for q in dest.iterdir()) == ["model.bin", "report"]
    (dest / "model.bin").unlink()
    (dest / "report" / "sub").unlink()
    assert run.download_artifact("model.bin", dest).read_bytes() == b"weights"
    assert (run.download_artifact("report", dest) / "sub" / "run.sh").read_text() == "echo hi"
