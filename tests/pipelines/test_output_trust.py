"""Cached step outputs are loaded with the serializer the step declares, never the one stored
metadata names; a pickle only for a step with allow_pickle=True (issue 12)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelyard as yard
from modelyard._workspace import get_workspace
from modelyard.blobs import ManifestEntry
from modelyard.errors import InvalidArgumentError, SerializationError, StepFailedError
from modelyard.pipelines._schema import pipeline_cache
from modelyard.pipelines._serializers import load_output


class _Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path(self.marker).write_text, ("pwned",))


def _crafted_output(blobs, marker: Path, *, serializer: str = "cloudpickle", **meta) -> str:  # type: ignore[no-untyped-def]
    """An output manifest whose stored metadata says ``serializer`` and whose bytes are a pickle payload."""
    data = pickle.dumps(_Boom(str(marker)))
    entry = ManifestEntry("data.pkl", blobs.put_bytes(data), len(data))
    return blobs.put_manifest(
        [entry],
        kind="pipeline-output",
        serializer=serializer,
        serializer_version="1",
        type="builtins.dict",
        step="load",
        **meta,
    )


def test_load_output_follows_the_declaration_not_the_stored_name(workspace, tmp_path) -> None:
    marker = tmp_path / "marker"
    blobs = workspace.blobs
    digest = _crafted_output(blobs, marker)
    with pytest.raises(
        SerializationError,
        match=rf"Refusing to load the cached output {digest[:12]}… of step 'load': it is "
        r"stored as a cloudpickle pickle, which runs code when loaded, and the step does not declare "
        r"allow_pickle=True\.",
    ):
        load_output(blobs, digest)
    with pytest.raises(SerializationError, match=r"does not declare allow_pickle=True"):
        load_output(blobs, digest, serializer="json")
    assert not marker.exists()
    # stored metadata naming another safe serializer than the declared one is refused too
    npy = _crafted_output(blobs, marker, serializer="npy")
    with pytest.raises(
        SerializationError,
        match=rf"Refusing to load the cached output {npy[:12]}… of step 'load': it names "
        r"serializer 'npy', but the step declares 'json' \(accepted: json\)\.",
    ):
        load_output(blobs, npy, serializer="json")
    # a model output may name only the flavors step outputs are saved with: never pyfunc
    model = _crafted_output(blobs, marker, serializer="model", flavor="pyfunc", options={})
    with pytest.raises(
        SerializationError,
        match=r"This model output names flavor 'pyfunc'; step outputs are loaded only with "
        r"\['xgboost', 'lightgbm', 'torch', 'onnx', 'sklearn'\]\.",
    ):
        load_output(blobs, model)
    assert not marker.exists()
    load_output(blobs, digest, allow_pickle=True)  # the step's opt-in is what lets a pickle load
    assert marker.read_text() == "pwned"


PIPE = """
import modelyard as yard

@yard.step
def load(n: int) -> dict:
    return {"n": n}

@yard.step
def use(d: dict, k: int = 1) -> int:
    return d["n"] * k

@yard.pipeline(experiment="trust")
def pipe(n: int = 3, k: int = 1):
    return use(load(n), k=k)
"""


def test_a_tampered_cache_entry_never_unpickles(modules, store_uri, tmp_path) -> None:
    marker = tmp_path / "marker"
    modules.write("trust", PIPE)
    pipe = modules.load("trust")
    assert pipe.run(executor="local", uri=store_uri).value == 3
    ws = get_workspace(store_uri)
    evil = _crafted_output(ws.blobs, marker)
    # someone with write access to the store points the cached output of `load` at a pickle
    ws.store.write(
        lambda conn: conn.execute(
            sa.update(pipeline_cache).where(pipeline_cache.c.node == "load").values(output_digest=evil)
        )
    )
    with pytest.raises(
        StepFailedError,
        match=r"Refusing to load the cached output .* of step 'load'.*does not declare "
        r"allow_pickle=True",
    ):
        pipe.run(executor="local", uri=store_uri, k=2)
    assert not marker.exists()


def test_cloudpickle_serializer_needs_allow_pickle() -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"yard\.step declares serializer='cloudpickle', whose outputs run code "
        r"when they are loaded; pass allow_pickle=True as well to say so\.",
    ):
        yard.step(serializer="cloudpickle")
    yard.step(serializer="cloudpickle", allow_pickle=True)
