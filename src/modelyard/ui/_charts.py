"""The one chart toolkit of every HTML report (and the web UI): pure Python returning SVG strings.

No scripts and no external assets: each function returns an ``<svg>`` element sized in CSS
pixels, labelled by ``aria-label`` (its title), with a ``<title>`` tooltip on each mark so a browser
shows the exact value on hover. Every piece of text that may come from data (column names,
category values, metric names, titles) goes through :func:`esc`.

Charts:

- :func:`line_chart` — one or more series of ``(x, y)`` points, nice y ticks with grid lines, a
  numeric or datetime x axis, an optional dashed threshold line.
- :func:`bar_chart` — horizontal labelled bars, one series (values) or several (grouped, as shares
  of each series' total), on a fixed (``scale=``) or automatic scale; a value label right of each
  bar, in a column kept free for them, so labels never overlap bars, each other or the edge.
- :func:`histogram` — overlaid bin shares over shared edges: the first series (the reference)
  filled, the others outlined on top.

Primitives shared with other SVG drawings (the pipeline DAG): :func:`esc`, :func:`fmt_num`,
:func:`num`, :func:`svg_text`, :func:`tooltip`, :func:`text_width`, :func:`nice_ticks`,
:func:`time_ticks`.
"""

from __future__ import annotations

import calendar
import math
import time
from collections.abc import Callable, Sequence
from html import escape as _escape

__all__ = [
    "ACCENT",
    "PALETTE",
    "bar_chart",
    "esc",
    "fmt_num",
    "histogram",
    "line_chart",
    "nice_ticks",
    "num",
    "svg_text",
    "text_width",
    "time_ticks",
    "tooltip",
]

#: Series colours: the reference first (grey), the current second (orange), then more.
PALETTE = ("#7f8c9a", "#e4572e", "#2e86ab", "#76b041", "#ffc914")
#: The colour of a lone series (a model's metrics, a score over time); negatives in NEGATIVE.
ACCENT = "#0969da"
NEGATIVE = "#cf222e"
THRESHOLD = "#d62728"
AXIS = "#8c959f"
GRID = "#eaeef2"
MUTED = "#57606a"
FONT = "system-ui,-apple-system,Segoe UI,sans-serif"
#: Width of one character as a share of the font size: generous for digits and lower case.
CHAR = 0.6


# -- primitives ------------------------------------------------------------------------------------
def esc(value: object) -> str:
    """``value`` as text safe inside SVG/HTML elements and quoted attributes (``<>&"'`` escaped)."""
    return _escape(str(value), quote=True)


def fmt_num(v: float, digits: int = 4) -> str:
    """A short label for a number: ``digits`` significant digits, scientific when very large or
    small, ``NaN`` / ``∞`` / ``-∞`` for the non-finite."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    a = abs(v)
    if a != 0 and (a >= 1e5 or a < 1e-3):
        return f"{v:.{max(digits - 2, 1)}e}"
    return f"{v:.{digits}g}"


def num(v: float) -> str:
    """A coordinate: an integer when whole, else one decimal."""
    return str(int(v)) if float(v).is_integer() else f"{v:.1f}"


def text_width(text: str, size: float) -> float:
    """An upper estimate of ``text``'s width in pixels at font size ``size``."""
    return len(text) * size * CHAR


def tooltip(text: str) -> str:
    """A ``<title>`` child: the hover text of the element it is in."""
    return f"<title>{esc(text)}</title>"


def svg_text(
    x: float,
    y: float,
    text: str,
    *,
    size: float = 11,
    anchor: str = "start",
    fill: str | None = None,
    weight: str | None = None,
) -> str:
    """A ``<text>`` element with ``text`` escaped."""
    extra = (f' fill="{fill}"' if fill else "") + (f' font-weight="{weight}"' if weight else "")
    return (
        f'<text x="{num(x)}" y="{num(y)}" font-size="{num(size)}"{extra} '
        f'text-anchor="{anchor}">{esc(text)}</text>'
    )


def _open(width: float, height: float, label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" role="img" aria-label="{esc(label)}" font-family="{FONT}">'
    )


def _finite(v: float) -> bool:
    return isinstance(v, int | float) and math.isfinite(v)


def nice_ticks(lo: float, hi: float, count: int = 5, *, min_step: float = 0.0) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 times a power of ten, at least ``min_step``)
    covering ``[lo, hi]``, about ``count`` of them."""
    if hi < lo:
        lo, hi = hi, lo
    if hi == lo:
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    raw = max((hi - lo) / max(count - 1, 1), min_step)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(
        m * mag
        for m in (1, 2, 2.5, 5, 10)
        if m * mag >= raw * (1 - 1e-9) and (m != 2.5 or mag >= 10 or not min_step)
    )
    first, last = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
    return [float(f"{k * step:.12g}") + 0.0 for k in range(first, last + 1)]


def log_ticks(lo: float, hi: float, count: int = 6) -> tuple[list[float], Callable[[float], str]]:
    """Ticks of a log10 axis covering ``[lo, hi]`` (both log10 values): every power of ten (every
    k-th over many decades), with 2× and 5× between them when the range spans at most two decades;
    the formatter labels a tick with its value in data units (``0.01``, ``2e+06``)."""
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    first, last = math.floor(lo + 1e-9), math.ceil(hi - 1e-9)
    if last - first <= 2:
        marks = [math.log10(m) + e for e in range(first, last + 1) for m in (1, 2, 5)]
        below = max([t for t in marks if t <= lo + 1e-9], default=first)
        above = min([t for t in marks if t >= hi - 1e-9], default=last)
        ticks = [t for t in marks if below - 1e-9 <= t <= above + 1e-9]
    else:
        every = max(1, math.ceil((last - first) / max(count - 1, 1)))
        first = math.floor(first / every) * every
        ticks = [float(e) for e in range(first, last + every, every)]

    def label(t: float) -> str:
        return f"{10**t:.3g}"

    return ticks, label


def _tick_fmt(ticks: Sequence[float]) -> Callable[[float], str]:
    if len(ticks) < 2:
        return fmt_num
    step = abs(ticks[1] - ticks[0])
    if max(abs(t) for t in ticks) >= 1e6 or step < 1e-4:
        return lambda v: fmt_num(v, 3)
    dec = next(d for d in range(0, 12) if abs(round(step * 10**d) - step * 10**d) < 1e-6)
    return lambda v: f"{v:,.{dec}f}"


_SECONDS = (
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
    172800,
    604800,
    1209600,
)


def time_ticks(lo: float, hi: float, count: int = 5) -> tuple[list[float], str]:
    """Tick instants (epoch seconds, UTC) inside ``[lo, hi]`` on round times (whole minutes, hours,
    days, month starts, ...), and the ``strftime`` format that labels them."""
    span = max(hi - lo, 1.0)
    step = next((s for s in _SECONDS if span / s <= max(count - 1, 1)), None)
    if step is not None:
        ticks = [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
        if step < 60:
            fmt = "%H:%M:%S"
        elif step < 86400:
            fmt = "%H:%M" if time.gmtime(lo)[:3] == time.gmtime(hi)[:3] else "%m-%d %H:%M"
        else:
            fmt = "%Y-%m-%d"
        return [float(t) for t in ticks], fmt
    months = next(
        m for m in (1, 2, 3, 6, 12, 24, 60, 120, 10**6) if span / (m * 30.4 * 86400) <= max(count - 1, 1)
    )
    t0 = time.gmtime(lo)
    k = t0.tm_year * 12 + t0.tm_mon - 1
    k = -(-k // months) * months  # the first month start at or after lo on the step
    out = []
    while True:
        t = float(calendar.timegm((k // 12, k % 12 + 1, 1, 0, 0, 0)))
        if t > hi:
            break
        if t >= lo:
            out.append(t)
        k += months
    return out, "%Y" if months >= 12 else "%Y-%m"


def _spread(
    labels: list[tuple[float, str]], size: float, left: float, right: float
) -> list[tuple[float, str, str]]:
    """Axis labels centred on their x, kept inside ``[left, right]``; a label that would touch the
    one before it is dropped. Returns ``(x, anchor, text)``."""
    out: list[tuple[float, str, str]] = []
    end = -math.inf
    for x, text in labels:
        w = text_width(text, size)
        x0 = min(max(x - w / 2, left), right - w)
        if x0 < end + 6:
            continue
        out.append((x0, "start", text))
        end = x0 + w
    return out


# -- line chart ------------------------------------------------------------------------------------
def line_chart(
    series: Sequence[tuple[str, Sequence[tuple[float, float]]]],
    *,
    title: str = "",
    width: int = 640,
    height: int = 200,
    threshold: float | None = None,
    x_time: bool = False,
    y_zero: bool = False,
    colors: Sequence[str] | None = None,
    y_log: bool = False,
) -> str:
    """Lines of ``(x, y)`` points per named series; non-finite points are skipped.

    ``x_time``: x is epoch seconds, ticked on round times and labelled as dates (UTC).
    ``y_zero``: the y axis starts at 0. ``threshold``: a dashed line, named at its right end.
    ``y_log``: a logarithmic y axis ticked at powers of ten (and 2× and 5× of them over a short
    range), labelled in the data's units; points with y <= 0 cannot be drawn on it and are skipped.
    """
    colors = colors or ((ACCENT,) if len(series) == 1 else PALETTE[1:])
    clean = [
        (name, [(float(x), float(y)) for x, y in pts if _finite(x) and _finite(y) and (y > 0 or not y_log)])
        for name, pts in series
    ]
    if y_log:  # drawn in log10 space; ticks and tooltips name the data's values
        clean = [(name, [(x, math.log10(y)) for x, y in pts]) for name, pts in clean]
        threshold = math.log10(threshold) if threshold is not None and threshold > 0 else None
        y_zero = False
    out = [_open(width, height, title)]
    top = 8.0
    if title:
        out.append(svg_text(0, 14, title, size=12, weight="600"))
        top = 30.0
    if len(clean) > 1:  # a legend row, wrapped when it does not fit
        x, y = 0.0, top + 10
        for i, (name, _) in enumerate(clean):
            w = 14 + text_width(name, 10) + 12
            if x and x + w > width:
                x, y = 0.0, y + 14
            out.append(
                f'<rect x="{num(x)}" y="{num(y - 8)}" width="10" height="10" '
                f'fill="{colors[i % len(colors)]}"/>'
            )
            out.append(svg_text(x + 14, y, name, size=10))
            x += w
        top = y + 10
    xs = [p[0] for _, pts in clean for p in pts]
    ys = [p[1] for _, pts in clean for p in pts]
    if not xs:
        out.append(svg_text(0, top + 16, "no values", size=11, fill=MUTED))
        return "".join(out) + "</svg>"
    y_lo, y_hi = min(ys), max(ys)
    if threshold is not None and _finite(threshold):
        y_lo, y_hi = min(y_lo, threshold), max(y_hi, threshold)
    if y_zero:
        y_lo, y_hi = min(y_lo, 0.0), max(y_hi, 0.0)
    yfmt: Callable[[float], str]
    if y_log:
        yt, yfmt = log_ticks(y_lo, y_hi, max(2, min(8, int((height - top - 24) // 22))))
    else:
        yt = nice_ticks(y_lo, y_hi, max(2, min(6, int((height - top - 24) // 28))))
        yfmt = _tick_fmt(yt)
    left = max(text_width(yfmt(t), 10) for t in yt) + 10
    right, bottom = 8.0, 20.0
    pw, ph = width - left - right, height - top - bottom
    x0, x1 = min(xs), max(xs)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + ph - (y - yt[0]) / (yt[-1] - yt[0]) * ph

    for t in yt:
        out.append(
            f'<line x1="{num(left)}" y1="{sy(t):.1f}" x2="{num(width - right)}" y2="{sy(t):.1f}" '
            f'stroke="{GRID if t != yt[0] else AXIS}"/>'
        )
        out.append(svg_text(left - 6, sy(t) + 3.5, yfmt(t), size=10, anchor="end", fill=MUTED))
    xfmt: Callable[[float], str]
    tipx: Callable[[float], str]
    if x_time:
        xt, tf = time_ticks(x0, x1, max(2, int(pw // (text_width("00-00 00:00", 10) + 16))))

        def time_tick(x: float) -> str:
            return time.strftime(tf, time.gmtime(x))

        def time_tip(x: float) -> str:
            return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(x))

        xfmt, tipx = time_tick, time_tip
    else:
        whole = all(float(x).is_integer() for x in xs)  # steps: whole-number ticks
        nice = nice_ticks(x0, x1, max(2, int(pw // 60)), min_step=1.0 if whole else 0.0)
        xt = [t for t in nice if x0 - 1e-9 <= t <= x1 + 1e-9]
        xfmt = tipx = _tick_fmt(nice)
    for x, anchor, text in _spread([(sx(t), xfmt(t)) for t in xt], 10, 0, width):
        out.append(svg_text(x, height - 5, text, size=10, anchor=anchor, fill=MUTED))
    if threshold is not None and _finite(threshold):
        y = sy(threshold)
        label = f"threshold {10**threshold if y_log else threshold:g}"
        out.append(
            f'<line x1="{num(left)}" y1="{y:.1f}" x2="{num(width - right)}" y2="{y:.1f}" '
            f'stroke="{THRESHOLD}" '
            f'stroke-dasharray="4 3">{tooltip(label)}</line>'
        )
        ty = y - 4 if y - 14 > top else y + 12  # above the line, below it when the line is at the top
        out.append(svg_text(width - right, ty, label, size=10, anchor="end", fill=THRESHOLD))
    for i, (name, pts) in enumerate(clean):
        color = colors[i % len(colors)]
        if not pts:
            continue
        path = " ".join(f"{'M' if k == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for k, (x, y) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{color}" stroke-width="2">{tooltip(name)}</path>')
        if len(pts) <= 60:  # a dot per point, with its value on hover
            for x, y in pts:
                out.append(
                    f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{color}">'
                    f"{tooltip(f'{name}: {tipx(x)}: {10**y if y_log else y:.6g}')}</circle>"
                )
    return "".join(out) + "</svg>"


# -- bar chart -------------------------------------------------------------------------------------
def bar_chart(
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str = "",
    width: int = 640,
    scale: float | None = None,
    shares: bool = False,
    colors: Sequence[str] | None = None,
    max_label_share: float = 0.4,
) -> str:
    """Horizontal bars, one row per label; several series make grouped bars.

    ``shares``: each series is drawn as shares of its own total (category counts of a reference
    and a current sample), labelled as percentages. ``scale``: the value a full-width bar stands
    for (e.g. 1.0 for scores); default the largest value shown. Labels longer than the label
    column (``max_label_share`` of the width) are shortened with ``…`` (the tooltip has them in
    full); non-finite values are left out.
    """
    single = len(series) == 1 and not shares
    colors = colors or ((ACCENT,) if single else PALETTE)
    size, bar = (12.0, 16.0) if single else (10.0, 11.0)
    row = bar + 8 if single else bar * len(series) + 6
    vsize = size if single else bar - 2  # value labels no taller than their bar: they never overlap
    rows: list[tuple[str, list[tuple[float, str, str]]]] = []
    totals = [float(sum(v for v in vals if _finite(v))) or 1.0 for _, vals in series]
    for i, label in enumerate(labels):
        marks = []
        for (name, vals), total in zip(series, totals, strict=True):
            v = vals[i] if i < len(vals) else float("nan")
            if not _finite(v):
                continue
            if shares:
                marks.append((v / total, f"{v / total:.1%}", f"{name}: {label} {v:,.0f} ({v / total:.1%})"))
            else:
                marks.append(
                    (float(v), fmt_num(v), f"{label}: {v:.6g}" if single else f"{name}: {label} {v:.6g}")
                )
        if marks or shares:
            rows.append((str(label), marks))
    top = 24.0 if title else 4.0
    height = top + row * max(1, len(rows)) + 6
    out = [_open(width, height, title)]
    if title:
        out.append(svg_text(0, 14, title, size=12, weight="600"))
    if not rows:
        out.append(svg_text(0, top + 14, "no values", size=11, fill=MUTED))
        return "".join(out) + "</svg>"
    fit = int(width * max_label_share / (size * CHAR))
    left = int(min(width * max_label_share, max(text_width(lab, size) for lab, _ in rows)) + 12)
    # room for the longest value label (at least 6 characters, so short labels share one scale)
    reserve = (
        max([text_width(t, vsize) for _, m in rows for _, t, _ in m] + [text_width("0.0000", vsize)]) + 8
    )
    span = max(int(width - left - reserve), 10)
    peak = scale or max((abs(v) for _, m in rows for v, _, _ in m), default=1.0) or 1.0
    for r, (label, marks) in enumerate(rows):
        y0 = top + r * row
        short = label if len(label) <= fit else label[: fit - 1] + "…"
        out.append(
            f"<g>{tooltip(label)}"
            f"{svg_text(left - 8, y0 + row / 2 + size * 0.35, short, size=size, anchor='end')}</g>"
        )
        for s, (v, text, tip) in enumerate(marks):
            w = max(1.0, min(abs(v) / peak, 1.0) * span)
            y = y0 + (4 if single else 3 + s * bar)
            color = NEGATIVE if single and v < 0 else colors[s % len(colors)]
            out.append(
                f'<rect x="{left}" y="{num(y)}" width="{w:.1f}" height="{num(bar - 1)}" '
                f'fill="{color}">{tooltip(tip)}</rect>'
            )
            out.append(svg_text(left + w + 4, y + bar / 2 + vsize * 0.35, text, size=vsize, fill=MUTED))
    return "".join(out) + "</svg>"


# -- histogram -------------------------------------------------------------------------------------
def histogram(
    edges: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str = "",
    width: int = 360,
    height: int = 140,
    colors: Sequence[str] = PALETTE,
    fmt: Callable[[float], str] | None = None,
) -> str:
    """Overlaid bin shares over shared ``edges``: each series' counts as shares of its total, the
    first (the reference) filled, the others outlined over it. ``fmt`` labels the edges (the axis
    ends and the tooltips), e.g. as dates."""
    fmt = fmt or fmt_num
    top, bottom = (22.0 if title else 6.0), 18.0
    ph = height - top - bottom
    out = [_open(width, height, title)]
    if title:
        out.append(svg_text(0, 13, title, size=11, weight="600"))
    nb = max(len(edges) - 1, 0)
    if nb == 0 or not series:
        out.append(svg_text(6, top + ph / 2, "no numeric values", size=11, fill=MUTED))
        return "".join(out) + "</svg>"
    fracs = [[c / (float(sum(counts)) or 1.0) for c in counts] for _, counts in series]
    peak = max(max(f, default=0.0) for f in fracs) or 1.0
    left, pw = 6.0, width - 12.0
    bw = pw / nb
    for si, ((label, counts), f) in enumerate(zip(series, fracs, strict=True)):
        color = colors[si % len(colors)]
        fill = (
            f'fill="{color}" fill-opacity="0.45" stroke-width="1"'
            if si == 0
            else 'fill="none" stroke-width="1.5"'
        )
        for i, v in enumerate(f):
            if v <= 0:
                continue
            bh = v / peak * ph
            tip = f"{label}: [{fmt(edges[i])}, {fmt(edges[i + 1])}) {counts[i]:,} ({v:.1%})"
            out.append(
                f'<rect x="{left + i * bw:.2f}" y="{top + ph - bh:.2f}" width="{max(bw - 0.5, 0.5):.2f}" '
                f'height="{bh:.2f}" {fill} stroke="{color}">{tooltip(tip)}</rect>'
            )
    out.append(
        f'<line x1="{num(left)}" y1="{num(top + ph)}" x2="{num(left + pw)}" y2="{num(top + ph)}" '
        f'stroke="{AXIS}"/>'
    )
    lo, hi = fmt(edges[0]), fmt(edges[-1])
    out.append(svg_text(left, height - 5, lo, size=10, fill=MUTED))
    if left + text_width(lo, 10) + 8 < left + pw - text_width(hi, 10):
        out.append(svg_text(left + pw, height - 5, hi, size=10, anchor="end", fill=MUTED))
    return "".join(out) + "</svg>"
