"""Reliability under concurrency and crashes (tests, not benchmarks; bounded in count and time)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelyard.tracking import RunStatus, TrackingService

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _spawn(code: str, tmp_path: Path, uri: str, name: str, *args: str, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(code))
    full_env = {**os.environ, "PYTHONPATH": SRC, "YARD_URI": uri, **env}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=tmp_path,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WAIT_FOR_GO = """
import os, sys, time
go = sys.argv[1]
deadline = time.time() + 60
while not os.path.exists(go) and time.time() < deadline:
    time.sleep(0.005)
"""


@pytest.mark.slow
def test_eight_processes_log_ten_thousand_points_each(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")  # brand new: the processes also race to create and migrate it
    go = tmp_path / "go"
    code = (
        WAIT_FOR_GO
        + """
import modelyard as yard
with yard.start_run(experiment="load", name=f"proc-{sys.argv[2]}", capture_env=False) as run:
    for i in range(10_000):
        run.log_metric("loss", 1.0 / (i + 1), step=i)
        if i % 2500 == 0:
            run.log_param(f"p{i}", i)
print(run.id)
"""
    )
    procs = [
        _spawn(code, tmp_path, uri, f"w{n}", str(go), str(n), YARD_FLUSH_INTERVAL="0.05") for n in range(8)
    ]
    time.sleep(0.5)
    go.touch()
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err and "Traceback" not in err, err
    ids = [out.strip() for out, _ in outs]
    svc = TrackingService(uri)
    runs = svc.search_runs("load", limit=100)
    assert sorted(r.id for r in runs) == sorted(ids)
    assert all(
        r.status is RunStatus.FINISHED and r.metrics == {"loss": 1e-4} and len(r.params) == 4 for r in runs
    )
    import sqlalchemy as sa

    with svc.store.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM metrics")).scalar_one() == 80_000
        per_run = (
            conn.execute(sa.text("SELECT count(DISTINCT step) FROM metrics GROUP BY run_id")).scalars().all()
        )
        assert per_run == [10_000] * 8
        assert conn.execute(sa.text("SELECT count(*) FROM experiments")).scalar_one() == 1


def test_processes_opening_a_new_store_at_once(store_uri: str, tmp_path: Path) -> None:
    go = tmp_path / "go"
    code = (
        WAIT_FOR_GO
        + """
import modelyard as yard
yard.init()
with yard.start_run(experiment="race", capture_env=False) as run:
    run.log_metric("x", 1.0)
print(run.id)
"""
    )
    procs = [_spawn(code, tmp_path, store_uri, f"o{n}", str(go)) for n in range(3)]
    time.sleep(0.3)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    runs = TrackingService(store_uri).search_runs("race")
    assert len(runs) == 3 and all(r.metrics == {"x": 1.0} for r in runs)


@pytest.mark.slow
def test_sigkill_while_writing_artifacts_leaves_no_partial_blob(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    code = """
import os, sys
import modelyard as yard
run = yard.start_run(experiment="crash", capture_env=False)
print(run.id, flush=True)
src = os.path.join(sys.argv[1], "big.bin")
for i in range(10_000):
    with open(src, "wb") as f:
        f.write(os.urandom(3 * 1024 * 1024))   # new bytes each time: a new blob each time
    run.log_artifact(src, f"chunk{i}")
    print(i, flush=True)
"""
    work = tmp_path / "work"
    work.mkdir()
    proc = _spawn(code, tmp_path, uri, "writer", str(work))
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    for _ in range(4):  # a few artifacts are complete, the next one is being written
        assert proc.stdout.readline(), proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    from modelyard._maintenance import doctor
    from modelyard._workspace import Workspace

    ws = Workspace(uri)
    try:
        digests = list(ws.blobs.iter_digests())
        assert len(digests) >= 4
        assert all(ws.blobs.verify(d) for d in digests)  # nothing partial under a digest
        rec = TrackingService(ws).get_run(run_id)
        assert len(rec.artifacts) >= 4
        report = doctor(ws)
        assert report.healthy and report.corrupt == [] and report.missing == []
    finally:
        ws.close()
    cli = subprocess.run(
        [sys.executable, "-m", "modelyard", "--uri", uri, "doctor", "--json"],
        env={**os.environ, "PYTHONPATH": SRC},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert json.loads(cli.stdout)["healthy"] is True
