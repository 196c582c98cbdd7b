"""Run a pipeline: trace the DAG, resolve each step from the cache or an executor, record it all.

The driver walks the DAG in topological order. A node is decided as soon as its upstream
outputs are known: its key document and cache key are computed (see ``_cache``); a cache entry
whose output blobs still exist is a hit, anything else runs on the executor, with the reason
recorded. When a step fails, nothing new is started, running steps finish (and are cached),
the rest are skipped, and :class:`~modelyard.errors.StepFailedError` names the step; the next
run resumes from the cache.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from modelyard._workspace import Workspace, get_workspace
from modelyard.errors import InvalidArgumentError, NotFoundError, StepFailedError
from modelyard.pipelines._cache import cache_key, explain_miss_among, key_document
from modelyard.pipelines._codehash import code_fingerprint, is_user_module
from modelyard.pipelines._graph import Graph, Node, build_graph, iter_datasets
from modelyard.pipelines._records import PipelineResult, StepOutcome, StepState
from modelyard.pipelines._serializers import check_return_annotation, load_output

__all__ = [
    "build_graph_for",
    "clear_cache",
    "load_step_output",
    "pipeline_status",
    "run_pipeline",
    "show_pipeline_run",
]


def build_graph_for(fn: Callable[..., Any], params: Mapping[str, Any] | None = None, /, **kw: Any) -> Graph:
    """The DAG of ``fn`` for ``params`` (no step runs)."""
    return build_graph(fn, {**(params or {}), **kw})


def restrict_graph(graph: Graph, only: Sequence[str] | str) -> tuple[Graph, list[str]]:
    """The part of ``graph`` that runs ``only`` (step names or node ids): those nodes and their
    ancestors, in order, with no pipeline return value; and the ancestors' ids (served from the
    cache only, see :func:`check_upstream_cached`)."""
    targets = set(graph.select([only] if isinstance(only, str) else list(only)))
    keep = set(targets)
    for nid in reversed(graph.order()):
        if nid in keep:
            keep.update(graph.nodes[nid].upstream)
    sub = Graph(
        pipeline=graph.pipeline,
        experiment=graph.experiment,
        params=graph.params,
        nodes={nid: n for nid, n in graph.nodes.items() if nid in keep},
        outputs=None,
    )
    return sub, [nid for nid in sub.nodes if nid not in targets]


def check_upstream_cached(graph: Graph, decider: _Decider, upstream: Sequence[str]) -> None:
    """Raise unless every node of ``upstream`` is a cache hit: a run of only some steps reads its
    inputs from the cache and never recomputes an upstream step."""
    digests: dict[str, str] = {}
    for nid in upstream:
        out, _, _ = decider.decide(graph.nodes[nid], digests)
        if out.state is not StepState.CACHED or not out.output_digest:
            node = graph.nodes[nid]
            why = (
                "it is never cached (cache=False)"
                if not node.spec.cache
                else f"it is not in the cache for this code, params and inputs ({out.reason})"
            )
            readers = [n for n, other in graph.nodes.items() if nid in other.upstream]
            raise NotFoundError(
                f"Step {', '.join(map(repr, readers))} of pipeline {graph.pipeline!r} needs the output "
                f"of step {nid!r}, but {why}. Run step {nid!r} first (`--step {nid}`; in Airflow, its "
                "upstream task), or run the whole pipeline; a run of only some steps never recomputes "
                "their upstream steps."
            )
        digests[nid] = out.output_digest


def _check_force(graph: Graph, force: Sequence[str] | str | None) -> set[str]:
    if force is None:
        return set()
    if isinstance(force, str):
        force = [force]
    return graph.downstream(graph.select(list(force)))


def _inputs(node: Node, digests: Mapping[str, str]) -> dict[str, str]:
    return {u: digests[u] for u in node.upstream}


def _output_spec(node: Node) -> tuple[str | None, bool]:
    """How the output of ``node`` may be loaded: the serializer and allow_pickle its step declares."""
    return node.spec.serializer, node.spec.allow_pickle


class _Decider:
    """Computes keys and decides hit or miss for nodes whose inputs are known."""

    def __init__(self, ws: Workspace, graph: Graph, forced: set[str], explicit: set[str]) -> None:
        from modelyard.pipelines._recorder import RecorderService

        self.ws = ws
        self.svc = RecorderService(ws)
        self.graph = graph
        self.forced = forced
        self.explicit = explicit
        self.datasets = resolve_datasets(ws, graph)

    def decide(self, node: Node, digests: Mapping[str, str]) -> tuple[StepOutcome, dict[str, Any], int]:
        doc = key_document(node, digests, self.datasets)
        key = cache_key(doc)
        out = StepOutcome(
            node=node.id, step=node.step, state=StepState.PENDING, cache_key=key, upstream=list(node.upstream)
        )
        if node.id in self.forced:
            out.reason = "forced (--force)" if node.id in self.explicit else "downstream of a forced step"
            return out, doc, 0
        if not node.spec.cache:
            out.reason = "cache disabled for this step (cache=False)"
            return out, doc, 0
        probe = self.svc.cache_probe(self.graph.pipeline, node.id, key)  # one call, on a server too
        entry = probe.entry
        if entry is not None:
            if probe.output_present:
                out.state = StepState.CACHED
                out.cache_hit = True
                out.output_digest = entry.output_digest
                out.reason = f"cached from run {entry.run_id[:12]}" if entry.run_id else "cached"
                return out, doc, entry.size
            out.reason = "output missing: the cached output's blobs were deleted"
            return out, doc, 0
        out.reason = explain_miss_among(node, doc, probe.recent)
        return out, doc, 0


def resolve_datasets(ws: Workspace, graph: Graph) -> dict[str, Any]:
    """Dataset reference → resolved ``DatasetVersion`` for every dataset the graph's steps read."""
    refs = {d.ref for node in graph.nodes.values() for d in iter_datasets(node.arguments)}
    if not refs:
        return {}
    from modelyard.data._service import DataService

    svc = DataService(ws)
    return {ref: svc.resolve(ref) for ref in sorted(refs)}


def _prepare(fn: Callable[..., Any], params: Mapping[str, Any] | None, kw: Mapping[str, Any]) -> Graph:
    graph = build_graph(fn, {**(params or {}), **kw})
    seen: set[int] = set()
    for node in graph.nodes.values():
        if id(node.fn) not in seen:
            seen.add(id(node.fn))
            check_return_annotation(node.fn, node.step, node.spec.serializer, node.spec.allow_pickle)
    return graph


def pipeline_status(
    fn: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    /,
    *,
    force: Sequence[str] | str | None = None,
    uri: str | Workspace | None = None,
    **kw: Any,
) -> list[StepOutcome]:
    """Which steps a run with ``params`` would execute and why (nothing runs, nothing is written)."""
    graph = _prepare(fn, params, kw)
    ws = get_workspace(uri)
    explicit = set(graph.select([force] if isinstance(force, str) else list(force))) if force else set()
    decider = _Decider(ws, graph, _check_force(graph, force), explicit)
    digests: dict[str, str] = {}
    outcomes: list[StepOutcome] = []
    states: dict[str, StepState] = {}
    for nid in graph.order():
        node = graph.nodes[nid]
        stale = [u for u in node.upstream if states[u] is not StepState.CACHED]
        if stale:
            out = StepOutcome(node=nid, step=node.step, state=StepState.PENDING, upstream=list(node.upstream))
            out.reason = f"input from {', '.join(stale)} will be recomputed"
        else:
            out, _, _ = decider.decide(node, digests)
            if out.state is StepState.CACHED and out.output_digest:
                digests[nid] = out.output_digest
        states[nid] = out.state
        outcomes.append(out)
    return outcomes


def run_pipeline(
    fn: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    /,
    *,
    executor: str | None = None,
    workers: int | None = None,
    force: Sequence[str] | str | None = None,
    progress: bool | None = None,
    uri: str | Workspace | None = None,
    ray_address: str | None = None,
    only: Sequence[str] | str | None = None,
    tags: Mapping[str, str] | None = None,
    **kw: Any,
) -> PipelineResult:
    """Run a ``@yard.pipeline`` function as a tracked, cached DAG; return a :class:`PipelineResult`.

    ``params`` (or keyword arguments) override the pipeline function's defaults. ``executor``:
    ``local``, ``process`` (default with > 1 core) or ``ray``. ``force``: step names to rerun
    with everything downstream. ``progress``: live view (default: when stdout is a TTY).
    ``only``: run just these steps (step names or node ids; e.g. one Airflow task per step): their
    upstream steps must be in the cache (they are read from it, never recomputed, else
    NotFoundError before anything runs); the pipeline's return value is then not assembled.
    ``tags``: extra tags on the pipeline run (``yard.*`` tags are the runner's own).
    """
    from modelyard.pipelines._executors import make_executor
    from modelyard.pipelines._progress import Progress
    from modelyard.pipelines._recorder import Recorder
    from modelyard.tracking._api import start_run
    from modelyard.tracking._run import active_run
    from modelyard.tracking._service import format_exception

    # Everything that can be wrong with the input is checked before anything runs or is written.
    graph = _prepare(fn, params, kw)
    upstream: list[str] = []
    if only is not None:
        graph, upstream = restrict_graph(graph, only)
    explicit = set(graph.select([force] if isinstance(force, str) else list(force))) if force else set()
    forced = _check_force(graph, force)
    if forced & set(upstream):
        raise InvalidArgumentError(
            f"--force {', '.join(sorted(explicit))} would recompute upstream step(s) "
            f"{', '.join(sorted(forced & set(upstream)))} of a run of only {_names(graph, upstream)}: "
            "force only the steps that run."
        )
    extra_tags = _check_tags(tags)
    ws = get_workspace(uri)
    decider = _Decider(ws, graph, forced, explicit)  # resolves dataset inputs: unknown ones fail here
    check_upstream_cached(graph, decider, upstream)
    ex = make_executor(executor, workers, ray_address)
    user_modules: set[str] = set()
    for node in graph.nodes.values():
        for name in code_fingerprint(node.fn):
            mod = name.rsplit(".", 1)[0]
            while mod and not is_user_module(mod) and "." in mod:
                mod = mod.rsplit(".", 1)[0]
            if is_user_module(mod):
                user_modules.add(mod)
    ex.prepare(user_modules)

    run = start_run(
        experiment=graph.experiment,
        name=graph.pipeline,
        params={
            k: v if isinstance(v, str | int | float | bool) else _short(v) for k, v in graph.params.items()
        },
        tags={
            **extra_tags,
            "yard.pipeline": graph.pipeline,
            "yard.executor": ex.name,
            "yard.kind": "pipeline",
            **({"yard.steps": ",".join(n for n in graph.nodes if n not in upstream)} if only else {}),
        },
        nested=active_run() is not None,
        uri=ws,
    )
    steps = {
        nid: StepOutcome(node=nid, step=n.step, state=StepState.PENDING, upstream=list(n.upstream))
        for nid, n in graph.nodes.items()
    }
    result = PipelineResult(
        run_id=run.id,
        pipeline=graph.pipeline,
        status="running",
        steps=steps,
        outputs_spec=graph.outputs,
        uri=ws,
        output_specs={nid: _output_spec(n) for nid, n in graph.nodes.items()},
    )
    try:
        run.log_dict(graph.to_dict(), "pipeline/dag.json")
        rec = Recorder(ws, graph.pipeline, run.id, decider.datasets)
        with Progress(f"pipeline {graph.pipeline} ({ex.name})", steps, progress) as view:
            failure = _schedule(graph, ws, ex, rec, view, decider, steps)
    except BaseException as exc:
        ex.close()
        run.end("killed" if isinstance(exc, KeyboardInterrupt) else "failed", error=format_exception(exc))
        raise
    ex.close()
    if failure is not None:
        out = steps[failure]
        tb = out.error or ""
        run.end("failed", error=f"step {failure!r} failed:\n{tb}")
        result.status = "failed"
        last = tb.strip().splitlines()[-1] if tb.strip() else "unknown error"
        how = (
            f"failed after {out.attempts} attempt(s)" if out.attempts else "could not run (its worker failed)"
        )
        raise StepFailedError(
            f"Step {failure!r} of pipeline {graph.pipeline!r} {how}: {last}\n"
            f"{tb}\nRun {run.id[:12]}: steps that finished are cached; fix the step and run again to resume "
            f"from {failure!r}.",
            step=failure,
            traceback=tb,
            run_id=run.id,
        )
    cached = len(result.cached)
    run.log_metrics({"steps": len(steps), "steps_cached": cached, "steps_executed": len(steps) - cached})
    run.end()
    result.status = "finished"
    return result


def _names(graph: Graph, upstream: Sequence[str]) -> str:
    return ", ".join(n for n in graph.nodes if n not in upstream)


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    if tags is None:
        return {}
    from modelyard.errors import invalid_param

    if not isinstance(tags, Mapping) or not all(isinstance(k, str) and k.strip() for k in tags):
        raise invalid_param("tags", "run_pipeline", "a mapping of tag names to strings", tags)
    if any(k.startswith("yard.") for k in tags):
        bad = sorted(k for k in tags if k.startswith("yard."))
        raise InvalidArgumentError(f"Tags starting with 'yard.' are modelyard's own; got {', '.join(bad)}.")
    return {k: str(v) for k, v in tags.items()}


def _short(v: Any) -> str:
    import json

    text = json.dumps(v, sort_keys=True, default=str)
    return text if len(text) < 500 else text[:497] + "..."


def _schedule(
    graph: Graph,
    ws: Workspace,
    ex: Any,
    rec: Any,
    view: Any,
    decider: _Decider,
    steps: dict[str, StepOutcome],
) -> str | None:
    order = graph.order()
    digests: dict[str, str] = {}
    handles: dict[str, Any] = {}
    docs: dict[str, tuple[StepOutcome, dict[str, Any]]] = {}
    running: dict[cf.Future[Any], tuple[str, float]] = {}
    used = 0.0
    failure: str | None = None
    from modelyard.pipelines._worker import StepTask

    def cpus(node: Node) -> float:
        return min(float(node.spec.resources.get("num_cpus", 1)), float(ex.slots))

    def ready(nid: str) -> bool:
        return steps[nid].state is StepState.PENDING and all(
            steps[u].state in (StepState.CACHED, StepState.DONE) for u in graph.nodes[nid].upstream
        )

    while True:
        # 1. decide every node whose inputs are known; cache hits unlock their downstream at once
        if failure is None:
            progressed = True
            while progressed:
                progressed = False
                for nid in order:
                    if nid in docs or not ready(nid):
                        continue
                    node = graph.nodes[nid]
                    out, doc, size = decider.decide(node, digests)
                    if out.state is StepState.CACHED:
                        steps[nid] = out
                        digests[nid] = out.output_digest  # type: ignore[assignment]
                        rec.add_cached(node, out, _inputs(node, digests), size)
                        view.update(nid)
                        progressed = True
                    else:
                        docs[nid] = (out, doc)
                        steps[nid].reason = out.reason
            rec.flush_cached()
        # 2. start decided misses while there are free slots
        submitted = False
        if failure is None:
            for nid in order:
                if nid not in docs or not ready(nid):
                    continue
                node = graph.nodes[nid]
                need = cpus(node)
                if running and used + need > ex.slots:
                    continue
                out, doc = docs[nid]
                out.state = StepState.RUNNING
                steps[nid] = out
                out.run_id = rec.start(node, out)
                view.update(nid)
                task = StepTask(
                    node=nid,
                    step=node.step,
                    fn=node.fn,
                    arguments=node.arguments,
                    input_digests=_inputs(node, digests),
                    blob_uri=str(ws.blobs._local) if ws.blobs.is_local else ws.blobs.uri,
                    serializer=node.spec.serializer,
                    allow_pickle=node.spec.allow_pickle,
                    retries=node.spec.retries,
                    datasets={d.ref: decider.datasets[d.ref] for d in iter_datasets(node.arguments)},
                    ws_uri=ws.location.uri,
                    input_specs={u: _output_spec(graph.nodes[u]) for u in node.upstream},
                    token=getattr(ws.remote, "_token", None) if ex.name == "process" else None,
                )
                fut = ex.submit(task, {u: handles.get(u) for u in node.upstream}, dict(node.spec.resources))
                running[fut] = (nid, need)
                used += need
                submitted = True
                if fut.done():  # the local executor runs in place: record it before starting more
                    break
        if not running:
            if submitted:
                continue
            break
        # 3. collect finished steps
        done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
        for fut in done:
            nid, need = running.pop(fut)
            used -= need
            res, handle = fut.result()
            node = graph.nodes[nid]
            out, doc = docs[nid]
            out.duration_s = res.duration_s
            out.attempts = res.attempts
            if res.ok:
                out.state = StepState.DONE
                out.output_digest = res.output_digest
                digests[nid] = res.output_digest
                handles[nid] = handle
            else:
                out.state = StepState.FAILED
                out.error = res.error
                out.reason = f"{out.reason}; failed: {res.error_type}"
                if failure is None:
                    failure = nid
            rec.finish(
                node,
                out,
                _inputs(node, digests),
                size=res.size,
                logs=res.logs,
                doc=doc,
                cache=node.spec.cache,
            )
            view.update(nid)
    if failure is not None:
        skipped = []
        for nid in order:
            if steps[nid].state is StepState.PENDING:
                steps[nid].state = StepState.SKIPPED
                steps[nid].reason = f"not run: step {failure!r} failed"
                skipped.append((graph.nodes[nid], steps[nid]))
                view.update(nid)
        rec.skipped(skipped)
    return failure


def load_step_output(result: PipelineResult, node: str) -> Any:
    """Load the output of ``node`` (node id or step name) of a finished run."""
    out = result.steps.get(node) or next((s for s in result.steps.values() if s.step == node), None)
    if out is None:
        from modelyard.errors import did_you_mean

        raise NotFoundError(
            f"Pipeline run {result.run_id[:12]} has no step {node!r}.{did_you_mean(node, result.steps)}"
        )
    if not out.output_digest:
        raise NotFoundError(f"Step {node!r} of run {result.run_id[:12]} has no output ({out.state.value}).")
    ser, pickle_ok = result.output_specs.get(out.node, (None, False))
    return load_output(
        get_workspace(result.uri).blobs,
        out.output_digest,
        serializer=ser,
        allow_pickle=pickle_ok,
        step=out.step,
    )


def show_pipeline_run(run_id: str, *, uri: str | Workspace | None = None) -> dict[str, Any]:
    """A pipeline run with its steps: durations, cache hits and why, inputs, outputs (lineage)."""
    import json

    from modelyard.pipelines._recorder import RecorderService
    from modelyard.tracking._service import TrackingService

    ws = get_workspace(uri)
    svc = TrackingService(ws)
    pipes = RecorderService(ws)
    record = svc.get_run(run_id)
    rows = pipes.pipeline_steps(record.id)
    if not rows:
        if record.parent_id and pipes.is_step_run(record.id):
            return show_pipeline_run(record.parent_id, uri=uri)
        raise InvalidArgumentError(
            f"Run {record.id[:12]} is not a pipeline run (it has no steps). List pipeline runs with "
            "`yard runs list --filter \"tags.yard.kind = 'pipeline'\"`."
        )
    steps = []
    for r in rows:
        steps.append(
            {
                "node": r["node"],
                "step": r["step"],
                "status": r["status"],
                "cache_hit": bool(r["cache_hit"]),
                "reason": r["reason"],
                "duration_s": r["duration_s"],
                "attempts": int(r["attempts"]),
                "run_id": r["run_id"],
                "cache_key": r["cache_key"],
                "inputs": json.loads(r["inputs"] or "{}"),
                "output_digest": r["output_digest"],
            }
        )
    return {
        "run_id": record.id,
        "pipeline": record.tags.get("yard.pipeline", record.name),
        "experiment": record.experiment,
        "status": record.status.value,
        "duration_s": record.duration_s,
        "params": record.params,
        "executor": record.tags.get("yard.executor"),
        "steps": steps,
    }


def clear_cache(pipeline: str, *, step: str | None = None, uri: str | Workspace | None = None) -> int:
    """Forget the cache entries of ``pipeline`` (only ``step``'s with ``step``); return how many.

    The next run recomputes those steps. Outputs still held by tracked runs stay; `yard gc`
    removes the blobs nothing references any more.
    """
    from modelyard.pipelines._recorder import RecorderService

    return RecorderService(get_workspace(uri)).clear_cache(pipeline, step)
