"""A small left-to-right flow graph as SVG: columns of linked boxes, each joined to the next column.

Drawn with :mod:`modelyard.ui`'s primitives (every label escaped, a ``<title>`` tooltip on each box
with its full text), so it looks like the charts. Each box may be a link (an SVG ``<a>``, reachable by
keyboard); a page lists the same links as text too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from urllib.parse import quote

from modelyard.ui._charts import esc, num, svg_text, text_width, tooltip

__all__ = ["Box", "flow_svg"]

#: Fill of a box by its tone, all light enough for dark text (contrast over 7:1).
TONES = {
    "": "#f6f8fa",
    "data": "#ddf4ff",
    "run": "#fbefff",
    "model": "#dafbe1",
    "live": "#dafbe1",
    "done": "#eaeef2",
    "bad": "#ffebe9",
    "warn": "#fff8c5",
}
BOX_W, BOX_H, GAP_X, GAP_Y, HEAD = 190.0, 44.0, 56.0, 14.0, 26.0


@dataclass(frozen=True)
class Box:
    """One node: a label, a smaller second line, a link (a path of this site) and a tone of TONES."""

    label: str
    detail: str = ""
    href: str | None = None
    tone: str = ""


def _fit(text: str, size: float, width: float) -> str:
    if text_width(text, size) <= width:
        return text
    keep = max(1, int(width / (text_width("x", size) or 1)) - 1)
    return text[:keep] + "…"


def flow_svg(columns: Sequence[tuple[str, Sequence[Box]]], *, title: str) -> str:
    """Columns of boxes left to right under their headings; every box of a column is joined to
    every box of the next non-empty one (an empty column shows "none")."""
    n = max([len(boxes) for _, boxes in columns] + [1])
    width = len(columns) * BOX_W + (len(columns) - 1) * GAP_X + 2
    height = HEAD + n * BOX_H + (n - 1) * GAP_Y + 2
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" role="group" aria-label="{esc(title)}" '
        'font-family="system-ui,-apple-system,Segoe UI,sans-serif">',
        '<defs><marker id="flow-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/>'
        "</marker></defs>",
    ]
    centers: list[list[tuple[float, float]]] = []
    for i, (heading, boxes) in enumerate(columns):
        x = 1 + i * (BOX_W + GAP_X)
        out.append(svg_text(x + BOX_W / 2, 15, heading, size=12, anchor="middle", weight="600"))
        top = HEAD + (n - max(len(boxes), 1)) * (BOX_H + GAP_Y) / 2
        col: list[tuple[float, float]] = []
        if not boxes:
            out.append(svg_text(x + BOX_W / 2, top + BOX_H / 2 + 4, "none", size=12, anchor="middle"))
        for j, b in enumerate(boxes):
            y = top + j * (BOX_H + GAP_Y)
            col.append((x, y))
            tip = b.label + (f" · {b.detail}" if b.detail else "")
            inner = (
                f'{tooltip(tip)}<rect x="{num(x)}" y="{num(y)}" width="{num(BOX_W)}" '
                f'height="{num(BOX_H)}" rx="6" fill="{TONES.get(b.tone, TONES[""])}" stroke="#57606a"/>'
                + svg_text(
                    x + 10, y + 18, _fit(b.label, 13, BOX_W - 20), size=13, weight="600", fill="#1f2328"
                )
                + svg_text(x + 10, y + 35, _fit(b.detail, 11, BOX_W - 20), size=11, fill="#424a53")
            )
            if b.href:
                out.append(f'<a class="box" href="{esc(quote(b.href, safe="/:?=&%@"))}">{inner}</a>')
            else:
                out.append(f'<g class="box">{inner}</g>')
        centers.append(col)
    filled = [c for c in centers if c]
    for left, right in pairwise(filled):
        for lx, ly in left:
            for rx, ry in right:
                x0, y0, x1, y1 = lx + BOX_W, ly + BOX_H / 2, rx - 2, ry + BOX_H / 2
                mid = (x0 + x1) / 2
                out.append(
                    f'<path d="M {num(x0)} {num(y0)} C {num(mid)} {num(y0)}, {num(mid)} {num(y1)}, '
                    f'{num(x1)} {num(y1)}" fill="none" stroke="#57606a" stroke-width="1.4" '
                    'marker-end="url(#flow-arrow)"/>'
                )
    out.append("</svg>")
    return "".join(out)
