"""Small SVG charts drawn by our own code (no JS, no external assets), for HTML reports and the UI.

Every function returns an ``<svg>`` string sized in CSS pixels, with a ``<title>`` per mark so
browsers show values on hover. Colours are CSS colours; text is escaped.

- :func:`histogram_svg` — overlaid bin fractions of one or more series over shared edges
  (reference vs current in data validation and drift reports).
- :func:`bars_svg` — grouped horizontal bars for categories (top values).
- :func:`sparkline_svg` — a tiny line chart (metric history).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

__all__ = ["PALETTE", "bars_svg", "histogram_svg", "sparkline_svg"]

#: Reference first, current second; enough for a few more series.
PALETTE = ("#7f8c9a", "#e4572e", "#2e86ab", "#76b041", "#ffc914")


def _fmt(v: float) -> str:
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.2e}"
    return f"{v:.4g}"


def histogram_svg(
    edges: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 360,
    height: int = 140,
    colors: Sequence[str] = PALETTE,
    title: str = "",
    fmt: Callable[[float], str] | None = None,
) -> str:
    """Overlaid step histograms: each series' counts are normalized to fractions of its total.

    ``fmt`` writes the bin edges (axis ends and tooltips), e.g. dates for datetime columns."""
    fmt = fmt or _fmt
    pad_l, pad_r, pad_t, pad_b = 6, 6, 16 if title else 6, 18
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    nb = max(len(edges) - 1, 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    if title:
        parts.append(f'<text x="{pad_l}" y="11" font-size="11" font-family="sans-serif">{escape(title)}</text>')
    if nb == 0 or not series:
        parts.append(f'<text x="{pad_l}" y="{pad_t + h / 2}" font-size="11" fill="#888" font-family="sans-serif">no numeric values</text></svg>')
        return "".join(parts)
    fracs = []
    for _, counts in series:
        total = float(sum(counts)) or 1.0
        fracs.append([c / total for c in counts])
    top = max(max(f) for f in fracs) or 1.0
    bw = w / nb
    for si, ((label, counts), f) in enumerate(zip(series, fracs, strict=True)):
        color = colors[si % len(colors)]
        opacity = 0.45 if si == 0 else 0.0
        for i, v in enumerate(f):
            if v <= 0:
                continue
            bh = v / top * h
            x, y = pad_l + i * bw, pad_t + h - bh
            tip = f"{label}: [{fmt(edges[i])}, {fmt(edges[i + 1])}) {counts[i]:,} ({v:.1%})"
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{max(bw - 0.5, 0.5):.2f}" height="{bh:.2f}" fill="{color}" '
                f'fill-opacity="{opacity}" stroke="{color}" stroke-width="{1 if si == 0 else 1.5}"><title>{escape(tip)}</title></rect>'
            )
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999" stroke-width="1"/>')
    parts.append(f'<text x="{pad_l}" y="{height - 4}" font-size="10" fill="#555" font-family="sans-serif">{escape(fmt(edges[0]))}</text>')
    parts.append(
        f'<text x="{pad_l + w}" y="{height - 4}" font-size="10" fill="#555" text-anchor="end" font-family="sans-serif">{escape(fmt(edges[-1]))}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 360,
    bar: int = 10,
    colors: Sequence[str] = PALETTE,
    title: str = "",
) -> str:
    """Grouped horizontal bars of fractions per category (each series normalized to its total)."""
    label_w = 110
    pad_t = 16 if title else 4
    row_h = bar * len(series) + 6
    height = pad_t + row_h * len(categories) + 4
    w = width - label_w - 50
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">']
    if title:
        parts.append(f'<text x="0" y="11" font-size="11" font-family="sans-serif">{escape(title)}</text>')
    fracs = []
    for _, counts in series:
        total = float(sum(counts)) or 1.0
        fracs.append([c / total for c in counts])
    top = max((max(f) for f in fracs if f), default=1.0) or 1.0
    for ci, cat in enumerate(categories):
        y0 = pad_t + ci * row_h
        short = cat if len(cat) <= 18 else cat[:17] + "…"
        parts.append(
            f'<text x="{label_w - 4}" y="{y0 + row_h / 2 + 3}" font-size="10" text-anchor="end" font-family="sans-serif">{escape(short)}</text>'
        )
        for si, ((label, counts), f) in enumerate(zip(series, fracs, strict=True)):
            v = f[ci]
            bw = v / top * w
            y = y0 + si * bar
            tip = f"{label}: {cat} {counts[ci]:,} ({v:.1%})"
            parts.append(
                f'<rect x="{label_w}" y="{y}" width="{bw:.2f}" height="{bar - 1}" fill="{colors[si % len(colors)]}"><title>{escape(tip)}</title></rect>'
            )
            parts.append(f'<text x="{label_w + bw + 3:.2f}" y="{y + bar - 1}" font-size="8" fill="#555" font-family="sans-serif">{v:.1%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def sparkline_svg(values: Sequence[float], *, width: int = 120, height: int = 28, color: str = PALETTE[2]) -> str:
    """A tiny polyline of ``values`` (NaN skipped)."""
    pts = [(i, v) for i, v in enumerate(values) if v == v]
    if len(pts) < 2:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"></svg>'
    lo = min(v for _, v in pts)
    hi = max(v for _, v in pts)
    span = (hi - lo) or 1.0
    n = len(values) - 1 or 1
    coords = " ".join(f"{i / n * (width - 2) + 1:.1f},{height - 1 - (v - lo) / span * (height - 2):.1f}" for i, v in pts)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="1.5"/></svg>'
    )
