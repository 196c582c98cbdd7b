"""Draw a pipeline DAG: text lines for the terminal, a self-contained SVG for files and the UI."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass

from modelyard.pipelines._graph import Graph
from modelyard.ui._charts import esc, num, svg_text, tooltip

__all__ = ["DagLayout", "dag_layers", "dag_layout", "dag_svg", "dag_text", "edge_path"]

_FILL = {
    "cached": "#dbeafe",
    "done": "#dcfce7",
    "failed": "#fee2e2",
    "skipped": "#fef9c3",
    "running": "#cffafe",
}


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


@dataclass
class DagLayout:
    """Where :func:`dag_svg` draws things: node boxes and one polyline per edge.

    ``boxes[node] = (x, y, w, h)``; ``edges[(up, down)]`` = the points the edge runs through, from
    the right side of ``up`` to the left side of ``down`` via one waypoint per layer it crosses.
    """

    width: float
    height: float
    boxes: dict[str, tuple[float, float, float, float]]
    edges: dict[tuple[str, str], list[tuple[float, float]]]


def _crossings(upper: list[str], lower: list[str], down: Mapping[str, list[str]]) -> int:
    pos = {n: i for i, n in enumerate(lower)}
    ends = [pos[d] for u in upper for d in sorted(down.get(u, ()), key=pos.__getitem__)]
    return sum(1 for i in range(len(ends)) for j in range(i + 1, len(ends)) if ends[j] < ends[i])


def dag_layout(graph: Graph, *, box_w: float = 120, box_h: float = 34) -> DagLayout:
    """A layered (Sugiyama-style) layout, left to right.

    Layers by longest path from a source; an edge spanning several layers gets a dummy node in
    each layer between, so it runs through a free slot instead of behind a box; the order within
    each layer comes from barycenter sweeps (down and up, keeping the order with the fewest
    crossings); vertical positions then pull each node towards its neighbours without overlaps.
    """
    layer = dag_layers(graph)
    n_layers = 1 + max(layer.values(), default=0)
    real = set(graph.nodes)
    down: dict[str, list[str]] = {}
    up: dict[str, list[str]] = {}
    chains: dict[tuple[str, str], list[str]] = {}
    layers: list[list[str]] = [[] for _ in range(n_layers)]
    for nid in graph.order():
        layers[layer[nid]].append(nid)
    for nid in graph.order():
        for u in graph.nodes[nid].upstream:
            chain = [u]
            for level in range(layer[u] + 1, layer[nid]):
                dummy = f"\0{u}\0{nid}\0{level}"
                layers[level].append(dummy)
                chain.append(dummy)
            chain.append(nid)
            chains[(u, nid)] = chain
            for a, b in itertools.pairwise(chain):
                down.setdefault(a, []).append(b)
                up.setdefault(b, []).append(a)

    def total(order: list[list[str]]) -> int:
        return sum(_crossings(order[i], order[i + 1], down) for i in range(len(order) - 1))

    def sweep(order: list[list[str]], forward: bool) -> list[list[str]]:
        order = [list(o) for o in order]
        rng = range(1, len(order)) if forward else range(len(order) - 2, -1, -1)
        for i in rng:
            ref = order[i - 1] if forward else order[i + 1]
            where = {n: k for k, n in enumerate(ref)}
            links = up if forward else down
            keyed = []
            for k, n in enumerate(order[i]):
                near = [where[m] for m in links.get(n, ()) if m in where]
                keyed.append((sum(near) / len(near) if near else float(k), k, n))
            order[i] = [n for *_, n in sorted(keyed)]
        return order

    best, best_x = layers, total(layers)
    current = layers
    for it in range(12):
        current = sweep(current, forward=it % 2 == 0)
        cost = total(current)
        if cost < best_x:
            best, best_x = current, cost
        if best_x == 0:
            break

    # vertical positions: slots of box height (dummies are thin), pulled towards neighbours
    dummy_h, gap_y, gap_x, pad = 10.0, 18.0, 70.0, 20.0
    size = {n: (box_h if n in real else dummy_h) for lay in best for n in lay}
    y: dict[str, float] = {}
    for lay in best:
        top = 0.0
        for n in lay:
            y[n] = top + size[n] / 2
            top += size[n] + gap_y

    def place(lay: list[str], links: Mapping[str, list[str]]) -> None:
        want = []
        for n in lay:
            near = [y[m] for m in links.get(n, ()) if m in y]
            want.append(sum(near) / len(near) if near else y[n])
        # keep the order; push apart to the minimum distance, then centre the block on the wishes
        got = list(want)
        for k in range(1, len(lay)):
            low = got[k - 1] + (size[lay[k - 1]] + size[lay[k]]) / 2 + gap_y
            got[k] = max(got[k], low)
        shift = sum(w - g for w, g in zip(want, got, strict=True)) / len(lay) if lay else 0.0
        for n, g in zip(lay, got, strict=True):
            y[n] = g + shift

    for _ in range(4):
        for i in range(1, len(best)):
            place(best[i], up)
        for i in range(len(best) - 2, -1, -1):
            place(best[i], down)
    top = min(y[n] - size[n] / 2 for n in y)
    bottom = max(y[n] + size[n] / 2 for n in y)
    for n in y:
        y[n] += pad - top
    height = bottom - top + 2 * pad
    x = {n: pad + i * (box_w + gap_x) for i, lay in enumerate(best) for n in lay}
    width = pad * 2 + n_layers * box_w + (n_layers - 1) * gap_x
    boxes = {n: (x[n], y[n] - box_h / 2, box_w, box_h) for n in real}
    # ports: the edges leaving (entering) a box are spread over its right (left) side in the
    # order of where they go (come from), so arrowheads do not pile up on one point
    port_out: dict[tuple[str, str], float] = {}
    port_in: dict[tuple[str, str], float] = {}
    for n in real:
        for ports, keys, near in (
            (port_out, [k for k in chains if k[0] == n], 1),
            (port_in, [k for k in chains if k[1] == n], -2),
        ):
            keys.sort(key=lambda k: y[chains[k][near]])
            for i, k in enumerate(keys):
                ports[k] = y[n] - box_h / 2 + box_h * (i + 1) / (len(keys) + 1)
    edges: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for key, chain in chains.items():
        pts = [(x[chain[0]] + box_w, port_out[key])]
        for d in chain[1:-1]:  # a dummy: enter and leave its slot level
            pts += [(x[d], y[d]), (x[d] + box_w, y[d])]
        pts.append((x[chain[-1]], port_in[key]))
        edges[key] = pts
    return DagLayout(width, height, boxes, edges)


def edge_path(points: list[tuple[float, float]]) -> str:
    """SVG path data through ``points``: S-curves across the gaps between layers, straight lines
    through the free slots inside a layer (every other segment, the dummies' levels)."""
    (x0, y0), rest = points[0], points[1:]
    d = [f"M {x0:.1f} {y0:.1f}"]
    for k, (x1, y1) in enumerate(rest):
        px, py = points[k]
        if k % 2 == 0:  # a gap between layers
            mid = (px + x1) / 2
            d.append(f"C {mid:.1f} {py:.1f}, {mid:.1f} {y1:.1f}, {x1:.1f} {y1:.1f}")
        else:
            d.append(f"L {x1:.1f} {y1:.1f}")
    return " ".join(d)


def dag_svg(graph: Graph, states: Mapping[str, str] | None = None) -> str:
    """The DAG as an SVG document: layers left to right, edges routed around the boxes."""
    box_w = max(120, 8 * max(len(n) for n in graph.nodes) + 24)
    box_h = 34
    lay = dag_layout(graph, box_w=box_w, box_h=box_h)
    shown = [st for st in _FILL if st in set((states or {}).values())]
    width, height = lay.width, lay.height + (24 if shown else 0)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="13">',
        tooltip(f"pipeline {graph.pipeline}"),
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#64748b"/></marker></defs>',
    ]
    for (up, down), points in lay.edges.items():
        points = [*points[:-1], (points[-1][0] - 2, points[-1][1])]
        out.append(
            f'<path class="edge" data-from="{esc(up)}" data-to="{esc(down)}" d="{edge_path(points)}" '
            'fill="none" stroke="#64748b" stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for nid, node in graph.nodes.items():
        x, y, w, h = lay.boxes[nid]
        state = (states or {}).get(nid, "")
        fill = _FILL.get(state, "#f8fafc")
        tip = f"{node.step} ({state})" if state else node.step
        out.append(
            f'<g class="node" data-node="{esc(nid)}">{tooltip(tip)}<rect x="{x:.1f}" y="{y:.1f}" '
            f'width="{w:.0f}" height="{h:.0f}" rx="6" fill="{fill}" stroke="#334155"/>'
            f"{svg_text(x + w / 2, y + h / 2 + 4.5, nid, size=13, anchor='middle')}</g>"
        )
    x = 20.0
    for st in shown:  # a legend of the step states drawn
        out.append(
            f'<rect x="{num(round(x))}" y="{num(round(height - 26))}" width="12" height="12" '
            f'rx="2" fill="{_FILL[st]}" stroke="#334155"/>'
            + svg_text(round(x + 16), round(height - 16), st, size=11)
        )
        x += 28 + 7 * len(st)
    out.append("</svg>")
    return "\n".join(out) + "\n"
