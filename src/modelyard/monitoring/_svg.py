"""The drift-over-time line chart of the HTML report (histograms come from ``modelyard.ui._svg``)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

__all__ = ["line_svg"]

REF_COLOR = "#2e86ab"


def _num(x: float) -> str:
    return f"{x:.1f}"


def line_svg(
    xs: Sequence[str],
    ys: Sequence[float],
    *,
    width: int = 560,
    height: int = 160,
    threshold: float | None = None,
    title: str = "",
) -> str:
    """A line chart of a score over time, with an optional dashed threshold line."""
    pad_l, pad_r, pad_t, pad_b = 34, 8, 16, 18
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    hi = max([*ys, threshold or 0.0, 1e-12]) * 1.1
    n = len(ys)

    def px(i: int) -> float:
        return pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def py(v: float) -> float:
        return pad_t + plot_h - plot_h * v / hi

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
        f'<text x="{pad_l}" y="11" font-size="10" fill="#333">{escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - pad_r}" y2="{pad_t + plot_h}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{_num(py(hi / 1.1))}" font-size="9" text-anchor="end">{hi / 1.1:.2f}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + plot_h}" font-size="9" text-anchor="end">0</text>',
    ]
    if threshold is not None:
        y = py(threshold)
        parts.append(
            f'<line x1="{pad_l}" y1="{_num(y)}" x2="{width - pad_r}" y2="{_num(y)}" stroke="#d62728" '
            f'stroke-dasharray="4 3"><title>threshold {threshold}</title></line>'
        )
        # named at the right end, above the line (below it when the line is at the top)
        ty = y - 3 if y - 3 > pad_t + 8 else y + 10
        parts.append(
            f'<text x="{width - pad_r}" y="{_num(ty)}" font-size="9" fill="#d62728" text-anchor="end">threshold {threshold:g}</text>'
        )
    if n:
        pts = " ".join(f"{_num(px(i))},{_num(py(v))}" for i, v in enumerate(ys))
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{REF_COLOR}" stroke-width="2"/>')
        for i, v in enumerate(ys):
            parts.append(
                f'<circle cx="{_num(px(i))}" cy="{_num(py(v))}" r="3" fill="{REF_COLOR}">'
                f"<title>{escape(str(xs[i]))}: {v:.3f}</title></circle>"
            )
        parts.append(f'<text x="{pad_l}" y="{height - 4}" font-size="9">{escape(str(xs[0]))}</text>')
        parts.append(
            f'<text x="{width - pad_r}" y="{height - 4}" font-size="9" text-anchor="end">{escape(str(xs[-1]))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
