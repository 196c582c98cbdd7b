"""Reading the prediction log the model server writes (serving issue).

The server writes sampled predictions as Parquet segments in the blob store, one row per segment
in table ``prediction_log_segments`` (id, model_name, model_version, start_ms, end_ms, rows,
digest, created_at). A segment has the columns ``request_id``, ``timestamp_ms``, ``model_name``,
``model_version``, ``latency_ms``, ``fallback``, ``input.<col>`` per input column and ``output``
(or ``output.<k>``). This module reads the segments overlapping a time window.
"""

from __future__ import annotations

import io
import re
from typing import Any

import sqlalchemy as sa

from modelyard._workspace import Workspace
from modelyard.errors import InvalidArgumentError, NotFoundError

__all__ = ["SEGMENTS_TABLE", "features_and_outputs", "parse_duration", "read_window"]

SEGMENTS_TABLE = "prediction_log_segments"

_segments = sa.table(
    SEGMENTS_TABLE,
    sa.column("id"),
    sa.column("model_name"),
    sa.column("model_version"),
    sa.column("start_ms"),
    sa.column("end_ms"),
    sa.column("rows"),
    sa.column("digest"),
    sa.column("created_at"),
)

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(text: str | int | float, *, what: str = "duration") -> int:
    """``"5m"`` → 300000 ms. Units: ms, s, m, h, d, w. A bare number is seconds."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        if text <= 0:
            raise InvalidArgumentError(f"The {what} must be positive. Got {text!r} instead.")
        return int(text * 1000)
    m = _DURATION.match(str(text))
    if not m or float(m.group(1)) <= 0:
        raise InvalidArgumentError(
            f"The {what} must be a positive duration like 30s, 5m, 1h or 7d. Got {text!r} instead."
        )
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def read_window(
    ws: Workspace,
    model_name: str,
    start_ms: int,
    end_ms: int,
    *,
    model_version: int | None = None,
) -> Any:
    """The logged predictions of ``model_name`` with ``start_ms <= timestamp_ms < end_ms`` (pandas)."""
    import pandas as pd
    import pyarrow.parquet as pq

    with ws.store.read() as conn:
        if not sa.inspect(conn).has_table(SEGMENTS_TABLE):
            raise NotFoundError(
                f"The store has no prediction log (table {SEGMENTS_TABLE!r}). Serve the model with "
                "prediction logging on (yard serve ...), or compare frames directly with yard.drift(...)."
            )
        q = sa.select(_segments.c.digest, _segments.c.model_version).where(  # serving's table
            _segments.c.model_name == model_name,
            _segments.c.end_ms >= start_ms,
            _segments.c.start_ms < end_ms,
        )
        if model_version is not None:
            q = q.where(_segments.c.model_version == int(model_version))
        rows = conn.execute(q.order_by(_segments.c.start_ms)).all()
    tables = []
    for digest, _version in rows:
        t = pq.read_table(io.BytesIO(ws.blobs.read_bytes(digest)))
        ts = t.column("timestamp_ms").to_numpy()
        mask = (ts >= start_ms) & (ts < end_ms)
        if mask.all():
            tables.append(t.to_pandas())
        elif mask.any():
            tables.append(t.to_pandas()[mask])
    if not tables:
        return pd.DataFrame({"request_id": pd.Series([], dtype="object"), "timestamp_ms": pd.Series([], dtype="int64")})
    return pd.concat(tables, ignore_index=True)


def features_and_outputs(window: Any) -> tuple[Any, list[str]]:
    """``input.<col>`` columns renamed to ``<col>``, outputs kept as ``output``/``output.<k>``."""
    keep = {c: c[len("input."):] for c in window.columns if c.startswith("input.")}
    outputs = [c for c in window.columns if c == "output" or c.startswith("output.")]
    frame = window[list(keep) + outputs].rename(columns=keep)
    return frame, outputs
