"""Model cards: Markdown and a self-contained HTML page (inline CSS, SVG charts, no scripts).

A card gathers what a reviewer needs about one version: purpose/description, signature, lineage
(run, experiment, params, code version, the datasets the run logged), metrics (a bar chart of the
version's metrics; a line chart of each metric the run logged over steps), requirements and the
audit history of the model.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from modelyard import _hooks
from modelyard._shared import format_when, now_ms
from modelyard._workspace import Workspace, get_workspace
from modelyard.registry._service import AuditEntry, ModelVersion, RegisteredModel, RegistryService

__all__ = ["CARD_SECTIONS", "ModelCard", "bar_chart_svg", "line_chart_svg", "model_card"]

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
            what = ", ".join(f"{k}={v}" for k, v in e.detail.items() if k in ("alias", "from", "to", "flavor"))
            rows.append([_when(e.at), e.actor or "-", e.action, str(e.version or "-"), what or "-", e.reason or "-"])
        return rows

    def _lineage(self) -> list[tuple[str, str]]:
        v, run = self.version, self.run
        out = [("run", v.run_id or "- (registered without a run)")]
        if run is not None:
            out += [("experiment", run.experiment), ("run name", run.name), ("run status", run.status.value)]
            env = run.environment or {}
            if env.get("git_commit"):
                out.append(("code", f"{env.get('git_branch') or ''} {env['git_commit'][:12]}" + (" (dirty)" if env.get("git_dirty") else "")))
            data = [a.path for a in run.artifacts if a.path.startswith(("data/", "datasets/"))]
            datasets = [f"{k[len('dataset.'):]}={val}" for k, val in run.tags.items() if k.startswith("dataset")]
            if datasets or data:
                out.append(("training data", ", ".join(datasets + data)))
        return out

    def to_markdown(self) -> str:
        v, m = self.version, self.model
        lines = [f"# Model card: {v.name} version {v.version}", ""]
        lines += [m.description or "_No description. Set one with `yard.registry.update_model(name, description=...)`._", ""]
        if v.description:
            lines += [f"This version: {v.description}", ""]
        lines += ["## Summary", "", "| | |", "|---|---|"]
        for k, val in [
            ("flavor", v.flavor), ("status", v.status), ("aliases", ", ".join(v.aliases) or "-"),
            ("created", f"{_when(v.created_at)} by {v.created_by or '-'}"), ("modelyard", v.modelyard_version),
            ("size", f"{v.size:,} bytes"), ("manifest", v.manifest_digest),
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
            lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_num(val)} |" for k, val in sorted(v.metrics.items())]
        else:
            lines.append("_No metrics recorded._")
        for title, md, _ in self.sections:
            lines += ["", f"## {title}", "", md]
        lines += ["", "## Requirements", ""] + [f"- {p}=={ver}" for p, ver in sorted(v.requirements.items())]
        lines += ["", "## Audit history", "", "| when | who | action | version | change | reason |", "|---|---|---|---|---|---|"]
        lines += ["| " + " | ".join(r) + " |" for r in self._audit_rows()]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        v, m = self.version, self.model
        e = html.escape

        def table(head: list[str], rows: list[list[str]]) -> str:
            th = "".join(f"<th>{e(h)}</th>" for h in head)
            body = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows)
            thead = f"<thead><tr>{th}</tr></thead>" if any(head) else ""  # key/value tables: no empty header row
            return f"<table>{thead}<tbody>{body}</tbody></table>"

        parts = [f"<h1>{e(v.name)} <span class=v>version {v.version}</span></h1>"]
        parts.append(f"<p>{e(m.description or 'No description.')}</p>")
        if v.description:
            parts.append(f"<p><b>This version:</b> {e(v.description)}</p>")
        badges = "".join(f"<span class=badge>{e(a)}</span>" for a in v.aliases)
        parts.append(table(["", ""], [
            ["flavor", v.flavor], ["status", v.status], ["created", f"{_when(v.created_at)} by {v.created_by or '-'}"],
            ["modelyard", v.modelyard_version], ["size", f"{v.size:,} bytes"], ["manifest", v.manifest_digest],
        ]) + (f"<p>aliases: {badges}</p>" if badges else ""))
        parts.append("<h2>Signature</h2>")
        if v.signature:
            parts.append(table(["input", "dtype", "range", "nulls"], [
                [c.name, c.dtype, f"[{_num(c.min)}, {_num(c.max)}]" if c.min is not None or c.max is not None else "-",
                 "yes" if c.nullable else "no"] for c in v.signature.inputs
            ]))
            if v.signature.outputs:
                parts.append("<p>Outputs: " + e(", ".join(f"{c.name} ({c.dtype})" for c in v.signature.outputs)) + "</p>")
        else:
            parts.append("<p>No signature: inputs are not checked.</p>")
        parts.append("<h2>Lineage</h2>" + table(["", ""], [[k, val] for k, val in self._lineage()]))
        if self.run is not None and self.run.params:
            parts.append("<h2>Parameters</h2>" + table(["param", "value"], [[k, val] for k, val in sorted(self.run.params.items())]))
        parts.append("<h2>Metrics</h2>")
        if v.metrics:
            # scores in [0, 1] share one 0-1 scale; a loss of 3.2 or a count of 120000 would flatten
            # them, so those get a table (or their own chart when there are no scores)
            nums = {k: float(x) for k, x in sorted(v.metrics.items())}
            unit = {k: x for k, x in nums.items() if 0.0 <= x <= 1.0}
            other = {k: x for k, x in nums.items() if k not in unit}
            if unit:
                parts.append(bar_chart_svg(unit, title="metrics of this version (0-1 scale)", peak=1.0))
                if other:
                    parts.append(table(["other metric", "value"], [[k, _num(x)] for k, x in other.items()]))
            else:
                parts.append(bar_chart_svg(other, title="metrics of this version"))
        for key, points in sorted(self.history.items()):
            if len(points) > 1:
                parts.append(line_chart_svg(points, title=f"{key} over steps (run {(v.run_id or '')[:12]})"))
        if not v.metrics:
            parts.append("<p>No metrics recorded.</p>")
        for title, _, section_html in self.sections:
            parts.append(f"<h2>{e(title)}</h2>" + section_html)
        parts.append("<h2>Requirements</h2>" + table(["package", "version"], [[p, ver] for p, ver in sorted(v.requirements.items())]))
        parts.append("<h2>Audit history</h2>" + table(["when", "who", "action", "version", "change", "reason"], self._audit_rows()))
        body = "\n".join(parts)
        return (
            "<!doctype html><html><head><meta charset=utf-8>"
            f"<title>Model card: {e(v.name)} v{v.version}</title><style>{_CSS}</style></head>"
            f"<body><main>{body}<footer>modelyard {e(v.modelyard_version)} · model card generated {_when(_now())}</footer></main></body></html>"
        )


def _now() -> int:
    return now_ms()


_CSS = (
    "body{font:14px/1.5 system-ui,sans-serif;color:#1f2328;background:#fff;margin:0}"
    "main{max-width:920px;margin:0 auto;padding:24px}h1 .v{color:#656d76;font-weight:400}"
    "h2{border-bottom:1px solid #d0d7de;padding-bottom:4px;margin-top:28px}"
    "table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:left;"
    "vertical-align:top}th{background:#f6f8fa}.badge{background:#ddf4ff;color:#0969da;border-radius:10px;"
    "padding:2px 8px;margin-right:4px}svg{display:block;margin:8px 0}footer{color:#656d76;margin-top:32px;font-size:12px}"
)


def bar_chart_svg(values: dict[str, float], *, title: str = "", width: int = 640, peak: float | None = None) -> str:
    """A horizontal bar chart as an inline SVG string; bars scale to ``peak`` (default: the largest value)."""
    e = html.escape
    finite = {k: v for k, v in values.items() if v == v and abs(v) != float("inf")}
    row, top, char = 24, 28, 7.2  # char: a generous width of one 12px character
    # the label column is as wide as the longest label, up to 40% of the chart; longer labels are
    # shortened with an ellipsis (the full name is the bar's tooltip)
    fit = int(width * 0.4 / char)
    left = int(min(width * 0.4, max((len(k) for k in finite), default=4) * char) + 12)
    height = top + row * max(1, len(finite)) + 10
    peak = peak or max((abs(v) for v in finite.values()), default=1.0) or 1.0
    span = width - left - 80
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{e(title)}">',
           f'<text x="0" y="16" font-size="13" font-weight="600">{e(title)}</text>']
    for i, (k, v) in enumerate(finite.items()):
        y = top + i * row
        w = max(1.0, abs(v) / peak * span)
        label = k if len(k) <= fit else k[: fit - 1] + "…"
        out.append(f'<g><title>{e(k)}: {v:.6g}</title><text x="{left - 8}" y="{y + 15}" font-size="12" text-anchor="end">{e(label)}</text></g>')
        out.append(f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{"#0969da" if v >= 0 else "#cf222e"}"/>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + 15}" font-size="12">{v:.4g}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart_svg(points: list[tuple[int, float]], *, title: str = "", width: int = 640, height: int = 200) -> str:
    """A line chart of ``(step, value)`` points as an inline SVG string."""
    e = html.escape
    pts = [(s, v) for s, v in points if v == v and abs(v) != float("inf")]
    left, right, top, bottom = 56, 16, 28, 28
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{e(title)}">',
           f'<text x="0" y="16" font-size="13" font-weight="600">{e(title)}</text>']
    if pts:
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
        pw, ph = width - left - right, height - top - bottom

        def sx(x: float) -> float:
            return left + (x - x0) / (x1 - x0) * pw

        def sy(y: float) -> float:
            return top + ph - (y - y0) / (y1 - y0) * ph

        out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#d0d7de"/>')
        path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="#0969da" stroke-width="2"/>')
        for val, y in ((y1, top), (y0, top + ph)):
            out.append(f'<text x="{left - 6}" y="{y + 4}" font-size="11" text-anchor="end">{val:.4g}</text>')
        for val, x in ((x0, left), (x1, left + pw)):
            out.append(f'<text x="{x}" y="{height - 8}" font-size="11" text-anchor="middle">{val:g}</text>')
    out.append("</svg>")
    return "".join(out)


def model_card(name: str, version: int | str | None = None, *, uri: str | Workspace | None = None) -> ModelCard:
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
