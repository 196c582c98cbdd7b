"""A model version's page: its lineage from data to deployment, as a small graph and as tables.

data (the dataset versions its run recorded as inputs) → run (the run that logged the model) →
model version → deployment (the aliases pointing at it and the rollouts that moved traffic to or
from it, with their state). Each box links to its page; the tables below repeat the links as text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.responses import Response

from modelyard import errors
from modelyard.webui._data import version_number
from modelyard.webui._graph import Box, flow_svg
from modelyard.webui._pages import show, when
from modelyard.webui._routes import PREFIX, Page

__all__ = ["register"]

Handler = Callable[[Page], Response]
LIVE = ("progressing", "paused")


def _state(r: Any) -> str:
    return str(getattr(r.state, "value", r.state))


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the model version page through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.data._service import DataService as D
    from modelyard.registry._service import RegistryService as R
    from modelyard.rollout._service import RolloutService as S
    from modelyard.tracking._service import TrackingService as T

    @page("/models/{name}/versions/{version}")
    def model_version(p: Page) -> Response:
        name = p.request.path_params["name"]
        number = version_number(p.request.path_params["version"], "model version")
        reader = ("reader", "model", name)
        mv = p.call(R, "get_version", need=reader, name=name, version=number)
        run = inputs = None
        if mv.run_id:
            try:
                run = p.call(T, "get_run", run_id=mv.run_id)
                inputs = p.call(D, "inputs_of", run_id=mv.run_id)
            except errors.NotFoundError:
                run = None  # the run was deleted; the version keeps its id
        rollouts = [
            r
            for r in p.call(S, "list_rollouts", need=reader, model=name)
            if number in (r.candidate_version, r.stable_version)
        ]
        q = _quote
        data_boxes = [
            Box(d.ref, f"{d.rows:,} rows" if d.rows is not None else d.format, _data_href(d), "data")
            for d in inputs or []
        ]
        run_boxes = []
        if run is not None:
            status = str(getattr(run.status, "value", run.status))
            run_boxes.append(Box(run.name, f"{run.experiment} · {status}", f"{PREFIX}/runs/{run.id}", "run"))
        elif mv.run_id:
            run_boxes.append(Box(f"run {mv.run_id[:8]}", "deleted", None, "warn"))
        model_boxes = [
            Box(
                f"{name} v{number}",
                ", ".join(mv.aliases) or mv.flavor,
                f"{PREFIX}/models/{q(name)}",
                "model" if mv.status == "ready" else "warn",
            )
        ]
        deploy_boxes = [
            Box(f"alias {a}", "serves this version", f"{PREFIX}/models/{q(name)}", "live") for a in mv.aliases
        ]
        for r in rollouts[-6:]:
            st = _state(r)
            role = "candidate" if r.candidate_version == number else "stable"
            tone = "live" if st in LIVE else "bad" if st in ("failed", "aborted") else "done"
            deploy_boxes.append(
                Box(f"rollout #{r.id} · {st}", f"{role}, {r.strategy}", f"{PREFIX}/releases/{r.id}", tone)
            )
        graph = flow_svg(
            [("data", data_boxes), ("run", run_boxes), ("model", model_boxes), ("deployment", deploy_boxes)],
            title=f"lineage of {name} version {number}: data, run, model, deployment",
        )
        return p.render(
            "model_version.html.j2",
            title=f"{name} v{number} · models · modelyard",
            section="models",
            mv=mv,
            run=run,
            inputs=inputs or [],
            rollouts=list(reversed(rollouts)),
            graph=graph,
            state=_state,
            when=when,
            show=show,
        )


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def _data_href(d: Any) -> str:
    return f"{PREFIX}/datasets/{_quote(d.name)}/v{d.version}"
