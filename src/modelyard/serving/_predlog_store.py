"""The prediction log's segment rows in the metadata store, as service operations.

The model server writes each Parquet segment to the blob store itself (streamed to a modelyard
server when the store is ``http(s)://``) and then records it here; monitoring reads the digests of
the segments that overlap a window. On a remote workspace these calls go to the server
(:mod:`modelyard._rpc`), so ``yard serve`` against a team server logs its predictions there.
"""

from __future__ import annotations

import sqlalchemy as sa

from modelyard._rpc import op, service
from modelyard._shared import now_ms
from modelyard._workspace import WorkspaceService
from modelyard.errors import BlobNotFoundError, InvalidArgumentError
from modelyard.serving._schema import prediction_log_segments as t

__all__ = ["PredictionLogService"]


@service("predlog")
class PredictionLogService(WorkspaceService):
    """Segment rows of the prediction log of one workspace."""

    @op("writer", on=("model", "model_name"))
    def record_segment(
        self, model_name: str, model_version: int, start_ms: int, end_ms: int, rows: int, digest: str
    ) -> None:
        """Record a stored Parquet segment of ``model_name``/``model_version`` predictions."""
        if rows < 0 or end_ms < start_ms:
            raise InvalidArgumentError(
                f"A prediction log segment needs rows >= 0 and end_ms >= start_ms; got rows={rows}, "
                f"start_ms={start_ms}, end_ms={end_ms}."
            )
        if not self.ws.blobs.exists(digest):
            raise BlobNotFoundError(
                f"Cannot record a prediction log segment of {model_name}/{model_version}: blob {digest} "
                "is not stored; upload it first."
            )
        row = {
            "model_name": model_name,
            "model_version": model_version,
            "start_ms": start_ms,
            "end_ms": end_ms,
            "rows": rows,
            "digest": digest,
            "created_at": now_ms(),
        }
        self.ws.store.write(lambda conn: conn.execute(sa.insert(t).values(**row)))

    @op("reader")
    def has_log(self) -> bool:
        """True when the store has the prediction log's table."""
        with self.ws.store.read() as conn:
            return bool(sa.inspect(conn).has_table(t.name))

    @op("reader")
    def segment_digests(
        self,
        model_name: str | None = None,
        model_version: int | None = None,
        start_ms: int | None = None,
        end_ms: int | None = None,
        end_inclusive: bool = True,
    ) -> list[str]:
        """Digests of the segments that overlap ``[start_ms, end_ms]`` (or ``[start_ms, end_ms)``), oldest
        first."""
        q = sa.select(t.c.digest).order_by(t.c.start_ms, t.c.id)
        if model_name is not None:
            q = q.where(t.c.model_name == model_name)
        if model_version is not None:
            q = q.where(t.c.model_version == int(model_version))
        if start_ms is not None:
            q = q.where(t.c.end_ms >= start_ms)
        if end_ms is not None:
            q = q.where(t.c.start_ms <= end_ms if end_inclusive else t.c.start_ms < end_ms)
        with self.ws.store.read() as conn:
            return [str(r[0]) for r in conn.execute(q)]

    @op("admin")
    def prune(self, older_than_ms: int) -> int:
        """Delete segment rows whose newest prediction is older than ``older_than_ms``; returns how many."""
        return int(
            self.ws.store.write(
                lambda conn: conn.execute(sa.delete(t).where(t.c.end_ms < older_than_ms)).rowcount
            )
        )
