"""``yard pipeline export airflow``: the DAG text (tasks, dependencies, escaping), run-one-step with
inputs from the cache, and bad input. No Airflow here: the generated file is executed against a
small stand-in of ``airflow.sdk`` that records tasks and edges (tests/pipelines/test_airflow_dags.py
runs it with a real Airflow)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli import app

ODD = 'we\'ird \\ "step") ; import os  #'

PIPE = f"""
import modelyard as yard


@yard.step
def load(n: int) -> list:
    return list(range(n))


@yard.step
def double(xs: list) -> list:
    return [2 * x for x in xs]


@yard.step(name={ODD!r})
def odd(xs: list) -> int:
    return len(xs)


@yard.step
def score(k: int, xs: list) -> int:
    return sum(xs) * k


@yard.step
def total(doubled: list, scores: list, count: int) -> dict:
    return {{"sum": sum(doubled), "scores": scores, "count": count}}


@yard.pipeline(experiment="airflow-unit")
def pipe(n: int = 4, ks: list = [1, 2]):
    xs = load(n)
    d = double(xs)
    return total(d, score.map(ks, xs=d), odd(xs))


@yard.step(cache=False)
def fresh(n: int) -> int:
    return n


@yard.pipeline
def uncached(n: int = 1):
    return double([fresh(n)])


def not_a_pipeline():
    return 1
"""


class _FakeTask:
    def __init__(self, dag: _FakeDag, task_id: str, kwargs: dict[str, Any]) -> None:
        self.dag, self.task_id, self.kwargs = dag, task_id, kwargs

    def __rshift__(self, other: _FakeTask) -> _FakeTask:
        self.dag.edges.append((self.task_id, other.task_id))
        return other


class _FakeDag:
    current: _FakeDag | None = None

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.tasks: dict[str, _FakeTask] = {}
        self.edges: list[tuple[str, str]] = []

    def __enter__(self) -> _FakeDag:
        _FakeDag.current = self
        return self

    def __exit__(self, *exc: Any) -> None:
        _FakeDag.current = None


class _FakeDecorated:
    def __init__(self, fn: Any, task_id: str | None = None) -> None:
        self.fn, self.task_id = fn, task_id

    def override(self, task_id: str) -> _FakeDecorated:
        return _FakeDecorated(self.fn, task_id)

    def __call__(self, **kwargs: Any) -> _FakeTask:
        dag = _FakeDag.current
        assert dag is not None and self.task_id is not None
        assert self.task_id not in dag.tasks
        t = dag.tasks[self.task_id] = _FakeTask(dag, self.task_id, kwargs)
        return t


def _load_dag(path: Path, context: dict[str, Any]) -> tuple[_FakeDag, dict[str, Any]]:
    """Execute a generated DAG file against a stand-in ``airflow.sdk``."""
    holder: dict[str, _FakeDag] = {}

    class Dag(_FakeDag):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            holder["dag"] = self

    sdk = types.ModuleType("airflow.sdk")
    sdk.DAG = Dag  # type: ignore[attr-defined]
    sdk.Param = lambda default, **kw: {"default": default, **kw}  # type: ignore[attr-defined]
    sdk.Variable = types.SimpleNamespace(
        get=lambda key, default=None: context.get("variables", {}).get(key, default)
    )  # type: ignore[attr-defined]
    sdk.get_current_context = lambda: context  # type: ignore[attr-defined]
    sdk.task = _FakeDecorated  # type: ignore[attr-defined]
    airflow = types.ModuleType("airflow")
    airflow.sdk = sdk  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("airflow", "airflow.sdk")}
    sys.modules.update({"airflow": airflow, "airflow.sdk": sdk})
    try:
        namespace: dict[str, Any] = {"__name__": "generated_dag"}
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v
    return holder["dag"], namespace


def _export(args: list[str]) -> Any:
    return CliRunner().invoke(app, ["pipeline", "export", "airflow", *args])


def _yard(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines" / "airpipe.py").write_text(PIPE)
    return root


def _ref(project: Path, name: str = "pipe") -> str:
    return f"{project / 'pipelines' / 'airpipe.py'}:{name}"


def test_dag_has_one_task_per_step_and_the_pipeline_edges(project: Path, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    res = _export([_ref(project), "--out", str(dags), "--project-dir", str(project), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    path = Path(info["path"])
    assert path == dags / "yard_pipe.py" and info["dag_id"] == "yard_pipe"
    dag, ns = _load_dag(path, {})
    assert dag.kwargs["dag_id"] == "yard_pipe" and dag.kwargs["schedule"] is None
    # node ids -> task ids: map items and the odd name made valid for Airflow, nodes kept verbatim
    nodes = {tid: t.kwargs["node"] for tid, t in dag.tasks.items()}
    odd_tid = "we_ird_step_import_os"  # runs of characters Airflow refuses became one "_"
    assert nodes == {
        "load": "load",
        "double": "double",
        "score_0": "score[0]",
        "score_1": "score[1]",
        odd_tid: ODD,
        "total": "total",
    }
    assert sorted(dag.edges) == sorted(
        [
            ("load", "double"),
            ("double", "score_0"),
            ("double", "score_1"),
            ("load", odd_tid),
            ("double", "total"),
            ("score_0", "total"),
            ("score_1", "total"),
            (odd_tid, "total"),
        ]
    )
    assert info["dependencies"] == [list(e) for e in dag.edges]
    # the pipeline ref is relative to the project folder; params are the pipeline's defaults
    assert ns["PIPELINE"] == "pipelines/airpipe.py:pipe"
    assert ns["PROJECT_DIR"] == str(project.resolve())
    assert ns["PARAMS"] == {"n": 4, "ks": [1, 2]}
    # the odd name never leaves a string literal: the file is plain code plus literals
    text = path.read_text()
    tree = ast.parse(text)
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert ODD in strings
    imports = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    assert imports <= {"annotations", "json", "os", "subprocess", "sys", "datetime", "timezone", "DAG",
                       "Param", "Variable", "get_current_context", "task"}  # fmt: skip
    assert "pickle" not in text


def test_export_is_deterministic_and_only_replaces_its_own_files(project: Path, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    args = [_ref(project), "--out", str(dags), "--project-dir", str(project), "-p", "n=3"]
    assert _export(args).exit_code == 0
    first = (dags / "yard_pipe.py").read_bytes()
    res = _export(args)
    assert res.exit_code == 0, res.output
    assert (dags / "yard_pipe.py").read_bytes() == first
    assert "Airflow DAG 'yard_pipe', 6 task(s), 8 dependencies" in res.output
    # options land in the file as literals
    res = _export(
        [*args, "--dag-id", "churn.train-v2", "--schedule", "0 3 * * 1", "--python", "/opt/py/bin/python"]
    )
    assert res.exit_code == 0, res.output
    dag, ns = _load_dag(dags / "churn.train-v2.py", {})
    assert dag.kwargs["dag_id"] == "churn.train-v2" and dag.kwargs["schedule"] == "0 3 * * 1"
    assert ns["PYTHON"] == "/opt/py/bin/python" and ns["PARAMS"] == {"n": 3, "ks": [1, 2]}
    # a file someone else wrote is never overwritten
    mine = dags / "yard_other.py"
    mine.write_text("# my own DAG\n")
    res = _export([_ref(project), "--out", str(dags), "--dag-id", "yard_other"])
    assert "was not written by `yard pipeline export airflow`" in str(res.exception)
    assert mine.read_text() == "# my own DAG\n"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("pipelines/missing.py:pipe", "does not exist"),
        ("pipelines/airpipe.py:nope", "has no 'nope'"),
        ("pipelines/airpipe.py:not_a_pipeline", "is not a pipeline"),
        ("pipelines/airpipe.py", "file.py:function"),
        ("pipelines/airpipe.py:uncached", "Step 'fresh' of pipeline 'uncached' has cache=False"),
    ],
)
def test_bad_input_is_a_clear_error(project: Path, tmp_path: Path, ref: str, message: str) -> None:
    res = _yard(["pipeline", "export", "airflow", ref, "--out", str(tmp_path / "dags")], cwd=project)
    assert res.returncode == 1, res
    assert res.stderr.startswith("Error: ") and message in res.stderr, res.stderr
    assert "Traceback" not in res.stderr
    assert not list((tmp_path / "dags").glob("*.py"))


def test_bad_options_are_clear_errors(project: Path, tmp_path: Path) -> None:
    from modelyard.errors import InvalidArgumentError

    out = ["--out", str(tmp_path / "dags")]
    for extra, message in [
        (["--dag-id", "no spaces"], "An Airflow DAG id is letters"),
        (["-p", "nope=1"], "has no param 'nope'"),
        (["--executor", "k8s"], "executor must be one of"),
        (["--project-dir", str(tmp_path / "nowhere")], "does not exist"),
    ]:
        res = _export([_ref(project), *out, *extra])
        assert isinstance(res.exception, InvalidArgumentError) and message in str(res.exception), extra
    assert not (tmp_path / "dags").exists()


def test_run_one_step_reads_upstream_from_the_cache_and_never_recomputes_it(project: Path) -> None:
    from modelyard.errors import NotFoundError
    from modelyard.pipelines import load_pipeline, run_pipeline, show_pipeline_run
    from modelyard.tracking import get_run

    fn = load_pipeline(_ref(project))
    with pytest.raises(NotFoundError, match=r"needs the output of step 'load'.*Run step 'load' first"):
        run_pipeline(fn, only="double", executor="local")
    from modelyard.tracking import search_runs

    assert len(search_runs()) == 0  # refused before anything was recorded
    first = run_pipeline(fn, only="load", executor="local", tags={"airflow.task_id": "load"})
    assert first.executed == ["load"] and first.value is None
    second = run_pipeline(fn, only="double", executor="local")
    assert second.cached == ["load"] and second.executed == ["double"]
    info = show_pipeline_run(second.run_id)
    assert [(s["node"], s["cache_hit"]) for s in info["steps"]] == [("load", True), ("double", False)]
    assert get_run(first.run_id).tags["airflow.task_id"] == "load"
    assert get_run(second.run_id).tags["yard.steps"] == "double"
    # forcing an upstream step in a one-step run is refused; yard.* tags are the runner's
    from modelyard.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError, match="would recompute upstream step"):
        run_pipeline(fn, only="double", force="load", executor="local")
    with pytest.raises(InvalidArgumentError, match="modelyard's own"):
        run_pipeline(fn, only="load", tags={"yard.kind": "x"}, executor="local")
    # the full run afterwards reuses what the one-step runs cached
    full = run_pipeline(fn, executor="local")
    assert set(full.cached) == {"load", "double"}
    assert full.value["sum"] == 12


@pytest.mark.slow  # six `python -m modelyard` subprocesses
def test_generated_task_runs_its_step_through_the_cli(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The task body itself (subprocess `python -m modelyard pipeline run --step`), in task order."""
    from modelyard.tracking import search_runs

    monkeypatch.chdir(project)
    dags = tmp_path / "dags"
    res = _export(
        ["pipelines/airpipe.py:pipe", "--out", str(dags), "--project-dir", str(project), "-p", "ks=[3]"]
    )
    assert res.exit_code == 0, res.output
    uri = str(tmp_path / "store")
    ti = types.SimpleNamespace(dag_id="yard_pipe", task_id="", try_number=1)
    context = {"ti": ti, "run_id": "manual__1", "params": {"yard_uri": None}, "variables": {"yard_uri": uri}}
    dag, ns = _load_dag(dags / "yard_pipe.py", context)
    assert sorted(dag.tasks) == ["double", "load", "score_0", "total", "we_ird_step_import_os"]
    # a downstream task before its upstream fails clearly and runs nothing
    ti.task_id = "double"
    with pytest.raises(RuntimeError, match="modelyard step 'double' failed"):
        ns["run_step"].fn(node="double")
    states = {}
    for tid in ["load", "double", "score_0", "we_ird_step_import_os", "total"]:
        ti.task_id = tid
        states[tid] = ns["run_step"].fn(node=dag.tasks[tid].kwargs["node"])["state"]
    assert set(states.values()) == {"done"}
    runs = search_runs("airflow-unit", filter="tags.yard.kind = 'pipeline'", uri=uri)
    assert len(runs) == 5
    assert {r.tags["airflow.task_id"] for r in runs} == set(states)
    assert {r.tags["airflow.run_id"] for r in runs} == {"manual__1"}
    ti.task_id = "total"
    again = ns["run_step"].fn(node="total")
    assert again["state"] == "cached"


def test_a_name_with_a_newline_stays_inside_its_literal() -> None:
    """Names are written with repr: even a newline cannot end a literal and start code."""
    import modelyard as yard
    from modelyard.pipelines import build_graph
    from modelyard.pipelines._airflow import airflow_dag_source

    name = "a\nimport os; os.system('x')\n#\u2028'''\"\"\""

    @yard.step(name=name)
    def first() -> int:
        return 1

    @yard.step
    def second(x: int) -> int:
        return x

    @yard.pipeline(name=name)
    def pipe():  # type: ignore[no-untyped-def]
        return second(first())

    text = airflow_dag_source(build_graph(pipe), "p.py:pipe", dag_id="d", project_dir="/p")
    tree = ast.parse(text)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "system"]
    assert not calls
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert name in strings and "a_import_os_os.system_x" in strings
