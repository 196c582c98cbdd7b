"""A pipeline exported with ``yard pipeline export airflow`` runs under a real Airflow.

Airflow lives in its own virtualenv built (once per machine) by ``.ci/get-airflow``, never in the
project's environment. ``airflow dags test`` runs the DAG without a scheduler; its tasks call this
interpreter's modelyard (``--python``), so the store must show one tracked run per task, and a second
DAG run must be served from modelyard's cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parents[2]

PIPE = """
import modelyard as yard


@yard.step
def load(n: int) -> list:
    return list(range(n))


@yard.step
def double(xs: list) -> list:
    return [2 * x for x in xs]


@yard.step
def total(xs: list, doubled: list) -> dict:
    return {"n": len(xs), "sum": sum(doubled)}


@yard.pipeline(experiment="airflow-e2e")
def tiny(n: int = 4):
    xs = load(n)
    return total(xs, double(xs))
"""

#: Building the venv takes ~2-5 min once; each `airflow dags test` of 3 tasks ~1-2 min on a busy 2-core host.
BUILD_TIMEOUT_S = 1200
RUN_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def airflow_venv() -> Path:
    """The Airflow virtualenv of ``.ci/get-airflow``: built on first use; when it cannot be, the test
    is skipped (failed under CI)."""
    try:
        proc = subprocess.run(
            ["bash", str(ROOT / ".ci" / "get-airflow")],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        missing_service(f".ci/get-airflow did not build the Airflow venv within {BUILD_TIMEOUT_S} s")
    if proc.returncode != 0:
        missing_service(f".ci/get-airflow could not build the Airflow venv: {proc.stderr.strip()[-2000:]}")
    venv = Path(proc.stdout.strip().splitlines()[-1])
    if not (venv / "bin" / "airflow").exists():
        missing_service(f".ci/get-airflow printed {venv}, which has no bin/airflow")
    return venv


def _airflow(venv: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "airflow"), *args], env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )


def _task_runs(uri: str) -> dict[str, list[dict]]:
    """Airflow run id -> the modelyard pipeline runs its tasks made (with their steps)."""
    from modelyard.pipelines import show_pipeline_run
    from modelyard.tracking import search_runs

    out: dict[str, list[dict]] = {}
    for r in search_runs("airflow-e2e", filter="tags.yard.kind = 'pipeline'", uri=uri):
        info = show_pipeline_run(r.id, uri=uri)
        info["tags"] = r.tags
        out.setdefault(r.tags["airflow.run_id"], []).append(info)
    return out


@pytest.mark.slow
@pytest.mark.timeout(BUILD_TIMEOUT_S + 3 * RUN_TIMEOUT_S)
def test_airflow_dags_test_runs_each_step_once_then_from_the_cache(
    airflow_venv: Path, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / "pipelines").mkdir(parents=True)
    (project / "pipelines" / "tiny.py").write_text(PIPE)
    dags = tmp_path / "dags"
    store = str(tmp_path / "store")
    export = ["pipeline", "export", "airflow", "pipelines/tiny.py:tiny", "--out", str(dags)]
    res = subprocess.run(
        [sys.executable, "-m", "modelyard", *export, "--python", sys.executable, "--json"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["dag_id"] == "yard_tiny"

    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "YARD_", "VIRTUAL_ENV", "PYTEST"))
    }
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        YARD_URI=store,  # the first DAG run finds the store in the worker's environment
    )
    migrate = _airflow(airflow_venv, env, "db", "migrate")
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    first = _airflow(airflow_venv, env, "dags", "test", "yard_tiny")
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-5000:]
    assert "state=success" in log, log[-5000:]
    for task in ("load", "double", "total"):
        assert f"modelyard step {task!r}: done" in log, log[-5000:]

    runs = _task_runs(store)
    assert len(runs) == 1
    ((airflow_run, records),) = runs.items()
    assert {r["tags"]["airflow.task_id"] for r in records} == {"load", "double", "total"}
    assert all(r["status"] == "finished" and r["tags"]["airflow.dag_id"] == "yard_tiny" for r in records)
    by_task = {r["tags"]["airflow.task_id"]: r for r in records}
    # each task ran its own step once and read its upstream from the cache (never recomputed)
    for task, cached in (("load", []), ("double", ["load"]), ("total", ["load", "double"])):
        steps = {s["node"]: s["cache_hit"] for s in by_task[task]["steps"]}
        assert steps == {**dict.fromkeys(cached, True), task: False}, (task, steps)

    # second DAG run: the store comes from the DAG param (the environment points elsewhere); all cached
    env["YARD_URI"] = str(tmp_path / "elsewhere")
    second = _airflow(
        airflow_venv, env, "dags", "test", "yard_tiny", "--conf", json.dumps({"yard_uri": store})
    )
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-5000:]
    for task in ("load", "double", "total"):
        assert f"modelyard step {task!r}: cached" in log, log[-5000:]
    runs = _task_runs(store)
    assert len(runs) == 2
    again = [r for run_id, rs in runs.items() if run_id != airflow_run for r in rs]
    assert len(again) == 3
    assert all(all(s["cache_hit"] for s in r["steps"]) for r in again)
    assert not (tmp_path / "elsewhere").exists()
