"""Write what a pipeline run did into the tracking tables and the cache index.

Each step is a nested run of the pipeline run (params, tags ``yard.cache`` / ``yard.reason`` /
``yard.cache_key``, its output as artifact ``outputs/<node>``, its captured logs as
``logs/step.log``) plus a ``pipeline_step_runs`` row. Cached steps are written in one batched
transaction per scheduling pass, so a fully cached 100-step rerun costs a handful of writes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelyard._shared import new_run_id, now_ms
from modelyard._workspace import Workspace
from modelyard.pipelines._graph import Node, iter_datasets, iter_refs
from modelyard.pipelines._records import StepOutcome, StepState
from modelyard.pipelines._schema import pipeline_cache, pipeline_step_runs
from modelyard.store._schema import artifacts, params, runs, tags
from modelyard.tracking._records import RunStatus

__all__ = ["Recorder"]


def _text(value: Any, limit: int = 500) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str, allow_nan=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Recorder:
    """Nested step runs and cache entries of one pipeline run."""

    def __init__(
        self,
        ws: Workspace,
        pipeline: str,
        pipeline_run_id: str,
        experiment_id: int,
        user: str | None,
        datasets: dict[str, Any] | None = None,
    ) -> None:
        self.ws = ws
        self.datasets = datasets or {}
        self.pipeline = pipeline
        self.parent = pipeline_run_id
        self.experiment_id = experiment_id
        self.user = user
        self.position = 0
        self._cached: list[tuple[Node, StepOutcome, dict[str, str]]] = []

    # -- rows ------------------------------------------------------------------------------------
    def _run_row(
        self,
        run_id: str,
        node: Node,
        status: RunStatus,
        start: int,
        end: int | None,
        error: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": run_id,
            "experiment_id": self.experiment_id,
            "name": f"{self.pipeline}.{node.id}",
            "status": status.value,
            "start_time": start,
            "end_time": end,
            "parent_id": self.parent,
            "user": self.user,
            "deleted": False,
            "error": error,
            "environment": "{}",
        }

    def _params(self, run_id: str, node: Node) -> list[dict[str, Any]]:
        return [
            {"run_id": run_id, "key": k, "value": _text(v)}
            for k, v in node.arguments.items()
            if not any(True for _ in iter_refs(v)) and not any(True for _ in iter_datasets(v))
        ]

    def _lineage(self, run_id: str, node: Node) -> None:
        """Record the dataset versions the step reads as inputs of its run."""
        refs = [d.ref for d in iter_datasets(node.arguments)]
        if not refs:
            return
        from modelyard.data._service import DataService

        svc = DataService(self.ws)
        for ref in dict.fromkeys(refs):
            svc.record_input(run_id, self.datasets[ref])

    def _tags(
        self, run_id: str, node: Node, out: StepOutcome, inputs: dict[str, str]
    ) -> list[dict[str, Any]]:
        t = {
            "yard.pipeline": self.pipeline,
            "yard.pipeline_run": self.parent,
            "yard.node": node.id,
            "yard.step": node.step,
            "yard.cache": "hit" if out.cache_hit else "miss",
            "yard.reason": _text(out.reason, 2000),
        }
        if out.cache_key:
            t["yard.cache_key"] = out.cache_key
        for up, digest in inputs.items():
            t[f"yard.input.{up}"] = digest
        return [{"run_id": run_id, "key": k, "value": v} for k, v in t.items()]

    def _step_row(self, run_id: str, node: Node, out: StepOutcome, inputs: dict[str, str]) -> dict[str, Any]:
        self.position += 1
        return {
            "run_id": run_id,
            "pipeline_run_id": self.parent,
            "pipeline": self.pipeline,
            "node": node.id,
            "step": node.step,
            "position": self.position,
            "status": out.state.value,
            "cache_key": out.cache_key,
            "cache_hit": out.cache_hit,
            "reason": out.reason,
            "inputs": json.dumps(inputs, sort_keys=True),
            "output_digest": out.output_digest,
            "duration_s": out.duration_s,
            "attempts": out.attempts,
        }

    def _output_artifact(self, run_id: str, node: Node, digest: str, size: int, when: int) -> dict[str, Any]:
        return {
            "run_id": run_id,
            "path": f"outputs/{node.id}",
            "kind": "dir",
            "digest": digest,
            "size": size,
            "created_at": when,
        }

    # -- cached steps (batched) -----------------------------------------------------------------
    def add_cached(self, node: Node, out: StepOutcome, inputs: dict[str, str], size: int) -> None:
        out.run_id = new_run_id()
        self._cached.append((node, out, {**inputs, "__size__": str(size)}))

    def flush_cached(self) -> None:
        if not self._cached:
            return
        batch, self._cached = self._cached, []
        when = now_ms()
        run_rows, param_rows, tag_rows, art_rows, step_rows = [], [], [], [], []
        for node, out, inputs in batch:
            size = int(inputs.pop("__size__"))
            rid = out.run_id or new_run_id()
            run_rows.append(self._run_row(rid, node, RunStatus.FINISHED, when, when))
            param_rows += self._params(rid, node)
            tag_rows += self._tags(rid, node, out, inputs)
            art_rows.append(self._output_artifact(rid, node, out.output_digest or "", size, when))
            step_rows.append(self._step_row(rid, node, out, inputs))

        def fn(conn: Any) -> None:
            conn.execute(runs.insert(), run_rows)
            if param_rows:
                conn.execute(params.insert(), param_rows)
            conn.execute(tags.insert(), tag_rows)
            conn.execute(artifacts.insert(), art_rows)
            conn.execute(pipeline_step_runs.insert(), step_rows)

        self.ws.store.write(fn)
        for node, out, _ in batch:
            self._lineage(out.run_id or "", node)

    # -- executed steps -----------------------------------------------------------------------------
    def start(self, node: Node) -> str:
        rid = new_run_id()
        row = self._run_row(rid, node, RunStatus.RUNNING, now_ms(), None)
        prm = self._params(rid, node)

        def fn(conn: Any) -> None:
            conn.execute(runs.insert().values(**row))
            if prm:
                conn.execute(params.insert(), prm)

        self.ws.store.write(fn)
        self._lineage(rid, node)
        return rid

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
        rid = out.run_id or ""
        when = now_ms()
        log_digest = self.ws.blobs.put_bytes(logs.encode()) if logs else None
        ok = out.state is StepState.DONE

        def fn(conn: Any) -> None:
            conn.execute(
                runs.update()
                .where(runs.c.id == rid)
                .values(
                    status=(RunStatus.FINISHED if ok else RunStatus.FAILED).value,
                    end_time=when,
                    error=out.error,
                )
            )
            conn.execute(tags.insert(), self._tags(rid, node, out, inputs))
            arts = []
            if ok and out.output_digest:
                arts.append(self._output_artifact(rid, node, out.output_digest, size, when))
            if log_digest:
                arts.append(
                    {
                        "run_id": rid,
                        "path": "logs/step.log",
                        "kind": "file",
                        "digest": log_digest,
                        "size": len(logs.encode()),
                        "created_at": when,
                    }
                )
            if arts:
                conn.execute(artifacts.insert(), arts)
            conn.execute(pipeline_step_runs.insert().values(**self._step_row(rid, node, out, inputs)))
            if ok and cache and out.cache_key and out.output_digest and doc is not None:
                conn.execute(pipeline_cache.delete().where(pipeline_cache.c.cache_key == out.cache_key))
                conn.execute(
                    pipeline_cache.insert().values(
                        cache_key=out.cache_key,
                        pipeline=self.pipeline,
                        node=node.id,
                        step=node.step,
                        output_digest=out.output_digest,
                        size=size,
                        run_id=rid,
                        key_doc=json.dumps(doc, sort_keys=True, allow_nan=True),
                        created_at=when,
                    )
                )

        self.ws.store.write(fn)

    def skipped(self, nodes: Sequence[tuple[Node, StepOutcome]]) -> None:
        """Steps never started because an upstream step failed: recorded without a run."""
        rows = []
        for node, out in nodes:
            rows.append({**self._step_row(new_run_id(), node, out, {}), "run_id": new_run_id()})
        if rows:
            self.ws.store.write(lambda conn: conn.execute(pipeline_step_runs.insert(), rows))
