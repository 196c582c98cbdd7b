"""The self-contained HTML drift report (``ui/templates/drift.html.j2``: inline CSS + SVG, no scripts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard.ui import PALETTE, bar_chart, histogram, line_chart, render_page

if TYPE_CHECKING:
    from modelyard.monitoring._report import DriftReport

__all__ = ["render_html"]


def _f(x: float | None, pct: bool = False) -> str:
    if x is None:
        return "–"
    if pct:
        return f"{x:.1%}"
    return f"{x:.2e}" if x != 0 and abs(x) < 1e-3 else f"{x:.4f}"


def render_html(report: DriftReport) -> str:
    s = report.summary()
    cls = "bad" if s["dataset_drift"] else "good"
    tiles = [
        ("dataset drift", "YES" if s["dataset_drift"] else "no", cls),
        ("drifted columns", f"{len(s['drifted_columns'])} / {s['evaluated_columns']}", cls),
        ("share drifted", f"{s['share_drifted']:.2f} (threshold {s['drift_share_threshold']})", cls),
        ("rows", f"{s['rows_reference']:,} ref / {s['rows_current']:,} cur", ""),
    ]
    if s["problems"]:
        tiles.append(("no decision", str(len(s["problems"])), "warn"))
    if report.domain_classifier:
        dc = report.domain_classifier
        tiles.append(
            ("domain classifier AUC", f"{dc.get('auc', 0):.3f}", "bad" if dc.get("drifted") else "good")
        )
    history_chart = ""
    if report.history:
        points = [(h["time_ms"] / 1000, float(h.get("share_drifted") or 0.0)) for h in report.history]
        history_chart = line_chart(
            [("share drifted", points)],
            title="share of drifted columns per window",
            width=640,
            height=180,
            threshold=report.drift_share,
            x_time=True,
            y_zero=True,
        )
    columns = []
    order = sorted(
        report.columns.values(), key=lambda c: (not c.drifted, c.drifted is None, -c.score, c.name)
    )
    for c in order:
        chart = ""
        h = c.histogram
        if h:
            series = [("reference", h["reference"]), ("current", h["current"])]
            if "edges" in h:
                chart = histogram(h["edges"], series, title=c.name)
            else:
                chart = bar_chart(
                    [str(k) for k in h["categories"]][:12],
                    [(n, v[:12]) for n, v in series],
                    title=c.name,
                    shares=True,
                    width=360,
                )
        columns.append(
            {
                "name": c.name,
                "prediction": c.is_prediction,
                "kind": c.kind,
                "cls": "bad" if c.drifted else ("warn" if c.drifted is None else "good"),
                "status": c.status,
                "reason": c.reason,
                "unseen": f"{', '.join(c.unseen_categories)} ({c.unseen_share:.1%})"
                if c.unseen_categories
                else "",
                "method": c.method or "–",
                "statistic": _f(c.statistic),
                "p_value": _f(c.p_value),
                "effect": _f(c.effect_size),
                "effect_name": c.effect_name or "",
                "nulls": f"{_f(c.null_share_reference, True)} → {_f(c.null_share_current, True)}",
                "chart": chart,
            }
        )
    return render_page(
        "drift.html.j2",
        title=report.title,
        tiles=tiles,
        history_chart=history_chart,
        legend=[("reference", PALETTE[0]), ("current", PALETTE[1])],
        columns=columns,
    )
