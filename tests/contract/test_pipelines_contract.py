"""Pipelines: the same runs, the same cache on SQLite, PostgreSQL and a server over HTTP.

The driver runs here; over a server every cache lookup, step record and lineage row is an
operation of the ``pipelines`` service and every output travels through the blob API, so a second
run of the same pipeline is all cache hits there too (and on the process executor, whose workers
reach the server's blobs themselves).
"""

from __future__ import annotations

import pytest

import modelyard as yard
from modelyard.errors import StepFailedError
from modelyard.pipelines import StepState
from testkit.pipelines import reasons, states


@pytest.fixture
def store_uri(contract_uri: str) -> str:
    return contract_uri


def test_second_run_is_fully_cached_and_tracked(pipe_files, store_uri):
    pipe = pipe_files.load("pipe")
    first = pipe.run(executor="local", uri=store_uri)
    assert states(first) == {"load": "done", "featurize": "done", "train": "done"}
    assert reasons(first) == {
        "load": "never run before",
        "featurize": "never run before",
        "train": "never run before",
    }
    assert first.value == {"lr": 0.1, "total": sum(2 * i + 1 for i in range(5))}

    second = pipe.run(executor="local", uri=store_uri)
    assert states(second) == {"load": "cached", "featurize": "cached", "train": "cached"}
    assert second.value == first.value
    for node in ("load", "featurize", "train"):
        assert second.steps[node].cache_key == first.steps[node].cache_key
        assert second.steps[node].output_digest == first.steps[node].output_digest
        assert second.steps[node].reason.startswith("cached from run ")

    # each pipeline run is a tracked run with one nested run per step
    runs = yard.search_runs("cache-test", uri=store_uri)
    parent = yard.get_run(second.run_id, uri=store_uri)
    assert parent.status.value == "finished" and parent.params == {"n": "5", "lr": "0.1"}
    children = [r for r in runs if r.parent_id == second.run_id]
    assert sorted(r.tags["yard.node"] for r in children) == ["featurize", "load", "train"]
    assert {r.tags["yard.cache"] for r in children} == {"hit"}
    train_run = next(r for r in children if r.tags["yard.node"] == "train")
    assert train_run.params == {"lr": "0.1"}
    assert [a.path for a in train_run.artifacts] == ["outputs/train"]
    assert train_run.tags["yard.input.featurize"] == first.steps["featurize"].output_digest

    # the executed load step captured its print() into logs/step.log
    first_children = [r for r in runs if r.parent_id == first.run_id]
    load_run = next(r for r in first_children if r.tags["yard.node"] == "load")
    assert {a.path for a in load_run.artifacts} == {"outputs/load", "logs/step.log"}
    log = yard.get_workspace(store_uri).blobs.read_bytes(
        next(a.digest for a in load_run.artifacts if a.path == "logs/step.log")
    )
    assert b"loading 5" in log

    info = yard.pipelines.show_pipeline_run(first.run_id, uri=store_uri)
    assert [s["node"] for s in info["steps"]] == ["load", "featurize", "train"]
    assert info["steps"][1]["inputs"] == {"load": first.steps["load"].output_digest}


FAILING = """
import os
import modelyard as yard

@yard.step
def first(x: int) -> int:
    return x + 1

@yard.step(retries=1)
def flaky(x: int, flag: str) -> int:
    if os.path.exists(flag):
        raise RuntimeError("flag is set")
    return x * 10

@yard.step
def last(x: int) -> int:
    return x + 5

@yard.pipeline(experiment="fail-test")
def pipe(flag: str = ""):
    return last(flaky(first(1), flag))
"""


def test_failed_step_leaves_no_cache_and_rerun_resumes(modules, tmp_path, store_uri):
    flag = tmp_path / "flag"
    flag.write_text("on")
    modules.write("pipe", FAILING)
    pipe = modules.load("pipe")
    with pytest.raises(StepFailedError) as info:
        pipe.run(executor="local", flag=str(flag), uri=store_uri)
    err = info.value
    assert err.step == "flaky"
    assert str(err).startswith(
        "Step 'flaky' of pipeline 'pipe' failed after 2 attempt(s): RuntimeError: flag is set"
    )
    assert "to resume from 'flaky'" in str(err)
    assert "raise RuntimeError" in err.traceback
    record = yard.get_run(err.run_id, uri=store_uri)
    assert record.status.value == "failed" and "flaky" in record.error
    shown = yard.pipelines.show_pipeline_run(err.run_id, uri=store_uri)
    assert [(s["node"], s["status"]) for s in shown["steps"]] == [
        ("first", "done"),
        ("flaky", "failed"),
        ("last", "skipped"),
    ]
    status = {s.node: s for s in pipe.status(flag=str(flag), uri=store_uri)}
    assert status["first"].state is StepState.CACHED
    assert status["flaky"].reason == "never run before"  # the failure left no cache entry

    flag.unlink()
    r = pipe.run(executor="local", flag=str(flag), uri=store_uri)
    assert states(r) == {"first": "cached", "flaky": "done", "last": "done"}
    assert r.value == 25


DATASET = """
import pandas as pd
import modelyard as yard

@yard.step
def rows(df: pd.DataFrame) -> int:
    return len(df)

@yard.pipeline(experiment="datasets")
def pipe(ref: str = "events@latest"):
    return rows(yard.pipelines.dataset(ref, columns=["a"]))
"""


def test_dataset_versions_as_inputs_key_and_lineage(modules, tmp_path, store_uri):
    import pandas as pd

    from modelyard.data import DataService

    src = tmp_path / "events.parquet"
    pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}).to_parquet(src)
    v1 = yard.data.add(str(src), name="events", uri=store_uri)
    modules.write("ds", DATASET)
    pipe = modules.load("ds")
    r = pipe.run(executor="local", uri=store_uri)
    assert r.value == 3 and states(r) == {"rows": "done"}
    step_run = r.steps["rows"].run_id
    assert [v.ref for v in DataService(store_uri).inputs_of(step_run)] == [v1.ref]
    assert pipe.run(executor="local", uri=store_uri).cached == ["rows"]

    pd.DataFrame({"a": [1, 2, 3, 4]}).to_parquet(src)
    yard.data.add(str(src), name="events", uri=store_uri)
    assert reasons(pipe.status(uri=store_uri))["rows"] == "dataset df changed: events@v1 → events@v2"
    assert pipe.run(executor="local", uri=store_uri).value == 4
    with pytest.raises(yard.errors.NotFoundError):
        pipe.run(executor="local", ref="nothere@v1", uri=store_uri)


def test_process_executor_and_cache_misses_explained(pipe_files, store_uri):
    """Workers in other processes read inputs and write outputs through the store's blobs; a
    changed param is explained against the cache entries the store holds."""
    pipe = pipe_files.load("pipe")
    first = pipe.run(executor="process", workers=2, uri=store_uri)
    assert states(first) == {"load": "done", "featurize": "done", "train": "done"}
    assert first.value == {"lr": 0.1, "total": 25}
    again = pipe.run(executor="process", workers=2, uri=store_uri)
    assert again.cached == ["load", "featurize", "train"] and again.value == first.value
    status = {s.node: s for s in pipe.status(uri=store_uri, lr=0.2)}
    assert status["featurize"].state is StepState.CACHED
    assert status["train"].reason == "param lr changed: 0.1 → 0.2"
    changed = pipe.run(executor="local", uri=store_uri, lr=0.2)
    assert states(changed) == {"load": "cached", "featurize": "cached", "train": "done"}
    assert changed.value == {"lr": 0.2, "total": 25}
    assert yard.pipelines.clear_cache("pipe", step="train", uri=store_uri) == 2
    assert reasons(pipe.status(uri=store_uri))["train"] == "never run before"
    with pytest.raises(yard.errors.NotFoundError, match=r"Did you mean 'pipe'\?"):
        yard.pipelines.clear_cache("pip", uri=store_uri)


def test_step_records_are_validated_where_the_store_is(store_uri):
    """The recorder's operations build every row themselves from checked fields: a bad state,
    digest, missing blob or unknown pipeline run is refused with a clear error (HTTP 4xx)."""
    from modelyard.errors import BlobNotFoundError, InvalidArgumentError, NotFoundError
    from modelyard.pipelines._recorder import RecorderService, StepRecord

    svc = RecorderService(store_uri)
    with yard.start_run(experiment="rec", uri=store_uri) as run:
        pass

    def rec(**kw):
        return StepRecord(**{"node": "a", "step": "a", "status": "cached", "position": 1, **kw})

    with pytest.raises(InvalidArgumentError, match=r"status 'bogus' is not one of pending, cached"):
        svc.record_cached(run.id, "p", [rec(status="bogus", output_digest="0" * 64)])
    with pytest.raises(InvalidArgumentError, match=r"output digest '\.\./x' is not a hex digest"):
        svc.record_cached(run.id, "p", [rec(output_digest="../x")])
    with pytest.raises(BlobNotFoundError, match=r"cached output of step 'a': blob 0{64} is not stored"):
        svc.record_cached(run.id, "p", [rec(output_digest="0" * 64)])
    with pytest.raises(NotFoundError, match=r"Pipeline run 'f{32}' does not exist"):
        svc.start_step("f" * 32, "p", rec(status="running"))
    assert svc.pipeline_steps(run.id) == []
