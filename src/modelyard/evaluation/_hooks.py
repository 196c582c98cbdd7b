"""What the registry shows of evaluations: ``yard models show`` rows and a model-card section."""

from __future__ import annotations

from typing import Any

from modelyard._shared import format_when

__all__ = ["card_section", "evaluation_summaries", "print_evaluations"]


def _when(ms: int | None) -> str:
    return format_when(ms, "%Y-%m-%d %H:%M")


def _num(v: Any) -> str:
    return ("NaN" if v != v else f"{v:.4g}") if isinstance(v, float) else str(v)


def evaluation_summaries(
    ws: Any, name: str, version: int | None = None, *, limit: int = 10
) -> list[dict[str, Any]]:
    """Newest evaluations of ``name`` (one version when given), with the gate checks run on each version."""
    from modelyard.evaluation._service import EvaluationService

    svc = EvaluationService(ws)
    ref = f"{name}/{version}" if version is not None else name
    checks = svc.list_gate_checks(ref, limit=limit)
    out = []
    for ev in svc.list_evaluations(ref, limit=limit):
        gate = next((c for c in checks if c["evaluation_id"] == ev.id), None)
        out.append(
            {
                "id": ev.id,
                "version": ev.model_version,
                "data": ev.data,
                "rows": ev.n_rows,
                "task": ev.task,
                "metrics": ev.metrics,
                "slices": sorted(ev.slices),
                "created_at": ev.created_at,
                "gates": None
                if gate is None
                else {
                    "passed": gate["passed"],
                    "trigger": gate["trigger"],
                    "failed": [r["gate"] for r in gate["results"] if not r["passed"]],
                },
            }
        )
    return out


def _gate_text(g: dict[str, Any] | None) -> str:
    if g is None:
        return "-"
    if g["passed"]:
        return f"passed ({g['trigger']})"
    return f"failed: {', '.join(g['failed'])} ({g['trigger']})"


def print_evaluations(console: Any, ws: Any, name: str, version: int | None = None) -> None:
    """Print the evaluations table under ``yard models show``."""
    from rich.markup import escape
    from rich.table import Table

    rows = evaluation_summaries(ws, name, version)
    if not rows:
        console.print(
            f"[dim]evaluations: none yet (yard evaluate {escape(name)}/{version or 'N'} --data DATA)[/]"
        )
        return
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r["metrics"] if k not in keys]
    keys = keys[:5]
    t = Table(title="evaluations", title_justify="left", box=None, header_style="bold")
    for col in ("id", "version", "data", "rows", "when", "gates"):
        t.add_column(col, no_wrap=col != "gates")
    for k in keys:
        t.add_column(k, justify="right")
    for r in rows:
        t.add_row(
            r["id"][:12],
            str(r["version"]),
            escape(r["data"]),
            str(r["rows"]),
            _when(r["created_at"]),
            escape(_gate_text(r["gates"])),
            *[_num(r["metrics"][k]) if k in r["metrics"] else "-" for k in keys],
        )
    console.print(t)


def _is_full(r: dict[str, Any]) -> bool:
    """A full evaluation holds every default metric of its task (``yard evaluate``, a gate's own run).

    A champion comparison scores the champion on just the metrics it compares (say roc_auc alone)
    and ``--metrics`` asks for a chosen few: those are partial and shown apart.
    """
    from modelyard.evaluation._metrics import default_metrics

    try:
        needed = default_metrics(r["task"], has_scores=False)
    except KeyError:
        return bool(r["slices"])
    return bool(r["slices"]) or all(m in r["metrics"] for m in needed)


def card_section(ws: Any, mv: Any) -> tuple[str, str, str] | None:
    """The model card's "Evaluations" section: ``(title, markdown, html)``, None when there are none.

    Full evaluations make the main table (columns: the metrics they share, in order); partial ones
    (a champion comparison, a ``--metrics`` pick) a second table of ``metric value`` pairs, so no row
    is a run of blank cells. The slice charts come from the newest evaluation that has slices.
    """
    rows = evaluation_summaries(ws, mv.name, mv.version)
    if not rows:
        return None
    full = [r for r in rows if _is_full(r)]
    partial = [r for r in rows if not _is_full(r)]

    def md_table(head: list[str], body: list[list[str]]) -> list[str]:
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + [
            "| " + " | ".join(row) + " |" for row in body
        ]

    md: list[str] = []
    ctx: dict[str, Any] = {"full": None, "partial": None, "charts": [], "note": ""}
    if full:
        keys: list[str] = []
        for r in full:
            keys += [k for k in r["metrics"] if k not in keys]
        head = ["data", "rows", "when", "gates", *keys]
        body = [
            [
                r["data"],
                str(r["rows"]),
                _when(r["created_at"]),
                _gate_text(r["gates"]),
                *[_num(r["metrics"][k]) if k in r["metrics"] else "-" for k in keys],
            ]
            for r in full
        ]
        md += md_table(head, body)
        ctx["full"] = {"head": head, "rows": body}
    if partial:
        head = ["data", "rows", "when", "gates", "metrics"]
        body = [
            [
                r["data"],
                str(r["rows"]),
                _when(r["created_at"]),
                _gate_text(r["gates"]),
                ", ".join(f"{k} {_num(v)}" for k, v in r["metrics"].items()) or "-",
            ]
            for r in partial
        ]
        note = (
            "Comparisons and partial evaluations (only the metrics they were asked for, e.g. this "
            "version scored as the champion):"
        )
        md += (["", note, ""] if md else [note, ""]) + md_table(head, body)
        ctx.update(partial={"head": head, "rows": body}, note=note)
    sliced = next((r for r in full + partial if r["slices"]), None)
    if sliced is not None:
        from modelyard.evaluation._service import EvaluationService
        from modelyard.ui import bar_chart

        ev = EvaluationService(ws).get_evaluation(sliced["id"])
        metric = next(
            (m for m in ("roc_auc", "f1_macro", "accuracy", "r2", "rmse") if m in ev.metrics),
            next(iter(ev.metrics)),
        )
        for column in ev.slices:
            values = {
                f"{column}={v}": float(s.get(metric, float("nan")))
                for v, s in list(ev.slices[column].items())[:20]
            }
            title = f"{metric} by {column} on {ev.data} ({_when(ev.created_at)})"
            ctx["charts"].append(bar_chart(list(values), [(metric, list(values.values()))], title=title))
            md += ["", f"{metric} by {column}: " + ", ".join(f"{k} {_num(v)}" for k, v in values.items())]
    from modelyard.ui import render_page

    return "Evaluations", "\n".join(md), render_page("card_evaluations.html.j2", **ctx)
