"""Write what a pipeline run did into the tracking tables and the cache index.

Each step is a nested run of the pipeline run (params, tags ``yard.cache`` / ``yard.reason`` /
``yard.cache_key``, its output as artifact ``outputs/<node>``, its captured logs as
``logs/step.log``) plus a ``pipeline_step_runs`` row. Cached steps are written in one batched
transaction per scheduling pass, so a fully cached 100-step rerun costs a handful of writes.

:class:`RecorderService` holds the operations (:mod:`modelyard._rpc`): they run where the
metadata store is (here, or on a modelyard server), build every row from validated
:class:`StepRecord` fields and take the experiment and user from the pipeline run and the caller,
never from the client. :class:`Recorder` is the driver's side: it turns nodes and outcomes into
records and calls the operations.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._rpc import op, service
from modelyard._shared import new_run_id, now_ms, user_name
from modelyard._workspace import Workspace, WorkspaceService
from modelyard.errors import BlobNotFoundError, InvalidArgumentError, NotFoundError, did_you_mean
from modelyard.pipelines._cache import CacheEntry, latest_entries, lookup
from modelyard.pipelines._graph import Node, iter_datasets, iter_refs
from modelyard.pipelines._records import StepOutcome, StepState
from modelyard.pipelines._schema import pipeline_cache, pipeline_step_runs
from modelyard.pipelines._serializers import output_exists
from modelyard.store._schema import artifacts, params, runs, tags
from modelyard.tracking._records import RunStatus
from modelyard.tracking._validation import check_key

__all__ = ["CacheProbe", "DatasetInput", "Recorder", "RecorderService", "StepRecord"]

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _text(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class DatasetInput:
    """A dataset version a step reads (recorded as an input of its run)."""

    name: str
    version: int


@dataclass
class StepRecord:
    """What one step of a pipeline run did, as the recorder's operations receive it."""

    node: str
    step: str
    #: a :class:`StepState` value
    status: str
    position: int
    reason: str = ""
    cache_key: str | None = None
    cache_hit: bool = False
    output_digest: str | None = None
    size: int = 0
    duration_s: float | None = None
    attempts: int = 0
    error: str | None = None
    #: upstream node → its output digest
    inputs: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    datasets: list[DatasetInput] = field(default_factory=list)
    #: the step's nested run (set by ``start_step`` for steps that ran)
    run_id: str | None = None


@dataclass
class CacheProbe:
    """The cache's answer for one key: the entry and whether its output is still stored; on a miss
    the node's recent entries (newest first), to explain what differs."""

    entry: CacheEntry | None
    output_present: bool = False
    recent: list[CacheEntry] = field(default_factory=list)


def _check_record(rec: StepRecord) -> None:
    check_key(rec.node, "pipeline node")
    check_key(rec.step, "step name")
    if rec.status not in {s.value for s in StepState}:
        raise InvalidArgumentError(
            f"Step {rec.node!r}: status {rec.status!r} is not one of {', '.join(s.value for s in StepState)}."
        )
    for what, digest in (("cache key", rec.cache_key), ("output digest", rec.output_digest)):
        if digest is not None and not _DIGEST.match(digest):
            raise InvalidArgumentError(f"Step {rec.node!r}: {what} {digest!r} is not a hex digest.")
    if rec.size < 0 or rec.attempts < 0:
        raise InvalidArgumentError(f"Step {rec.node!r}: size and attempts cannot be negative.")
    for up, digest in rec.inputs.items():
        check_key(up, "pipeline node")
        if not _DIGEST.match(digest):
            raise InvalidArgumentError(
                f"Step {rec.node!r}: input {up!r} digest {digest!r} is not a hex digest."
            )


@service("pipelines")
class RecorderService(WorkspaceService):
    """Pipeline runs' steps, lineage and cache entries in one workspace."""

    # -- the cache -------------------------------------------------------------------------------
    @op("reader")
    def cache_probe(self, pipeline: str, node: str, key: str) -> CacheProbe:
        """Look ``key`` up in the cache index (and check its output is stored); on a miss, the
        node's most recent entries."""
        with self.store.read() as conn:
            entry = lookup(conn, key)
            if entry is not None:
                return CacheProbe(entry, output_exists(self.ws.blobs, entry.output_digest))
            return CacheProbe(None, False, latest_entries(conn, pipeline, node))

    @op("writer")
    def clear_cache(self, pipeline: str, step: str | None = None) -> int:
        """Forget the cache entries of ``pipeline`` (only ``step``'s with ``step``); return how many."""
        pc = pipeline_cache
        cond = pc.c.pipeline == pipeline
        if step is not None:
            cond = sa.and_(cond, sa.or_(pc.c.step == step, pc.c.node == step))
        with self.store.read() as conn:
            if (
                conn.execute(sa.select(pc.c.cache_key).where(pc.c.pipeline == pipeline).limit(1)).first()
                is None
            ):
                known = [r[0] for r in conn.execute(sa.select(pc.c.pipeline).distinct())]
                raise NotFoundError(
                    f"No cache entries for pipeline {pipeline!r}.{did_you_mean(pipeline, known)}"
                    + (f" Pipelines with entries: {', '.join(sorted(known))}." if known else "")
                )
        return int(self.store.write(lambda conn: conn.execute(pc.delete().where(cond)).rowcount))

    # -- reading ---------------------------------------------------------------------------------
    @op("reader", on=("run", "run_id"))
    def pipeline_steps(self, run_id: str) -> list[dict[str, Any]]:
        """The step rows of pipeline run ``run_id`` in order (empty when it is not a pipeline run)."""
        psr = pipeline_step_runs
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(psr).where(psr.c.pipeline_run_id == run_id).order_by(psr.c.position)
            ).all()
        return [dict(r._mapping) for r in rows]

    @op("reader", on=("run", "run_id"))
    def is_step_run(self, run_id: str) -> bool:
        """True when ``run_id`` is the nested run of a pipeline step."""
        psr = pipeline_step_runs
        with self.store.read() as conn:
            return conn.execute(sa.select(psr.c.run_id).where(psr.c.run_id == run_id)).first() is not None

    # -- writing ---------------------------------------------------------------------------------
    def _parent(self, conn: Connection, pipeline_run_id: str) -> int:
        row = conn.execute(sa.select(runs.c.experiment_id).where(runs.c.id == pipeline_run_id)).first()
        if row is None:
            raise NotFoundError(f"Pipeline run {pipeline_run_id!r} does not exist.")
        return int(row[0])

    def _run_row(
        self,
        exp_id: int,
        pipeline: str,
        parent: str,
        rec: StepRecord,
        status: RunStatus,
        start: int,
        end: int | None,
    ) -> dict[str, Any]:
        return {
            "id": rec.run_id,
            "experiment_id": exp_id,
            "name": f"{pipeline}.{rec.node}",
            "status": status.value,
            "start_time": start,
            "end_time": end,
            "parent_id": parent,
            "user": user_name(),
            "deleted": False,
            "error": rec.error,
            "environment": "{}",
        }

    @staticmethod
    def _params(rec: StepRecord) -> list[dict[str, Any]]:
        return [
            {"run_id": rec.run_id, "key": check_key(k, "param"), "value": _text(v)}
            for k, v in rec.params.items()
        ]

    @staticmethod
    def _tags(pipeline: str, parent: str, rec: StepRecord) -> list[dict[str, Any]]:
        t = {
            "yard.pipeline": pipeline,
            "yard.pipeline_run": parent,
            "yard.node": rec.node,
            "yard.step": rec.step,
            "yard.cache": "hit" if rec.cache_hit else "miss",
            "yard.reason": _text(rec.reason, 2000),
        }
        if rec.cache_key:
            t["yard.cache_key"] = rec.cache_key
        for up, digest in rec.inputs.items():
            t[f"yard.input.{up}"] = digest
        return [{"run_id": rec.run_id, "key": k, "value": v} for k, v in t.items()]

    @staticmethod
    def _step_row(pipeline: str, parent: str, rec: StepRecord) -> dict[str, Any]:
        return {
            "run_id": rec.run_id,
            "pipeline_run_id": parent,
            "pipeline": pipeline,
            "node": rec.node,
            "step": rec.step,
            "position": rec.position,
            "status": rec.status,
            "cache_key": rec.cache_key,
            "cache_hit": rec.cache_hit,
            "reason": rec.reason,
            "inputs": json.dumps(rec.inputs, sort_keys=True),
            "output_digest": rec.output_digest,
            "duration_s": rec.duration_s,
            "attempts": rec.attempts,
        }

    @staticmethod
    def _output_artifact(rec: StepRecord, when: int) -> dict[str, Any]:
        return {
            "run_id": rec.run_id,
            "path": f"outputs/{rec.node}",
            "kind": "dir",
            "digest": rec.output_digest,
            "size": rec.size,
            "created_at": when,
        }

    def _require_blob(self, digest: str, what: str) -> None:
        if not self.ws.blobs.exists(digest):
            raise BlobNotFoundError(f"Cannot record {what}: blob {digest} is not stored; upload it first.")

    def _lineage(self, rec: StepRecord) -> None:
        if not rec.datasets:
            return
        from modelyard.data._service import DataService

        svc = DataService(self.ws)
        for d in rec.datasets:
            svc.add_input(rec.run_id or "", d.name, d.version)

    @op("writer", on=("run", "pipeline_run_id"))
    def record_cached(self, pipeline_run_id: str, pipeline: str, steps: list[StepRecord]) -> list[str]:
        """Record steps served from the cache (one finished nested run each); return their run ids."""
        check_key(pipeline, "pipeline name")
        for rec in steps:
            _check_record(rec)
            if rec.output_digest is None:
                raise InvalidArgumentError(f"Cached step {rec.node!r} names no output digest.")
            self._require_blob(rec.output_digest, f"the cached output of step {rec.node!r}")
            rec.run_id = new_run_id()
        when = now_ms()

        def fn(conn: Connection) -> None:
            exp_id = self._parent(conn, pipeline_run_id)
            run_rows, param_rows, tag_rows, art_rows, step_rows = [], [], [], [], []
            for rec in steps:
                run_rows.append(
                    self._run_row(exp_id, pipeline, pipeline_run_id, rec, RunStatus.FINISHED, when, when)
                )
                param_rows += self._params(rec)
                tag_rows += self._tags(pipeline, pipeline_run_id, rec)
                art_rows.append(self._output_artifact(rec, when))
                step_rows.append(self._step_row(pipeline, pipeline_run_id, rec))
            if not run_rows:
                return
            conn.execute(runs.insert(), run_rows)
            if param_rows:
                conn.execute(params.insert(), param_rows)
            conn.execute(tags.insert(), tag_rows)
            conn.execute(artifacts.insert(), art_rows)
            conn.execute(pipeline_step_runs.insert(), step_rows)

        self.store.write(fn)
        for rec in steps:
            self._lineage(rec)
        return [rec.run_id or "" for rec in steps]

    @op("writer", on=("run", "pipeline_run_id"))
    def start_step(self, pipeline_run_id: str, pipeline: str, record: StepRecord) -> str:
        """Record a step that starts running (a running nested run); return its run id."""
        check_key(pipeline, "pipeline name")
        _check_record(record)
        record.run_id = new_run_id()
        prm = self._params(record)
        start = now_ms()

        def fn(conn: Connection) -> None:
            exp_id = self._parent(conn, pipeline_run_id)
            row = self._run_row(exp_id, pipeline, pipeline_run_id, record, RunStatus.RUNNING, start, None)
            conn.execute(runs.insert().values(**row))
            if prm:
                conn.execute(params.insert(), prm)

        self.store.write(fn)
        self._lineage(record)
        return record.run_id

    @op("writer", on=("run", "pipeline_run_id"))
    def finish_step(
        self,
        pipeline_run_id: str,
        pipeline: str,
        record: StepRecord,
        log_digest: str | None = None,
        log_size: int = 0,
        cache_doc: dict[str, Any] | None = None,
    ) -> None:
        """Record how a started step ended: its run's status, tags, output and log artifacts, its step
        row, and (``cache_doc`` given, the step done) its cache entry."""
        check_key(pipeline, "pipeline name")
        _check_record(record)
        rid = record.run_id or ""
        ok = record.status == StepState.DONE.value
        if ok and record.output_digest:
            self._require_blob(record.output_digest, f"the output of step {record.node!r}")
        if log_digest is not None:
            self._require_blob(log_digest, f"the log of step {record.node!r}")
        when = now_ms()

        def fn(conn: Connection) -> None:
            row = conn.execute(sa.select(runs.c.parent_id, runs.c.status).where(runs.c.id == rid)).first()
            if row is None or row.parent_id != pipeline_run_id:
                raise NotFoundError(f"Step run {rid!r} of pipeline run {pipeline_run_id!r} does not exist.")
            conn.execute(
                runs.update()
                .where(runs.c.id == rid)
                .values(
                    status=(RunStatus.FINISHED if ok else RunStatus.FAILED).value,
                    end_time=when,
                    error=record.error,
                )
            )
            conn.execute(tags.insert(), self._tags(pipeline, pipeline_run_id, record))
            arts = []
            if ok and record.output_digest:
                arts.append(self._output_artifact(record, when))
            if log_digest:
                arts.append(
                    {
                        "run_id": rid,
                        "path": "logs/step.log",
                        "kind": "file",
                        "digest": log_digest,
                        "size": log_size,
                        "created_at": when,
                    }
                )
            if arts:
                conn.execute(artifacts.insert(), arts)
            conn.execute(
                pipeline_step_runs.insert().values(**self._step_row(pipeline, pipeline_run_id, record))
            )
            if ok and record.cache_key and record.output_digest and cache_doc is not None:
                conn.execute(pipeline_cache.delete().where(pipeline_cache.c.cache_key == record.cache_key))
                conn.execute(
                    pipeline_cache.insert().values(
                        cache_key=record.cache_key,
                        pipeline=pipeline,
                        node=record.node,
                        step=record.step,
                        output_digest=record.output_digest,
                        size=record.size,
                        run_id=rid,
                        key_doc=json.dumps(cache_doc, sort_keys=True, allow_nan=True),
                        created_at=when,
                    )
                )

        self.store.write(fn)

    @op("writer", on=("run", "pipeline_run_id"))
    def record_skipped(self, pipeline_run_id: str, pipeline: str, steps: list[StepRecord]) -> None:
        """Steps never started because an upstream step failed: recorded without a run."""
        check_key(pipeline, "pipeline name")
        rows = []
        for rec in steps:
            _check_record(rec)
            rec.run_id = new_run_id()
            rows.append(self._step_row(pipeline, pipeline_run_id, rec))
        if rows:

            def fn(conn: Connection) -> None:
                self._parent(conn, pipeline_run_id)
                conn.execute(pipeline_step_runs.insert(), rows)

            self.store.write(fn)


class Recorder:
    """Nested step runs and cache entries of one pipeline run (the driver's side)."""

    def __init__(
        self,
        ws: Workspace,
        pipeline: str,
        pipeline_run_id: str,
        datasets: dict[str, Any] | None = None,
    ) -> None:
        self.ws = ws
        self.svc = RecorderService(ws)
        self.datasets = datasets or {}
        self.pipeline = pipeline
        self.parent = pipeline_run_id
        self.position = 0
        self._cached: list[tuple[StepOutcome, StepRecord]] = []

    def _record(self, node: Node, out: StepOutcome, inputs: dict[str, str], size: int = 0) -> StepRecord:
        self.position += 1
        refs = [d.ref for d in iter_datasets(node.arguments)]
        return StepRecord(
            node=node.id,
            step=node.step,
            status=out.state.value,
            position=self.position,
            reason=out.reason,
            cache_key=out.cache_key,
            cache_hit=out.cache_hit,
            output_digest=out.output_digest,
            size=size,
            duration_s=out.duration_s,
            attempts=out.attempts,
            error=out.error,
            inputs=dict(inputs),
            params={
                k: _text(v)
                for k, v in node.arguments.items()
                if not any(True for _ in iter_refs(v)) and not any(True for _ in iter_datasets(v))
            },
            datasets=[
                DatasetInput(self.datasets[r].name, self.datasets[r].version) for r in dict.fromkeys(refs)
            ],
            run_id=out.run_id,
        )

    # -- cached steps (batched) -----------------------------------------------------------------
    def add_cached(self, node: Node, out: StepOutcome, inputs: dict[str, str], size: int) -> None:
        self._cached.append((out, self._record(node, out, inputs, size)))

    def flush_cached(self) -> None:
        if not self._cached:
            return
        batch, self._cached = self._cached, []
        ids = self.svc.record_cached(self.parent, self.pipeline, [rec for _, rec in batch])
        for (out, _), rid in zip(batch, ids, strict=True):
            out.run_id = rid

    # -- executed steps -----------------------------------------------------------------------------
    def start(self, node: Node, out: StepOutcome) -> str:
        rec = self._record(node, out, {})
        self.position -= 1  # the step row is written when it finishes
        return self.svc.start_step(self.parent, self.pipeline, rec)

    def finish(
        self,
        node: Node,
        out: StepOutcome,
        inputs: dict[str, str],
        *,
        size: int,
        logs: str,
        doc: dict[str, Any] | None,
        cache: bool,
    ) -> None:
        data = logs.encode() if logs else b""
        log_digest = self.ws.blobs.put_bytes(data) if data else None
        rec = self._record(node, out, inputs, size)
        ok = out.state is StepState.DONE
        self.svc.finish_step(
            self.parent,
            self.pipeline,
            rec,
            log_digest=log_digest,
            log_size=len(data),
            cache_doc=doc if ok and cache else None,
        )

    def skipped(self, nodes: Sequence[tuple[Node, StepOutcome]]) -> None:
        """Steps never started because an upstream step failed: recorded without a run."""
        recs = [self._record(node, out, {}) for node, out in nodes]
        for rec in recs:
            rec.run_id = None
        if recs:
            self.svc.record_skipped(self.parent, self.pipeline, recs)
