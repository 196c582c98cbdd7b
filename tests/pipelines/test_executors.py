"""The process executor runs independent branches at the same time; serializers round-trip; CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app

BRANCHES = '''
import os
import time
import modelyard as yard

@yard.step
def branch(me: str, other: str, folder: str) -> dict:
    """Each branch announces itself, then waits until it sees the other one running."""
    with open(os.path.join(folder, me), "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + 90
    while not os.path.exists(os.path.join(folder, other)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{me} never saw {other} running: the branches did not run concurrently")
        time.sleep(0.02)
    return {"me": me, "pid": os.getpid()}

@yard.step
def join(a: dict, b: dict) -> list:
    return sorted([a["me"], b["me"]])

@yard.pipeline(experiment="parallel")
def pipe(folder: str = "."):
    return join(branch("a", "b", folder), branch("b", "a", folder))
'''


@pytest.mark.slow
def test_process_executor_runs_independent_branches_concurrently(modules, tmp_path):
    modules.write("branches", BRANCHES)
    pipe = modules.load("branches")
    folder = tmp_path / "barrier"
    folder.mkdir()
    r = pipe.run(executor="process", workers=2, folder=str(folder))
    assert r.value == ["a", "b"]
    pids = {r.output("branch")["pid"], r.output("branch_2")["pid"]}
    assert len(pids) == 2  # two worker processes, each waiting for the other: really concurrent
    again = pipe.run(executor="process", workers=2, folder=str(folder))
    assert again.cached == ["branch", "branch_2", "join"]


SERIAL = """
import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
import modelyard as yard

@yard.step
def frame() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1], "s": list("abcd")})

@yard.step
def pframe(df: pd.DataFrame) -> pl.DataFrame:
    return pl.from_pandas(df)

@yard.step
def table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df, preserve_index=False)

@yard.step
def array(df: pd.DataFrame) -> np.ndarray:
    return df[["x"]].to_numpy()

@yard.step
def model(x: np.ndarray, df: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(x, df["y"])

@yard.step
def report(m: LogisticRegression, p: pl.DataFrame, t: pa.Table) -> dict:
    return {"classes": [int(c) for c in m.classes_], "rows": p.height, "cols": t.num_columns, "t": (1, 2)}

@yard.pipeline(experiment="serializers")
def pipe():
    df = frame()
    x = array(df)
    return report(model(x, df), pframe(df), table(df))
"""


def test_outputs_use_type_aware_serializers(modules):
    modules.write("serial", SERIAL)
    r = modules.load("serial").run(executor="local")
    ws = yard.get_workspace()
    kinds = {n: ws.blobs.manifest_meta(s.output_digest)["serializer"] for n, s in r.steps.items()}
    assert kinds == {
        "frame": "parquet",
        "pframe": "parquet",
        "table": "parquet",
        "array": "npy",
        "model": "model",
        "report": "json",
    }
    assert ws.blobs.manifest_meta(r.steps["model"].output_digest)["flavor"] == "sklearn"
    assert r.value == {"classes": [0, 1], "rows": 4, "cols": 3, "t": [1, 2]}
    assert type(r.output("pframe")).__module__.startswith("polars")
    assert r.output("table").num_rows == 4
    assert r.output("array").shape == (4, 1)
    assert r.output("model").predict([[1.0]]).shape == (1,)
    again = modules.load("serial").run(executor="local", force="model")
    assert again.steps["model"].state.value == "done"
    assert (
        again.steps["model"].output_digest == r.steps["model"].output_digest
    )  # skops bytes are deterministic
    assert again.steps["report"].cache_key == r.steps["report"].cache_key


LIGHT = """
import numpy as np
import modelyard as yard

@yard.step
def frame() -> dict:
    return {"x": [1.0, 2.0, 3.0, 4.0], "y": [0, 1, 0, 1]}

@yard.step
def pframe(df: dict) -> list:
    return df["x"]

@yard.step
def table(df: dict) -> list:
    return df["y"]

@yard.step
def array(df: dict) -> np.ndarray:
    return np.array(df["x"])

@yard.step
def model(x: np.ndarray, df: dict) -> float:
    return float(x.mean())

@yard.step
def report(m: float, p: list, t: list) -> dict:
    return {"m": m, "p": p, "t": t}

@yard.pipeline(experiment="cli")
def pipe():
    df = frame()
    x = array(df)
    return report(model(x, df), pframe(df), table(df))
"""


def test_cli_run_status_show_dag(modules, tmp_path):
    modules.write("light", LIGHT)
    ref = modules.ref("light")
    runner = CliRunner()
    res = runner.invoke(app, ["pipeline", "dag", ref])
    assert res.exit_code == 0, res.output
    assert "model" in res.output and "← array, frame" in res.output
    svg = tmp_path / "dag.svg"
    res = runner.invoke(app, ["pipeline", "dag", ref, "--svg", str(svg)])
    assert res.exit_code == 0 and svg.read_text().startswith("<svg") and svg.read_text().count("<rect") == 6

    res = runner.invoke(app, ["pipeline", "status", ref, "--json"])
    assert res.exit_code == 0, res.output
    status = {s["node"]: s["reason"] for s in json.loads(res.output)}
    assert status["frame"] == "never run before"
    assert status["model"] == "input from array, frame will be recomputed"

    res = runner.invoke(app, ["pipeline", "run", ref, "--executor", "local", "--json"])
    assert res.exit_code == 0, res.output
    run_id = json.loads(res.output)["run_id"]
    res = runner.invoke(app, ["pipeline", "run", ref, "--executor", "local"])
    assert res.exit_code == 0, res.output
    assert "0 of 6 steps ran, 6 cached" in res.output

    res = runner.invoke(app, ["pipeline", "show", run_id, "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["run_id"] == run_id and [s["status"] for s in shown["steps"]] == ["done"] * 6
    res = runner.invoke(app, ["pipeline", "show", run_id])
    assert res.exit_code == 0 and "never run before" in res.output

    res = runner.invoke(app, ["pipeline", "run", f"{ref[:-5]}:nothing"])
    assert res.exit_code == 1 and "has no 'nothing'. Pipelines defined there: pipe." in str(res.exception)

    # the real command line: one `Error: ...` line and a non-zero exit, nothing run
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "modelyard", "pipeline", "run", ref, "--param", "nope=1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == "Error: Pipeline 'pipe' has no param 'nope'. Its params: (none)."


def test_quickstart_chapter_runs_the_training_as_a_cached_pipeline(tmp_path):
    from modelyard.quickstart import QuickstartContext, chapter_pipelines

    said: list[str] = []
    ctx = QuickstartContext(uri=str(tmp_path / "qs"), say=said.append)
    chapter_pipelines(ctx)
    assert "on churn-train@v1: 3 steps ran" in said[0] and "with 3 of 3 steps cached" in said[0]
    assert "train because param alpha changed: 0.0001 → 0.001" in said[1]
    shown = yard.pipelines.show_pipeline_run(ctx.state["pipeline_run_id"], uri=ctx.uri)
    assert all(s["cache_hit"] for s in shown["steps"])
    from modelyard.data import DataService

    features_run = next(s["run_id"] for s in shown["steps"] if s["node"] == "features")
    assert [v.ref for v in DataService(ctx.uri).inputs_of(features_run)] == ["churn-train@v1"]


def test_live_view_only_on_a_terminal(modules, monkeypatch):
    import io

    modules.write("light", LIGHT)
    pipe = modules.load("light")
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stdout", quiet)
    pipe.run(executor="local")  # not a TTY: nothing printed
    assert quiet.getvalue() == ""
    shown = io.StringIO()
    monkeypatch.setattr("sys.stdout", shown)
    pipe.run(executor="local", progress=True)
    text = shown.getvalue()
    assert "pipeline pipe (local)" in text and "6 cached" in text and "report" in text


def test_miss_explanations_for_env_and_output_spec(modules):
    from modelyard.pipelines._cache import CacheEntry, explain_miss, key_document

    modules.write("light", LIGHT)
    graph = modules.load("light").graph()
    node = graph.nodes["frame"]
    doc = key_document(node, {})

    class Row:
        cache_key, node, output_digest, size, run_id, created_at = "k", "frame", "d", 1, "r", 0

    old = dict(doc, env={"scikit-learn": "1.8.0"}, output={**doc["output"], "allow_pickle": True})
    Row.key_doc = json.dumps(old)
    assert explain_miss(node, doc, CacheEntry.from_row(Row)) == (
        "package scikit-learn changed: 1.8.0 → not declared; output spec changed (serializer "
        "options or versions)"
    )


def test_ray_not_installed_is_a_clear_error_before_anything_runs(modules, monkeypatch):
    import sys

    modules.write("light", LIGHT)
    pipe = modules.load("light")
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(yard.errors.ConfigError) as info:
        pipe.run(executor="ray")
    assert str(info.value) == (
        "The 'ray' executor needs Ray, which is not installed. Install it with `pip install 'ray[default]'`, "
        "or use executor='process'."
    )
    assert len(yard.search_runs()) == 0
