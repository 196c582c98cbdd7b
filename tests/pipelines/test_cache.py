"""Cache keys, invalidation and explanations, resume after failure, --force, tracking records."""

from __future__ import annotations

import pytest

import modelyard as yard
from modelyard.errors import StepFailedError
from modelyard.pipelines import StepState
from testkit.pipelines import HELPERS, PIPE, reasons, states


def test_invalidation_cases(pipe_files):
    pipe = pipe_files.load("pipe")
    base = pipe.run(executor="local")

    # (a) the step body changes: that step reruns; downstream only if its output changed
    pipe_files.write(
        "pipe",
        PIPE.replace('out["b"] = double(out["a"]) + OFFSET', 'out["b"] = double(out["a"]) + OFFSET + 1'),
    )
    pipe = pipe_files.load("pipe")
    assert reasons(pipe.status())["featurize"] == "code of featurize changed"
    r = pipe.run(executor="local")
    assert states(r) == {"load": "cached", "featurize": "done", "train": "done"}
    assert r.steps["train"].reason == "input features changed (new output of featurize)"
    pipe_files.write("pipe", PIPE)

    # (b) a helper it calls changes (another user module, found transitively)
    pipe_files.write("helpers", HELPERS.replace("x * 2", "x * 3"))
    pipe = pipe_files.load("pipe")
    status = reasons(pipe.status())
    assert status["featurize"] == "code of double (used by featurize) changed"
    assert status["train"] == "input from featurize will be recomputed"
    assert status["load"].startswith("cached from run")
    pipe_files.write("helpers", HELPERS)
    pipe = pipe_files.load("pipe")
    assert all(not s.would_run for s in pipe.status())  # back to the cached version

    # a global constant it reads is part of the key too
    pipe_files.write("pipe", PIPE.replace("OFFSET = 1", "OFFSET = 2"))
    assert reasons(pipe_files.load("pipe").status())["featurize"] == "constant OFFSET changed"
    pipe_files.write("pipe", PIPE)
    pipe = pipe_files.load("pipe")

    # (c) a param changes: only the step that takes it reruns
    r = pipe.run(executor="local", lr=0.05)
    assert states(r) == {"load": "cached", "featurize": "cached", "train": "done"}
    assert r.steps["train"].reason == "param lr changed: 0.1 → 0.05"

    # (d) an upstream output changes
    r = pipe.run(executor="local", n=6)
    assert r.steps["load"].reason == "param n changed: 5 → 6"
    assert r.steps["featurize"].reason == "input df changed (new output of load)"
    assert states(r) == {"load": "done", "featurize": "done", "train": "done"}

    # (e) an output blob was deleted: the hit is refused and the step recomputes
    ws = yard.get_workspace()
    victim = base.steps["featurize"].output_digest
    entry = ws.blobs.read_manifest(victim)[0]
    ws.blobs.local_path(entry.digest).unlink()
    status = reasons(pipe.status())
    assert status["featurize"] == "output missing: the cached output's blobs were deleted"
    r = pipe.run(executor="local")
    assert states(r) == {"load": "cached", "featurize": "done", "train": "cached"}
    assert r.steps["featurize"].output_digest == victim
    assert ws.blobs.exists(entry.digest)


def test_whitespace_comments_docstrings_and_decorator_options_do_not_invalidate(pipe_files):
    pipe = pipe_files.load("pipe")
    pipe.run(executor="local")
    edited = PIPE.replace(
        "def featurize(df: pd.DataFrame) -> pd.DataFrame:\n    out = df.copy()",
        'def featurize(df: pd.DataFrame) -> pd.DataFrame:\n    """Add b."""\n\n    # copy first\n'
        "    out = df.copy()   ",
    ).replace("@yard.step\ndef train", "@yard.step(retries=3)\ndef train")
    assert edited != PIPE
    pipe_files.write("pipe", edited)
    pipe = pipe_files.load("pipe")
    assert [s.state for s in pipe.status()] == [StepState.CACHED] * 3


def test_upstream_rerun_with_identical_output_keeps_downstream_cached(pipe_files):
    pipe_files.load("pipe").run(executor="local")
    pipe_files.write("pipe", PIPE.replace('print("loading", n)', 'print("loading rows:", n)'))
    r = pipe_files.load("pipe").run(executor="local")
    assert states(r) == {"load": "done", "featurize": "cached", "train": "cached"}
    assert r.steps["load"].reason == "code of load changed"


def test_force_reruns_step_and_downstream(pipe_files):
    pipe = pipe_files.load("pipe")
    pipe.run(executor="local")
    r = pipe.run(executor="local", force=["featurize"])
    assert states(r) == {"load": "cached", "featurize": "done", "train": "done"}
    assert r.steps["featurize"].reason == "forced (--force)"
    assert r.steps["train"].reason == "downstream of a forced step"
    with pytest.raises(
        yard.errors.InvalidArgumentError, match=r"has no step 'featurise'. Did you mean 'featurize'\?"
    ):
        pipe.run(executor="local", force=["featurise"])


BAD = """
import modelyard as yard

class Thing:
    pass

@yard.step
def make() -> Thing:
    return Thing()

@yard.step
def untyped():
    return object()

@yard.step(allow_pickle=True)
def pickled():
    return Thing()

@yard.step
def use(x) -> int:
    return 1

@yard.pipeline
def annotated():
    return make()

@yard.pipeline
def unannotated():
    return use(untyped())

@yard.pipeline
def allowed():
    return pickled()

@yard.pipeline
def needs(n: int, k: int = 1):
    return use(n)

@yard.pipeline
def badarg():
    return use(Thing())

@yard.pipeline
def misuse():
    out = untyped()
    return use(out + 1)
"""


def test_bad_input_is_rejected_before_anything_runs(modules, store_uri):
    modules.write("bad", BAD)
    load = lambda name: modules.load("bad", name)  # noqa: E731
    errors = yard.errors
    cases = [
        (
            lambda: load("annotated").run(executor="local", uri=store_uri),
            errors.SerializationError,
            f"Step 'make' is annotated to return {modules.prefix}_bad.Thing, which no safe "
            f"serializer handles",
        ),
        (
            lambda: load("needs").run(executor="local", uri=store_uri),
            errors.InvalidArgumentError,
            "Pipeline 'needs' needs a value for param 'n': pass it as needs.run(n=...) or `--param n=...`.",
        ),
        (
            lambda: load("needs").run(executor="local", n=1, m=2, uri=store_uri),
            errors.InvalidArgumentError,
            "Pipeline 'needs' has no param 'm'. Its params: n, k.",
        ),
        (
            lambda: load("needs").run(executor="locl", n=1, uri=store_uri),
            errors.InvalidArgumentError,
            "The 'executor' parameter of run must be one of ['local', 'process', 'ray']. Got "
            "'locl' instead. Did you mean 'local'?",
        ),
        (
            lambda: load("needs").run(executor="process", workers=0, n=1, uri=store_uri),
            errors.InvalidArgumentError,
            "The 'workers' parameter of run must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            lambda: load("badarg").run(executor="local", uri=store_uri),
            errors.InvalidArgumentError,
            "The argument 'x' of step 'use' is a Thing, which cannot be part of a cache key.",
        ),
        (
            lambda: load("misuse").run(executor="local", uri=store_uri),
            errors.InvalidArgumentError,
            "<output of step 'untyped'> is a reference while the pipeline is being built, not a value",
        ),
    ]
    for call, kind, text in cases:
        with pytest.raises(kind) as info:
            call()
        assert str(info.value).startswith(text), str(info.value)
    assert len(yard.search_runs(uri=store_uri)) == 0  # nothing ran, nothing was written

    # an object no serializer takes, found only at run time: the step fails, naming the fix
    with pytest.raises(StepFailedError, match=r"which no safe serializer handles .*allow_pickle=True"):
        load("unannotated").run(executor="local", uri=store_uri)
    assert load("allowed").run(executor="local", uri=store_uri).value.__class__.__name__ == "Thing"


def test_decorator_options_are_validated():
    with pytest.raises(
        yard.errors.InvalidArgumentError,
        match=r"The 'retries' parameter of yard.step must be an int in the range \[0, inf\). Got -1 instead.",
    ):
        yard.step(retries=-1)
    with pytest.raises(
        yard.errors.InvalidArgumentError, match=r"Got 'parket' instead. Did you mean 'parquet'\?"
    ):
        yard.step(serializer="parket")
    with pytest.raises(yard.errors.InvalidArgumentError, match="resources"):
        yard.step(resources={"num_cpus": -1})


def test_steps_stay_plain_functions(pipe_files):
    pipe = pipe_files.load("pipe")
    mod = __import__(f"{pipe_files.prefix}_pipe")
    df = mod.load(3)  # calling a step runs its body, untracked
    assert list(df["a"]) == [0, 1, 2]
    assert mod.featurize.__yard_step__.name == "featurize"
    assert pipe(n=3) == {"lr": 0.1, "total": 1 + 3 + 5}  # so does calling the pipeline
    assert len(yard.search_runs()) == 0


FANOUT = """
import numpy as np
import modelyard as yard

@yard.step
def square(x: int) -> int:
    return x * x

@yard.step(retries=2)
def flaky_sum(values: list, counter: str) -> np.ndarray:
    import pathlib
    p = pathlib.Path(counter)
    n = int(p.read_text()) if p.exists() else 0
    p.write_text(str(n + 1))
    if n == 0:
        raise ValueError("first attempt fails")
    return np.array(values)

@yard.pipeline(experiment="fanout")
def pipe(xs: list = [1, 2, 3], counter: str = ""):
    return flaky_sum(square.map(xs), counter)
"""


def test_map_fans_out_and_retries(modules, tmp_path):
    modules.write("fan", FANOUT)
    pipe = modules.load("fan")
    graph = pipe.graph()
    assert list(graph.nodes) == ["square[0]", "square[1]", "square[2]", "flaky_sum"]
    assert graph.nodes["flaky_sum"].upstream == ["square[0]", "square[1]", "square[2]"]
    r = pipe.run(executor="local", counter=str(tmp_path / "count"))
    assert r.value.tolist() == [1, 4, 9]
    assert r.steps["flaky_sum"].attempts == 2
    r = pipe.run(executor="local", counter=str(tmp_path / "count"), xs=[1, 2, 4])
    assert states(r) == {
        "square[0]": "cached",
        "square[1]": "cached",
        "square[2]": "done",
        "flaky_sum": "done",
    }


def test_cache_entries_keep_outputs_through_gc_until_cleared(pipe_files, store_uri):
    from modelyard._maintenance import gc

    pipe = pipe_files.load("pipe")
    r = pipe.run(executor="local", uri=store_uri)
    ws = yard.get_workspace(store_uri)
    outputs = [s.output_digest for s in r.steps.values()]
    yard.delete_run(r.run_id, uri=store_uri)
    gc(store_uri, grace_seconds=0)
    assert all(ws.blobs.exists(d) for d in outputs)  # the cache index still references them
    assert pipe.run(executor="local", uri=store_uri).cached == ["load", "featurize", "train"]

    assert yard.pipelines.clear_cache("pipe", step="train", uri=store_uri) == 1
    assert reasons(pipe.status(uri=store_uri))["train"].startswith("never run before")
    with pytest.raises(
        yard.errors.NotFoundError, match=r"No cache entries for pipeline 'pip'\. Did you mean 'pipe'\?"
    ):
        yard.pipelines.clear_cache("pip", uri=store_uri)
    assert yard.pipelines.clear_cache("pipe", uri=store_uri) == 2
    for run in yard.search_runs("cache-test", uri=store_uri):
        yard.delete_run(run.id, uri=store_uri)
    gc(store_uri, grace_seconds=0)
    assert not any(ws.blobs.exists(d) for d in outputs)
