"""Model cards: Markdown and a self-contained HTML page (``ui/templates/model_card.html.j2``: inline CSS, SVG
charts, no scripts).

A card gathers what a reviewer needs about one version: purpose/description, signature, lineage
(run, experiment, params, code version, the datasets the run logged), metrics (a bar chart of the
version's metrics; a line chart of each metric the run logged over steps), requirements and the
audit history of the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelyard import _hooks
from modelyard._shared import format_when, now_ms
from modelyard._workspace import Workspace, get_workspace
from modelyard.registry._service import AuditEntry, ModelVersion, RegisteredModel, RegistryService

__all__ = ["CARD_SECTIONS", "ModelCard", "model_card"]

#: Extension point for extra card sections from other features (:mod:`modelyard._hooks`):
#: ``fn(workspace, model_version) -> (title, markdown, html) | None``, shown after the metrics.
CARD_SECTIONS = "registry.card_section"


def _when(ms: int | None) -> str:
    return format_when(ms, "%Y-%m-%d %H:%M UTC")


def _num(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


@dataclass
class ModelCard:
    """Everything a card shows; render with :meth:`to_markdown` or :meth:`to_html`."""

    model: RegisteredModel
    version: ModelVersion
    audit: list[AuditEntry]
    run: Any = None
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    sections: list[tuple[str, str, str]] = field(default_factory=list)

    def _audit_rows(self) -> list[list[str]]:
        rows = []
        for e in self.audit:
            what = ", ".join(
                f"{k}={v}" for k, v in e.detail.items() if k in ("alias", "from", "to", "flavor")
            )
            rows.append(
                [_when(e.at), e.actor or "-", e.action, str(e.version or "-"), what or "-", e.reason or "-"]
            )
        return rows

    def _lineage(self) -> list[tuple[str, str]]:
        v, run = self.version, self.run
        out = [("run", v.run_id or "- (registered without a run)")]
        if run is not None:
            out += [("experiment", run.experiment), ("run name", run.name), ("run status", run.status.value)]
            env = run.environment or {}
            if env.get("git_commit"):
                out.append(
                    (
                        "code",
                        f"{env.get('git_branch') or ''} {env['git_commit'][:12]}"
                        + (" (dirty)" if env.get("git_dirty") else ""),
                    )
                )
            data = [a.path for a in run.artifacts if a.path.startswith(("data/", "datasets/"))]
            datasets = [
                f"{k[len('dataset.') :]}={val}" for k, val in run.tags.items() if k.startswith("dataset")
            ]
            if datasets or data:
                out.append(("training data", ", ".join(datasets + data)))
        return out

    def to_markdown(self) -> str:
        v, m = self.version, self.model
        lines = [f"# Model card: {v.name} version {v.version}", ""]
        lines += [
            m.description
            or "_No description. Set one with `yard.registry.update_model(name, description=...)`._",
            "",
        ]
        if v.description:
            lines += [f"This version: {v.description}", ""]
        lines += ["## Summary", "", "| | |", "|---|---|"]
        for k, val in [
            ("flavor", v.flavor),
            ("status", v.status),
            ("aliases", ", ".join(v.aliases) or "-"),
            ("created", f"{_when(v.created_at)} by {v.created_by or '-'}"),
            ("modelyard", v.modelyard_version),
            ("size", f"{v.size:,} bytes"),
            ("manifest", v.manifest_digest),
        ]:
            lines.append(f"| {k} | {val} |")
        lines += ["", "## Signature", ""]
        if v.signature:
            lines += ["| input | dtype | range | nulls |", "|---|---|---|---|"]
            for c in v.signature.inputs:
                rng = f"[{_num(c.min)}, {_num(c.max)}]" if c.min is not None or c.max is not None else "-"
                lines.append(f"| {c.name} | {c.dtype} | {rng} | {'yes' if c.nullable else 'no'} |")
            if v.signature.outputs:
                lines += ["", "Outputs: " + ", ".join(f"{c.name} ({c.dtype})" for c in v.signature.outputs)]
        else:
            lines.append("_No signature: inputs are not checked._")
        lines += ["", "## Lineage", ""] + [f"- **{k}**: {val}" for k, val in self._lineage()]
        if self.run is not None and self.run.params:
            lines += ["", "## Parameters", "", "| param | value |", "|---|---|"]
            lines += [f"| {k} | {val} |" for k, val in sorted(self.run.params.items())]
        lines += ["", "## Metrics", ""]
        if v.metrics:
            lines += ["| metric | value |", "|---|---|"] + [
                f"| {k} | {_num(val)} |" for k, val in sorted(v.metrics.items())
            ]
        else:
            lines.append("_No metrics recorded._")
        for title, md, _ in self.sections:
            lines += ["", f"## {title}", "", md]
        lines += ["", "## Requirements", ""] + [f"- {p}=={ver}" for p, ver in sorted(v.requirements.items())]
        lines += [
            "",
            "## Audit history",
            "",
            "| when | who | action | version | change | reason |",
            "|---|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(r) + " |" for r in self._audit_rows()]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        from modelyard.ui import bar_chart, line_chart, render_page

        v, m = self.version, self.model
        metric_charts: list[str] = []
        other: list[list[str]] = []
        if v.metrics:
            # scores in [0, 1] share one 0-1 scale; a loss of 3.2 or a count of 120000 would flatten
            # them, so those get a table (or their own chart when there are no scores)
            nums = {k: float(x) for k, x in sorted(v.metrics.items())}
            unit = {k: x for k, x in nums.items() if 0.0 <= x <= 1.0}
            rest = {k: x for k, x in nums.items() if k not in unit}
            if unit:
                metric_charts.append(
                    bar_chart(
                        list(unit),
                        [("value", list(unit.values()))],
                        title="metrics of this version (0-1 scale)",
                        scale=1.0,
                    )
                )
                other = [[k, _num(x)] for k, x in rest.items()]
            else:
                metric_charts.append(
                    bar_chart(list(rest), [("value", list(rest.values()))], title="metrics of this version")
                )
        history_charts = [
            line_chart([(key, points)], title=f"{key} over steps (run {(v.run_id or '')[:12]})")
            for key, points in sorted(self.history.items())
            if len(points) > 1
        ]
        sig = v.signature
        return render_page(
            "model_card.html.j2",
            title=f"Model card: {v.name} v{v.version}",
            name=v.name,
            model_version=v.version,
            description=m.description,
            version_description=v.description,
            summary=[
                ["flavor", v.flavor],
                ["status", v.status],
                ["created", f"{_when(v.created_at)} by {v.created_by or '-'}"],
                ["modelyard", v.modelyard_version],
                ["size", f"{v.size:,} bytes"],
                ["manifest", v.manifest_digest],
            ],
            aliases=list(v.aliases),
            signature=[
                [
                    c.name,
                    c.dtype,
                    f"[{_num(c.min)}, {_num(c.max)}]" if c.min is not None or c.max is not None else "-",
                    "yes" if c.nullable else "no",
                ]
                for c in sig.inputs
            ]
            if sig
            else [],
            outputs=", ".join(f"{c.name} ({c.dtype})" for c in sig.outputs) if sig and sig.outputs else "",
            lineage=[[k, val] for k, val in self._lineage()],
            params=[[k, val] for k, val in sorted(self.run.params.items())]
            if self.run is not None and self.run.params
            else [],
            metric_charts=metric_charts,
            other_metrics=other,
            history_charts=history_charts,
            has_metrics=bool(v.metrics),
            sections=[(title, section_html) for title, _, section_html in self.sections],
            requirements=[[p, ver] for p, ver in sorted(v.requirements.items())],
            audit=self._audit_rows(),
            generated=_when(_now()),
            version_of_model=v.modelyard_version,
        )


def _now() -> int:
    return now_ms()


def model_card(
    name: str, version: int | str | None = None, *, uri: str | Workspace | None = None
) -> ModelCard:
    """Gather the card of ``name`` at ``version`` (number, alias, or latest when None)."""
    ws = get_workspace(uri)
    svc = RegistryService(ws)
    mv = svc.get_version(name, version if version is not None else "latest")
    run = None
    history: dict[str, list[tuple[int, float]]] = {}
    if mv.run_id:
        from modelyard.errors import NotFoundError
        from modelyard.tracking._service import TrackingService

        tracking = TrackingService(ws)
        try:
            run = tracking.get_run(mv.run_id)
            for key in tracking.metric_keys(mv.run_id)[:8]:
                history[key] = [(p.step, p.value) for p in tracking.metric_history(mv.run_id, key)][:5000]
        except NotFoundError:
            run = None
    sections = []
    for card_section in _hooks.load(CARD_SECTIONS):
        section = card_section(ws, mv)
        if section is not None:
            sections.append(section)
    return ModelCard(svc.get_model(name), mv, svc.audit_log(name), run, history, sections)
