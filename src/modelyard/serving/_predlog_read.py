"""Reading the prediction log back: every logged row of a model (:func:`read_prediction_log`),
one window as the monitoring feature reads it (:func:`read_window`) and its features and outputs
(:func:`features_and_outputs`). The writer and the segment format are in ``_predlog.py``, which
re-exports these readers.
"""

from __future__ import annotations

import io
from typing import Any

from modelyard._workspace import Workspace, get_workspace
from modelyard.errors import NotFoundError

__all__ = ["features_and_outputs", "read_prediction_log", "read_window"]


def read_prediction_log(
    workspace: Workspace | str | None = None,
    model_name: str | None = None,
    *,
    model_version: int | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Any:
    """All logged rows (a pandas DataFrame) of ``model_name`` (and version), oldest first;
    ``start_ms <= timestamp_ms <= end_ms`` when given."""
    import pandas as pd

    tables = _read(get_workspace(workspace), model_name, model_version, start_ms, end_ms, end_inclusive=True)
    return _concat(tables) if tables else pd.DataFrame()


def read_window(
    ws: Workspace, model_name: str, start_ms: int, end_ms: int, *, model_version: int | None = None
) -> Any:
    """The logged predictions of ``model_name`` with ``start_ms <= timestamp_ms < end_ms`` (pandas), as the
    monitoring feature reads them: a store without the log's table is a :class:`NotFoundError`, and an
    empty window still has the columns ``request_id`` and ``timestamp_ms``."""
    import pandas as pd

    from modelyard.serving._predlog_store import PredictionLogService

    if not PredictionLogService(ws).has_log():
        raise NotFoundError(
            "The store has no prediction log (table 'prediction_log_segments'). Serve the model with "
            "prediction logging on (yard serve ...), or compare frames directly with yard.drift(...)."
        )
    tables = [
        table
        for table in _read(ws, model_name, model_version, start_ms, end_ms, end_inclusive=False)
        if table.num_rows
    ]
    if not tables:
        return pd.DataFrame(
            {"request_id": pd.Series([], dtype="object"), "timestamp_ms": pd.Series([], dtype="int64")}
        )
    return _concat(tables)


def features_and_outputs(window: Any) -> tuple[Any, list[str]]:
    """``input.<col>`` columns renamed to ``<col>``, outputs kept as ``output``/``output.<k>``."""
    keep = {c: c[len("input.") :] for c in window.columns if c.startswith("input.")}
    outputs = [c for c in window.columns if c == "output" or c.startswith("output.")]
    frame = window[list(keep) + outputs].rename(columns=keep)
    return frame, outputs


def _read(
    ws: Workspace,
    model_name: str | None,
    model_version: int | None,
    start_ms: int | None,
    end_ms: int | None,
    *,
    end_inclusive: bool,
) -> Any:
    """One Arrow table per segment that overlaps the window (oldest first), filtered to the window."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from modelyard.serving._predlog_store import PredictionLogService

    digests = PredictionLogService(ws).segment_digests(
        model_name,
        None if model_version is None else int(model_version),
        start_ms,
        end_ms,
        end_inclusive,
    )
    tables = []
    for digest in digests:
        table = pq.read_table(io.BytesIO(ws.blobs.read_bytes(digest)))
        ts = table.column("timestamp_ms")
        keep = None
        if start_ms is not None:
            keep = pc.greater_equal(ts, start_ms)
        if end_ms is not None:
            below = pc.less_equal(ts, end_ms) if end_inclusive else pc.less(ts, end_ms)
            keep = below if keep is None else pc.and_(keep, below)
        tables.append(table if keep is None else table.filter(keep))
    return tables


def _concat(tables: list[Any]) -> Any:
    """One pandas frame; segments whose columns' types differ (a model version that changed its outputs
    from numbers to labels) are joined by pandas instead of refused."""
    import pandas as pd
    import pyarrow as pa

    try:
        return pa.concat_tables(tables, promote_options="permissive").to_pandas()
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pd.concat([t.to_pandas() for t in tables], ignore_index=True)
