"""Parallel coordinates: one vertical axis per parameter and a last axis for a metric, one line per row.

Each parameter axis is numeric when every value of it reads as a finite number (a linear scale with
round ticks), else categorical (its distinct values, sorted, evenly spaced and each labelled). The
metric axis is drawn as a colour scale, and each row's line takes the colour of its metric value, so
the eye follows good and bad settings back across the parameters. A missing value sits on a "none"
mark under its axis. With ``hrefs``, each line is a link (keyboard-reachable, named by its run and
values, thickened on focus and hover) and the SVG is ``role="group"``; without, ``role="img"``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from modelyard.ui._charts import AXIS, FONT, MUTED, esc, fmt_num, nice_ticks, num, svg_text, tooltip

__all__ = ["metric_color", "parallel_coordinates"]

#: The metric's colour scale, low to high: each stop (and every blend between) at least 3:1 on white.
SCALE = ((0x1F, 0x4E, 0xC8), (0x8A, 0x3F, 0xB8), (0xC4, 0x2A, 0x1E))
NONE_COLOR = "#6e7781"
TOP, BOTTOM = 46.0, 40.0
#: Gap under an axis to its "none" mark.
NONE_GAP = 18.0


@dataclass
class _Axis:
    name: str
    values: list[float | str | None]
    numeric: bool
    lo: float = 0.0
    hi: float = 1.0
    ticks: list[float] = field(default_factory=list)
    cats: list[str] = field(default_factory=list)

    def share(self, v: float | str | None) -> float | None:
        """Where ``v`` sits from the bottom (0) to the top (1) of the axis; None for a missing value."""
        if v is None:
            return None
        if self.numeric:
            return 0.5 if self.hi == self.lo else (float(v) - self.lo) / (self.hi - self.lo)
        if len(self.cats) == 1:
            return 0.5
        return self.cats.index(str(v)) / (len(self.cats) - 1)


def _as_number(v: object) -> float | None:
    try:
        x = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _axis(name: str, raw: Sequence[object], *, force_numeric: bool = False) -> _Axis:
    present = [v for v in raw if v is not None and v != ""]
    nums = [_as_number(v) for v in present]
    if force_numeric or (present and all(x is not None for x in nums)):
        vals: list[float | str | None] = [_as_number(v) if v not in (None, "") else None for v in raw]
        finite = [v for v in vals if isinstance(v, float)]
        lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
        ticks = nice_ticks(lo, hi, 5) if finite else []
        if ticks:
            lo, hi = min(lo, ticks[0]), max(hi, ticks[-1])
        return _Axis(name, vals, True, lo, hi, ticks)
    cats = sorted({str(v) for v in present})
    return _Axis(name, [None if v in (None, "") else str(v) for v in raw], False, cats=cats)


def metric_color(share: float | None) -> str:
    """The scale's colour at ``share`` (0 low, 1 high) of the metric's range; grey for None."""
    if share is None or not math.isfinite(share):
        return NONE_COLOR
    t = min(max(share, 0.0), 1.0) * (len(SCALE) - 1)
    i = min(int(t), len(SCALE) - 2)
    f = t - i
    a, b = SCALE[i], SCALE[i + 1]
    return "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))


def _clip(text: str, room: float, size: float) -> str:
    keep = max(int(room / (size * 0.6)), 3)
    return text if len(text) <= keep else text[: keep - 1] + "…"


def parallel_coordinates(
    axes: Sequence[tuple[str, Sequence[object]]],
    metric: tuple[str, Sequence[float | None]],
    labels: Sequence[str],
    *,
    hrefs: Sequence[str] | None = None,
    title: str = "",
    gap: int | None = None,
    height: int = 320,
) -> str:
    """Lines of ``labels`` (one per row) across ``axes`` (``(name, values per row)``) to ``metric``
    (``(name, value per row)``), coloured by the metric. ``hrefs``: a link per row. ``gap``: pixels
    between axes (default: about 880 px for all, 120-260 per gap)."""
    cols = [_axis(name, vals) for name, vals in axes]
    cols.append(_axis(metric[0], list(metric[1]), force_numeric=True))
    gap = gap or int(min(260, max(120, 880 / max(len(cols) - 1, 1))))
    m = cols[-1]
    left, right = 18.0, 120.0
    width = left + gap * (len(cols) - 1) + right
    ph = height - TOP - BOTTOM
    xs = [left + i * gap for i in range(len(cols))]
    label = title or f"parallel coordinates of {', '.join(c.name for c in cols[:-1])} against {m.name}"
    role = "group" if hrefs else "img"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" role="{role}" aria-label="{esc(label)}" '
        f'font-family="{FONT}" class="parallel">',
        "<style>.parallel a polyline{stroke-width:2;stroke-opacity:.85}"
        ".parallel a:hover polyline,.parallel a:focus polyline{stroke-width:5;stroke-opacity:1}"
        ".parallel a:focus{outline:none}.parallel a:focus polyline{stroke:#000}</style>",
    ]

    def y_of(share: float | None) -> float:
        return TOP + ph + NONE_GAP if share is None else TOP + ph * (1 - share)

    # axes: name on top, ticks or categories beside, a "none" mark under when a value is missing;
    # their labels are drawn over the lines, each with a white halo, so lines never hide them
    texts: list[str] = []
    for i, (c, x) in enumerate(zip(cols, xs, strict=True)):
        is_metric = i == len(cols) - 1
        room = gap - 14 if not is_metric else right + gap / 2
        anchor, name_x = ("start", max(x - 14, 2)) if i == 0 or is_metric else ("middle", x)
        name = svg_text(name_x, 16, _clip(c.name, room, 12), size=12, anchor=anchor, weight="600")
        out.append(f"<g>{tooltip(c.name)}{name}</g>")
        if is_metric:
            out.append(svg_text(x - 20, 31, "colour scale", size=10, fill=MUTED))
            steps = 24
            for s in range(steps):
                y0 = TOP + ph * s / steps
                out.append(
                    f'<rect x="{num(x - 4)}" y="{y0:.1f}" width="8" height="{ph / steps + 0.6:.1f}" '
                    f'fill="{metric_color(1 - (s + 0.5) / steps)}"/>'
                )
        else:
            out.append(
                f'<line x1="{num(x)}" y1="{num(TOP)}" x2="{num(x)}" y2="{num(TOP + ph)}" stroke="{AXIS}"/>'
            )
        if c.numeric:
            for t in c.ticks:
                y = y_of(c.share(t))
                out.append(
                    f'<line x1="{num(x - 3)}" y1="{y:.1f}" x2="{num(x + 3)}" y2="{y:.1f}" stroke="{AXIS}"/>'
                )
                texts.append(svg_text(x + 7, y + 4, fmt_num(t, 3), size=10, fill=MUTED))
        else:
            for v in c.cats:
                y = y_of(c.share(v))
                out.append(f'<circle cx="{num(x)}" cy="{y:.1f}" r="2.5" fill="{AXIS}"/>')
                texts.append(svg_text(x + 7, y + 4, _clip(v, gap - 20, 11), size=11))
        if any(v is None for v in c.values):
            y = y_of(None)
            texts.append(svg_text(x + 7, y + 4, "none", size=10, fill=MUTED))
            out.append(f'<circle cx="{num(x)}" cy="{y:.1f}" r="2.5" fill="none" stroke="{AXIS}"/>')
    # lines: the lowest metric drawn first, so the best and worst are not all buried
    order = sorted(range(len(labels)), key=lambda r: (m.values[r] is None, m.share(m.values[r]) or 0.0))
    for r in order:
        color = metric_color(m.share(m.values[r]))
        points = " ".join(f"{num(x)},{y_of(c.share(c.values[r])):.1f}" for c, x in zip(cols, xs, strict=True))
        said = ", ".join(
            f"{c.name} {fmt_num(v, 4) if isinstance(v, float) else v if v is not None else 'none'}"
            for c in cols
            for v in [c.values[r]]
        )
        line = (
            f'<polyline points="{points}" fill="none" stroke="{color}" stroke-linejoin="round">'
            f"{tooltip(f'{labels[r]}: {said}')}</polyline>"
        )
        if hrefs:
            out.append(f'<a href="{esc(hrefs[r])}" aria-label="{esc(f"{labels[r]}: {said}")}">{line}</a>')
        else:
            out.append(line)
    halo = '<g stroke="#fff" stroke-width="3" paint-order="stroke" stroke-linejoin="round">'
    return "".join(out) + halo + "".join(texts) + "</g></svg>"
