"""The self-contained HTML drift report (inline CSS + SVG, no scripts, no external assets)."""

from __future__ import annotations

import datetime as _dt
from html import escape
from typing import TYPE_CHECKING

from modelyard.monitoring._svg import line_svg
from modelyard.ui._svg import PALETTE, bars_svg, histogram_svg

if TYPE_CHECKING:
    from modelyard.monitoring._report import DriftReport

__all__ = ["render_html"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin:0 0 4px} .sub{color:#666;margin-bottom:16px}
.cards{display:flex;gap:12px;margin:12px 0 20px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:20px}
.bad{color:#c0392b} .warn{color:#b7791f} .good{color:#2e7d32}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #eee;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#fafafa} td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""


def _f(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    if pct:
        return f"{x:.1%}"
    return f"{x:.2e}" if x != 0 and abs(x) < 1e-3 else f"{x:.4f}"


def render_html(report: DriftReport) -> str:
    s = report.summary()
    cls = "bad" if s["dataset_drift"] else "good"
    cards = [
        ("dataset drift", "YES" if s["dataset_drift"] else "no", cls),
        ("drifted columns", f"{len(s['drifted_columns'])} / {s['evaluated_columns']}", cls),
        ("share drifted", f"{s['share_drifted']:.2f} (threshold {s['drift_share_threshold']})", cls),
        ("rows", f"{s['rows_reference']:,} ref / {s['rows_current']:,} cur", ""),
    ]
    if s["problems"]:
        cards.append(("no decision", str(len(s["problems"])), "warn"))
    if report.domain_classifier:
        dc = report.domain_classifier
        cards.append(("domain classifier AUC", f"{dc.get('auc', 0):.3f}", "bad" if dc.get("drifted") else "good"))
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(report.title)}</h1>",
        f"<div class='sub'>generated {_dt.datetime.now(_dt.UTC):%Y-%m-%d %H:%M UTC} by modelyard</div>",
        "<div class='cards'>",
        *(f"<div class='card'>{escape(k)}<b class='{c}'>{escape(v)}</b></div>" for k, v, c in cards),
        "</div>",
    ]
    if report.history:
        xs = [_dt.datetime.fromtimestamp(h["time_ms"] / 1000, _dt.UTC).strftime("%m-%d %H:%M")
              for h in report.history]
        ys = [float(h.get("share_drifted") or 0.0) for h in report.history]
        out.append("<h2>Drift over time</h2>")
        out.append(line_svg(xs, ys, threshold=report.drift_share, title="share of drifted columns per window"))
    out.append(
        f"<h2>Columns</h2><div class='legend'>histograms:<span style='background:{PALETTE[0]}'></span>reference"
        f"<span style='background:{PALETTE[1]}'></span>current</div>"
    )
    out.append(
        "<table><tr><th>column</th><th>status</th><th>method</th><th>statistic</th><th>p-value</th>"
        "<th>effect size</th><th>nulls ref → cur</th><th>reference vs current</th></tr>"
    )
    order = sorted(report.columns.values(), key=lambda c: (not c.drifted, c.drifted is None, -c.score, c.name))
    for c in order:
        st = "bad" if c.drifted else ("warn" if c.drifted is None else "good")
        chart = ""
        h = c.histogram
        if h:
            series = [("reference", h["reference"]), ("current", h["current"])]
            if "edges" in h:
                chart = histogram_svg(h["edges"], series, title=c.name)
            else:
                chart = bars_svg([str(k) for k in h["categories"]][:12], [(n, v[:12]) for n, v in series], title=c.name)
        extra = ""
        if c.unseen_categories:
            extra = f"<br>unseen: {escape(', '.join(c.unseen_categories))} ({c.unseen_share:.1%})"
        out.append(
            f"<tr><td><b>{escape(c.name)}</b>{' (prediction)' if c.is_prediction else ''}<br>{escape(c.kind)}</td>"
            f"<td class='{st}'>{escape(c.status)}<br><small>{escape(c.reason)}</small>{extra}</td>"
            f"<td>{escape(c.method or '–')}</td><td class='num'>{_f(c.statistic)}</td>"
            f"<td class='num'>{_f(c.p_value)}</td>"
            f"<td class='num'>{_f(c.effect_size)}<br><small>{escape(c.effect_name or '')}</small></td>"
            f"<td class='num'>{_f(c.null_share_reference, True)} → {_f(c.null_share_current, True)}</td>"
            f"<td>{chart}</td></tr>"
        )
    out.append("</table></body></html>")
    return "".join(out)
