"""The pipeline pages: pipeline runs, and one run's DAG with each step's state, cache hit or miss and why.

The DAG is rebuilt from what the run stored (each step's row names the upstream steps it read), so
it shows the graph as it ran, not as the code reads today; it is drawn by the pipelines' own SVG
renderer (:func:`modelyard.pipelines._render.dag_svg`, the one ``yard pipeline show --svg`` writes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi.responses import Response

from modelyard import errors
from modelyard.webui._pages import duration, when
from modelyard.webui._routes import Page

__all__ = ["register"]

Handler = Callable[[Page], Response]
PIPELINE_RUNS = "tags.yard.kind = 'pipeline'"
LISTED = 200


@dataclass
class _Node:
    step: str
    upstream: list[str] = field(default_factory=list)


@dataclass
class _StoredGraph:
    """The part of :class:`modelyard.pipelines._graph.Graph` the renderer reads, from stored rows."""

    pipeline: str
    nodes: dict[str, _Node]

    def order(self) -> list[str]:
        return list(self.nodes)


def stored_graph(pipeline: str, steps: list[dict[str, Any]]) -> _StoredGraph:
    """The DAG of a pipeline run from its step rows (in run order; unknown upstream names dropped)."""
    nodes: dict[str, _Node] = {}
    for s in steps:
        try:
            inputs = json.loads(s.get("inputs") or "{}")
        except ValueError:
            inputs = {}
        ups = [u for u in (inputs if isinstance(inputs, dict) else {}) if u in nodes]
        nodes[str(s["node"])] = _Node(str(s["step"]), ups)
    return _StoredGraph(pipeline, nodes)


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the pipeline pages through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.pipelines._recorder import RecorderService as P
    from modelyard.pipelines._render import dag_svg
    from modelyard.tracking._service import TrackingService as T

    @page("/pipelines")
    def pipelines(p: Page) -> Response:
        rows = list(p.call(T, "search_runs", filter=PIPELINE_RUNS, order_by="start_time desc", limit=LISTED))
        return p.render(
            "pipelines.html.j2",
            title="Pipelines · modelyard",
            section="pipelines",
            rows=rows,
            limit=LISTED,
            when=when,
            duration=duration,
        )

    @page("/pipelines/{run_id}")
    def pipeline_run(p: Page) -> Response:
        run = p.call(T, "get_run", run_id=p.request.path_params["run_id"])
        steps = p.call(P, "pipeline_steps", run_id=run.id)
        if not steps:
            raise errors.NotFoundError(
                f"Run {run.id!r} ({run.name}) is not a pipeline run: it recorded no steps."
            )
        name = run.tags.get("yard.pipeline", run.name)
        graph = stored_graph(name, steps)
        svg = dag_svg(cast(Any, graph), {str(s["node"]): str(s["status"]) for s in steps})
        svg = svg.replace(
            "<svg ", f'<svg role="img" aria-label="DAG of pipeline {_attr(name)}: {len(steps)} steps" ', 1
        )
        hits = sum(1 for s in steps if s["cache_hit"])
        return p.render(
            "pipeline_run.html.j2",
            title=f"{name} · pipeline run · modelyard",
            section="pipelines",
            run=run,
            pipeline=name,
            steps=steps,
            graph=graph,
            svg=svg,
            hits=hits,
            when=when,
            duration=duration,
        )


def _attr(text: str) -> str:
    from modelyard.ui import esc

    return esc(text)
