"""The suite's own machinery (tests/conftest.py, testkit.airflow): xdist's ``worksteal`` by default,
the Airflow venv built in the background when the session includes its test, and built once when two
callers ask for it at the same time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from testkit.airflow import AIRFLOW_TEST, GET_AIRFLOW, BackgroundBuild, group_running, session_covers
from testkit.xdist import dist_mode, heavy_first

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        print("\\nDIST=" + str(getattr(session.config.option, "dist", "no")))
"""


def _dist_mode(tmp_path: Path, *args: str) -> str:
    (tmp_path / "distprobe.py").write_text(PROBE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    cmd = [sys.executable, "-m", "pytest", "-p", "distprobe", "-p", "no:cacheprovider", "-q", "-s", *args]
    out = subprocess.run(
        [*cmd, str(ROOT / "tests" / "test_json.py"), "--rootdir", str(ROOT)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return next(line for line in out.stdout.splitlines() if line.startswith("DIST="))[5:]


def test_xdist_defaults_to_worksteal_unless_dist_is_given(tmp_path: Path) -> None:
    assert _dist_mode(tmp_path, "-n", "1") == "worksteal"  # a real session (one worker: cheaper)
    assert dist_mode("load", ["-n", "2"]) == "worksteal"
    assert dist_mode("load", ["-n", "2", "--dist", "load"]) == "load"
    assert dist_mode("load", ["-n", "2", "-d"]) == "load"
    assert dist_mode("loadfile", ["-n", "2", "--dist=loadfile"]) == "loadfile"
    assert dist_mode("no", ["-p", "no:xdist"]) == "no"


def _item(path: str, name: str, slow: bool = False, fixtures: tuple[str, ...] = ()) -> SimpleNamespace:
    mark = SimpleNamespace(name="slow") if slow else None
    return SimpleNamespace(
        path=Path(path),
        name=name,
        fixturenames=fixtures,
        get_closest_marker=lambda m: mark if m == "slow" else None,
    )


def test_heavy_modules_run_first_whole_and_in_order_and_airflow_after_them() -> None:
    items = [
        _item("t/a.py", "a1"),
        _item("t/pipelines/test_airflow_dags.py", "air", slow=True),
        _item("t/b.py", "b1"),
        _item("t/b.py", "b2", slow=True),
        _item("t/c.py", "c1"),
        _item("t/webui/test_browser.py", "w1", fixtures=("server", "browser")),
        _item("t/webui/test_browser.py", "w2"),
        _item("t/d.py", "d1"),
    ]
    got = [i.name for i in heavy_first(items)]
    assert got == ["b1", "b2", "w1", "w2", "air", "a1", "c1", "d1"]
    assert sorted(got) == sorted(i.name for i in items)


def test_the_airflow_build_starts_only_for_sessions_that_run_its_test(tmp_path: Path) -> None:
    one = "tests/pipelines/test_airflow_dags.py::test_x"
    for args in (["tests"], [str(ROOT)], ["tests/pipelines"], [one]):
        assert session_covers(args, ROOT), args
    assert session_covers(["pipelines/"], ROOT / "tests")
    assert session_covers([str(AIRFLOW_TEST)], tmp_path)
    assert session_covers(["tests/webui", "tests/pipelines"], ROOT)
    for args in ([], ["tests/webui"], ["tests/pipelines/test_pipeline.py"], ["tests/test_json.py"]):
        assert not session_covers(args, ROOT), args
    assert not session_covers(["tests"], tmp_path)  # tmp_path/tests is another folder
    assert not session_covers(["tests"], ROOT, markexpr="not  slow")
    assert session_covers(["tests"], ROOT, markexpr="postgres")


# A stand-in for the interpreter that .ci/get-airflow builds the venv with: `-m venv` makes bin/python
# (this script) and bin/airflow; `-m pip install` records itself in $FAKE_LOG/installs, then waits
# until $FAKE_LOG/release exists (so a second caller can be started while the first one builds).
FAKE_PYTHON = """#!/usr/bin/env bash
set -eu
log="$FAKE_LOG"
case "$1" in
  -c) [[ $2 == import\\ sys* ]] && echo 3.11; exit 0 ;;
  -m) ;;
  *) exit 2 ;;
esac
case "$2" in
  venv) mkdir -p "$4/bin"; cp "$0" "$4/bin/python"; printf '#!/bin/sh\\n' > "$4/bin/airflow"
        chmod +x "$4/bin/airflow" ;;
  pip) echo "$$" >> "$log/installs"
       until [[ -f $log/release ]]; do sleep 0.05; done ;;
esac
"""


def _wait_for(what: str, cond, timeout: float = 300.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _children(pid: int) -> list[str]:
    """The command names of ``pid``'s child processes."""
    names = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                names.append((stat.parent / "comm").read_text().strip())
        except (OSError, IndexError, ValueError):
            continue
    return names


def _fake_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    fake = tmp_path / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    log = tmp_path / "log"
    log.mkdir()
    venv = str(tmp_path / "venv")
    return {**os.environ, "PYTHON": str(fake), "FAKE_LOG": str(log), "YARD_AIRFLOW_VENV": venv}, log


def test_get_airflow_builds_the_venv_once_when_two_callers_ask_at_once(tmp_path: Path) -> None:
    env, log = _fake_env(tmp_path)
    venv = tmp_path / "venv"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["bash", str(GET_AIRFLOW), str(venv)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    installs = log / "installs"
    first = start()
    _wait_for("the first build to start pip", installs.exists)
    second = start()
    # the second caller either waits on the lock (its `flock` child) or, without one, starts its own pip
    _wait_for(
        "the second caller to wait or build",
        lambda: "flock" in _children(second.pid) or len(installs.read_text().split()) > 1,
    )
    (log / "release").touch()
    outs = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outs
    assert [o[0].strip() for o in outs] == [str(venv), str(venv)]
    assert len(installs.read_text().split()) == 1, "the venv was built twice"
    assert (venv / ".built-by-get-airflow").exists()
    again = subprocess.run(["bash", str(GET_AIRFLOW), str(venv)], env=env, capture_output=True, text=True)
    assert again.returncode == 0 and again.stdout.strip() == str(venv)
    assert len(installs.read_text().split()) == 1


def test_a_background_build_the_session_did_not_need_is_stopped_with_its_children(tmp_path: Path) -> None:
    env, log = _fake_env(tmp_path)
    build = BackgroundBuild(env)
    installs = log / "installs"
    _wait_for("the background build to start pip", installs.exists)
    pip = int(installs.read_text().split()[0])
    assert group_running(build.proc.pid)
    build.stop()
    assert build.proc.returncode != 0
    assert not group_running(build.proc.pid), "a process of the build outlived it"
    stat = Path(f"/proc/{pip}/stat")
    assert not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z", "pip outlived it"
    assert not (tmp_path / "venv" / ".built-by-get-airflow").exists()
    assert not build.log.exists()  # kept only when a build fails by itself
