from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import sqlalchemy as sa

from modelyard._maintenance import BLOB_REFERENCES, gc, referenced_digests
from modelyard.serving import PredictionLogger, read_prediction_log
from modelyard.serving._schema import prediction_log_segments as t


def _segments(ws) -> list[dict]:
    with ws.store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(t).order_by(t.c.id))]


def test_segments_and_parquet_format(workspace) -> None:
    log = PredictionLogger(workspace, flush_rows=1000, flush_interval_s=60)
    inputs = pd.DataFrame({"x": [1.0, 2.0], "plan": ["pro", "team"]})
    assert log.log("r1", "churn", 3, inputs, np.array([0.1, 0.9]), 1.5)
    assert log.log("r2", "churn", 3, {"x": [3.0], "plan": ["basic"]}, np.array([0.5]), 2.5, fallback=True)
    assert log.log("r3", "churn", 4, {"x": [4.0], "plan": ["pro"]}, np.array(["yes"]), 1.0)
    assert log.log("r4", "multi", 1, {"x": [1.0, 2.0]}, pd.DataFrame({"a": [1, 2], "b": [3.0, 4.0]}), 1.0)
    log.close()
    segs = _segments(workspace)
    assert [(s["model_name"], s["model_version"], s["rows"]) for s in segs] == [
        ("churn", 3, 3),
        ("churn", 4, 1),
        ("multi", 1, 2),
    ]
    assert all(s["start_ms"] <= s["end_ms"] and len(s["digest"]) == 64 for s in segs)
    table = pq.read_table(io.BytesIO(workspace.blobs.read_bytes(segs[0]["digest"])))
    schema = {f.name: str(f.type) for f in table.schema}
    assert schema == {
        "request_id": "string",
        "timestamp_ms": "int64",
        "model_name": "string",
        "model_version": "int64",
        "latency_ms": "double",
        "fallback": "bool",
        "input.x": "double",
        "input.plan": "string",
        "output": "double",
    }
    df = table.to_pandas()
    assert df["request_id"].tolist() == ["r1", "r1", "r2"]
    assert df["fallback"].tolist() == [False, False, True]
    assert df["output"].tolist() == [0.1, 0.9, 0.5]
    labels = read_prediction_log(workspace, "churn", model_version=4)
    assert labels["output"].tolist() == ["yes"]
    multi = read_prediction_log(workspace, "multi")
    assert multi["output.a"].tolist() == [1.0, 2.0] and multi["output.b"].tolist() == [3.0, 4.0]
    assert ("prediction_log_segments", "digest") in BLOB_REFERENCES
    live, missing = referenced_digests(workspace)
    assert {s["digest"] for s in segs} <= live and not missing


def test_full_buffer_drops_and_counts(workspace) -> None:
    drops: list[int] = []
    log = PredictionLogger(
        workspace, max_buffer_rows=3, flush_rows=1000, flush_interval_s=60, on_drop=drops.append
    )
    assert log.log("a", "m", 1, {"x": [1, 2]}, [0, 1], 1.0)
    assert not log.log("b", "m", 1, {"x": [1, 2]}, [0, 1], 1.0)
    assert log.dropped == 2 and drops == [2]
    log.close()
    assert log.written_rows == 2


def test_sampling_and_background_flush(workspace) -> None:
    log = PredictionLogger(workspace, sample_rate=0.0)
    assert not log.log("a", "m", 1, {"x": [1]}, [0], 1.0)
    log.sample_rate = 1.0
    log.flush_rows = 2
    for i in range(4):
        log.log(f"r{i}", "m", 1, {"x": [i]}, [i], 1.0)
    log.close()
    df = read_prediction_log(workspace, "m")
    assert sorted(df["request_id"]) == ["r0", "r1", "r2", "r3"]
    assert sorted(df["input.x"].tolist()) == [0, 1, 2, 3]


def test_prune_then_gc_removes_blobs(workspace) -> None:
    log = PredictionLogger(workspace)
    log.log("a", "m", 1, {"x": [1.0]}, [0.0], 1.0)
    log.close()
    (seg,) = _segments(workspace)
    assert PredictionLogger.prune(workspace, older_than_ms=seg["end_ms"]) == 0
    assert PredictionLogger.prune(workspace, older_than_ms=seg["end_ms"] + 1) == 1
    assert _segments(workspace) == []
    gc(workspace, grace_seconds=0)
    assert not workspace.blobs.exists(seg["digest"])


def test_matrix_rows_log_typed_columns_and_mix_with_dict_entries(workspace) -> None:
    from modelyard.serving import MatrixRows

    cols, dtypes = ["a", "n", "b"], ["float64", "int64", "bool"]
    x = np.array([[0.5, 3.0, 1.0], [np.nan, np.nan, 0.0], [2.5, 7.0, np.nan]])
    log = PredictionLogger(workspace, flush_rows=1000, flush_interval_s=60)
    assert log.log("m1", "mat", 1, MatrixRows(cols, x[:2], dtypes), np.array([1, 0]), 1.0)
    assert log.log("m2", "mat", 1, MatrixRows(cols, x[2:], dtypes), np.array([1]), 2.0)
    log.flush()
    df = read_prediction_log(workspace, "mat")
    assert df["request_id"].tolist() == ["m1", "m1", "m2"]
    table = pq.read_table(io.BytesIO(workspace.blobs.read_bytes(_segments(workspace)[0]["digest"])))
    assert {f.name: str(f.type) for f in table.schema if f.name.startswith("input.")} == {
        "input.a": "double",
        "input.n": "int64",
        "input.b": "bool",
    }
    assert table.column("input.a").to_pylist() == [0.5, None, 2.5]  # NaN (missing) is null
    assert table.column("input.n").to_pylist() == [3, None, 7]
    assert table.column("input.b").to_pylist() == [True, False, None]
    assert df["output"].tolist() == [1.0, 0.0, 1.0]
    # a matrix entry and a dict entry in one segment: the same table as two dict entries
    assert log.log("d1", "mix", 1, {"a": [1.0], "n": [2], "b": [True]}, np.array([0.25]), 1.0)
    assert log.log("m3", "mix", 1, MatrixRows(cols, x[:1], dtypes), np.array([0.75]), 1.0)
    log.close()
    mix = read_prediction_log(workspace, "mix")
    assert mix["input.a"].tolist() == [1.0, 0.5] and mix["input.n"].tolist() == [2, 3]
    assert mix["input.b"].tolist() == [True, True] and mix["output"].tolist() == [0.25, 0.75]


def test_one_reader_for_serving_and_monitoring(workspace) -> None:
    """read_prediction_log takes [start, end]; monitoring's read_window [start, end) and names a
    store without the log; segments whose output type changed between versions still read as one."""
    from modelyard.serving._predlog import features_and_outputs, read_window

    times = iter([1000, 2000, 3000])  # the three requests; the segments are written at 4000
    log = PredictionLogger(workspace, flush_rows=1000, flush_interval_s=60, clock=lambda: next(times, 4000))
    log.log("r1", "m", 1, {"x": [1.0]}, np.array([0.5]), 1.0)
    log.log("r2", "m", 1, {"x": [2.0]}, np.array([0.7]), 1.0)
    log.log("r3", "m", 2, {"x": [3.0]}, np.array(["yes"]), 1.0)  # v2 answers labels
    log.close()
    assert read_prediction_log(workspace, "m", start_ms=1000, end_ms=2000)["request_id"].tolist() == [
        "r1",
        "r2",
    ]
    window = read_window(workspace, "m", 1000, 2000)
    assert window["request_id"].tolist() == ["r1"]
    frame, outputs = features_and_outputs(window)
    assert list(frame.columns) == ["x", "output"] and outputs == ["output"]
    both = read_window(workspace, "m", 0, 10_000)
    assert both["output"].tolist() == [0.5, 0.7, "yes"]
    empty = read_window(workspace, "m", 5000, 6000)
    assert empty.empty and list(empty.columns) == ["request_id", "timestamp_ms"]
    assert read_prediction_log(workspace, "m", start_ms=5000).empty


def test_segments_dictionary_encode_repeated_text_only() -> None:
    import numpy as np

    from modelyard.serving._predlog import MatrixRows, TypedColumns, _dictionary_columns, _Entry, _to_table

    numeric = _Entry("r1", "m", 1, MatrixRows(["a", "b"], np.ones((3, 2))), np.ones(3), 1.0, False, 3, 1)
    assert _dictionary_columns(_to_table([numeric])) == ["model_name"]
    typed = TypedColumns({"city": ["x", "y"], "n": [1.0, 2.0]}, {"city": "string", "n": "float64"})
    mixed = _Entry("r2", "m", 1, typed, np.ones(2), 1.0, False, 2, 2)
    assert _dictionary_columns(_to_table([mixed])) == ["model_name", "input.city"]
