"""The monitoring pages: monitored models, and one model's drift per feature and alert firings.

A model's page reads its stored windows (``yard monitor run`` writes one per window): the share of
drifted features and each feature's drift score over time as line charts, the latest window's
report feature by feature against its reference (the training data by lineage unless another was
given) with the reference and current distributions drawn as in the static drift report, the
window-level serving metrics, and the alerts that fired (newest first) and those firing now.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response

from modelyard import errors
from modelyard.ui import PALETTE, bar_chart, fmt_num, histogram, line_chart
from modelyard.webui._pages import RUN_COLORS, when
from modelyard.webui._routes import Page

__all__ = ["register"]

Handler = Callable[[Page], Response]
#: Windows read for the charts.
WINDOWS = 200
#: Features drawn in the score-over-time chart (the highest latest scores).
SCORE_SERIES = 10
#: Window-level metrics shown in the table, with how to show them.
#: Feature distributions drawn (drifted first, then by effect size; the table lists every feature).
MAX_CHARTS = 24
WINDOW_METRICS = ("rows", "share_drifted", "latency_p95_ms", "fallback_rate", "labelled_rows", "accuracy")


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and math.isfinite(float(v)) else None


def _fmt(v: Any) -> str:
    x = _num(v)
    return "–" if x is None else fmt_num(x, 4)


def _report(p: Page, digest: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The stored JSON drift report of a window (plain JSON: nothing in it runs), or why not."""
    if not digest:
        return None, "This window stored no drift report."
    try:
        doc = json.loads(p.ws.blobs.read_bytes(digest))
    except errors.ModelyardError as exc:
        return None, f"The window's report could not be read: {exc}"
    except ValueError as exc:
        return None, f"The window's report is not valid JSON: {exc}"
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        return None, "The window's report has no per-column results."
    return doc, None


def _feature_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, c in doc["columns"].items():
        if not isinstance(c, dict):
            continue
        drifted = c.get("drifted")
        chart = ""
        h = c.get("histogram")
        if isinstance(h, dict):
            try:
                series = [("reference", h["reference"]), ("current", h["current"])]
                if "edges" in h:
                    chart = histogram(h["edges"], series, title=str(name), width=460, height=150)
                else:
                    chart = bar_chart(
                        [str(k) for k in h["categories"]][:12],
                        [(n, list(v)[:12]) for n, v in series],
                        title=str(name),
                        shares=True,
                        width=460,
                    )
            except (KeyError, TypeError, ValueError):
                chart = ""  # a damaged histogram: the table row still shows the numbers
        rows.append(
            {
                "name": str(name),
                "prediction": bool(c.get("is_prediction")),
                "kind": str(c.get("kind") or ""),
                "status": str(c.get("status") or ""),
                "cls": "bad" if drifted else ("warn" if drifted is None else "good"),
                "drifted": "yes" if drifted else ("no decision" if drifted is None else "no"),
                "method": str(c.get("method") or "–"),
                "effect": _fmt(c.get("effect_size")),
                "effect_name": str(c.get("effect_name") or ""),
                "p_value": _fmt(c.get("p_value_adjusted", c.get("p_value"))),
                "reason": str(c.get("reason") or ""),
                "score": _num(c.get("effect_size")) or 0.0,
                "chart": chart,
            }
        )
    rows.sort(key=lambda r: (r["cls"] != "bad", r["cls"] != "warn", -r["score"], r["name"]))
    for r in rows[MAX_CHARTS:]:
        r["chart"] = ""
    return rows


def register(
    page: Callable[[str], Callable[[Handler], Handler]], action: Callable[[str], Callable[[Handler], Handler]]
) -> None:
    """Add the monitoring pages through the decorators of :func:`modelyard.webui.mount`."""
    from modelyard.monitoring._store import MonitoringService as M

    @page("/monitoring")
    def monitoring(p: Page) -> Response:
        rows = p.call(M, "monitored_models")
        return p.render(
            "monitoring.html.j2",
            title="Monitoring · modelyard",
            section="monitoring",
            rows=rows,
            when=when,
            fmt=_fmt,
        )

    @page("/monitoring/{model}")
    def monitored(p: Page) -> Response:
        model = p.request.path_params["model"]
        windows = p.call(M, "windows", model_name=model, limit=WINDOWS)
        firings = p.call(M, "recent_firings", model_name=model, limit=50)
        if not windows and not firings:
            raise errors.NotFoundError(
                f"Model {model!r} has no monitoring windows: run `yard monitor run {model}` (or let the "
                "server's monitor loop run) to record one."
            )
        firing_now = p.call(M, "firing_rules", model_name=model)
        share_chart = ""
        score_chart = ""
        if windows:
            points = [(w["window_end"] / 1000, _num(w["share_drifted"]) or 0.0) for w in windows]
            share_chart = line_chart(
                [("share drifted", points)],
                title="share of drifted features per window",
                width=480,
                height=200,
                x_time=True,
                y_zero=True,
            )
            last = windows[-1]["results"]
            features = sorted(
                (c for c in {c for w in windows for c in w["results"]} if c),
                key=lambda c: (-(_num(last.get(c, {}).get("drift_score")) or 0.0), c),
            )[:SCORE_SERIES]
            series = []
            for c in features:
                pts = [
                    (w["window_end"] / 1000, y)
                    for w in windows
                    if (y := _num(w["results"].get(c, {}).get("drift_score"))) is not None
                ]
                series.append((c, pts))
            if series:
                score_chart = line_chart(
                    series,
                    title="drift score (effect size) per feature",
                    width=480,
                    height=220,
                    x_time=True,
                    y_zero=True,
                    colors=RUN_COLORS,
                )
        latest = windows[-1] if windows else None
        doc, problem = _report(p, latest["report_digest"]) if latest else (None, None)
        table = [
            {
                "id": w["id"],
                "start": when(w["window_start"]),
                "end": when(w["window_end"]),
                "version": w["model_version"] or "",
                "drift": w["dataset_drift"],
                "values": [_fmt(w["results"].get("", {}).get(m, w.get(m))) for m in WINDOW_METRICS],
            }
            for w in reversed(windows[-50:])
        ]
        return p.render(
            "monitored.html.j2",
            title=f"{model} · monitoring · modelyard",
            section="monitoring",
            model=model,
            latest=latest,
            summary=(doc or {}).get("summary") or {},
            report_title=(doc or {}).get("title") or "",
            features=_feature_rows(doc) if doc else [],
            problem=problem,
            share_chart=share_chart,
            score_chart=score_chart,
            windows=table,
            metrics=WINDOW_METRICS,
            firings=firings,
            firing_now=firing_now,
            palette=PALETTE,
            max_charts=MAX_CHARTS,
            when=when,
            fmt=_fmt,
        )
