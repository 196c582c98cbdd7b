"""Draw a pipeline DAG: text lines for the terminal, a self-contained SVG for files and the UI."""

from __future__ import annotations

from collections.abc import Mapping
from xml.sax.saxutils import escape

from modelyard.pipelines._graph import Graph

__all__ = ["dag_layers", "dag_svg", "dag_text"]

_FILL = {"cached": "#dbeafe", "done": "#dcfce7", "failed": "#fee2e2", "skipped": "#fef9c3", "running": "#cffafe"}


def dag_layers(graph: Graph) -> dict[str, int]:
    """Layer of each node: the length of the longest path from a source."""
    layer: dict[str, int] = {}
    for nid in graph.order():
        ups = graph.nodes[nid].upstream
        layer[nid] = 1 + max((layer[u] for u in ups), default=-1)
    return layer


def dag_text(graph: Graph, states: Mapping[str, str] | None = None) -> str:
    """One line per node, in run order, with the nodes it reads from."""
    layer = dag_layers(graph)
    width = max(len(n) for n in graph.nodes) + 2 * max(layer.values()) + 2
    lines = []
    for nid in graph.order():
        node = graph.nodes[nid]
        label = "  " * layer[nid] + nid
        state = f"  [{states[nid]}]" if states and nid in states else ""
        ups = f"  ← {', '.join(node.upstream)}" if node.upstream else ""
        lines.append(f"{label:<{width}}{ups}{state}".rstrip())
    return "\n".join(lines)


def dag_svg(graph: Graph, states: Mapping[str, str] | None = None) -> str:
    """The DAG as an SVG document: layers left to right, edges as curves with arrows."""
    layer = dag_layers(graph)
    columns: dict[int, list[str]] = {}
    for nid in graph.order():
        columns.setdefault(layer[nid], []).append(nid)
    box_w = max(120, 8 * max(len(n) for n in graph.nodes) + 24)
    box_h, gap_x, gap_y, pad = 34, 70, 18, 20
    pos: dict[str, tuple[float, float]] = {}
    tallest = max(len(c) for c in columns.values())
    height = pad * 2 + tallest * box_h + (tallest - 1) * gap_y
    for col, nodes in columns.items():
        span = len(nodes) * box_h + (len(nodes) - 1) * gap_y
        top = (height - span) / 2
        for i, nid in enumerate(nodes):
            pos[nid] = (pad + col * (box_w + gap_x), top + i * (box_h + gap_y))
    width = pad * 2 + len(columns) * box_w + (len(columns) - 1) * gap_x
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="13">',
        f"<title>pipeline {escape(graph.pipeline)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker></defs>',
    ]
    for nid, node in graph.nodes.items():
        x2, y2 = pos[nid]
        for up in node.upstream:
            x1, y1 = pos[up]
            sx, sy, ex, ey = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
            mid = (sx + ex) / 2
            out.append(
                f'<path d="M {sx:.1f} {sy:.1f} C {mid:.1f} {sy:.1f}, {mid:.1f} {ey:.1f}, {ex - 2:.1f} {ey:.1f}" '
                'fill="none" stroke="#64748b" stroke-width="1.4" marker-end="url(#arrow)"/>'
            )
    for nid, node in graph.nodes.items():
        x, y = pos[nid]
        state = (states or {}).get(nid, "")
        fill = _FILL.get(state, "#f8fafc")
        tip = f"{node.step} ({state})" if state else node.step
        out.append(
            f'<g><title>{escape(tip)}</title><rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="6" '
            f'fill="{fill}" stroke="#334155"/><text x="{x + box_w / 2:.1f}" y="{y + box_h / 2 + 4.5:.1f}" '
            f'text-anchor="middle">{escape(nid)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
