"""Gate reports for people and CI: a rich table, JSON, and JUnit XML (each gate a test case)."""

from __future__ import annotations

import os
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelyard.evaluation._evaluate import Evaluation
from modelyard.evaluation._gate_report import GateReport, GateStatus

__all__ = ["evaluation_table", "gate_table", "to_junit_xml", "write_junit"]

_STYLE = {GateStatus.PASSED: "green", GateStatus.FAILED: "bold red", GateStatus.WAIVED: "yellow"}


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "NaN" if v != v else f"{v:.4g}"
    return str(v)


def gate_table(report: GateReport) -> Any:
    """A rich Table of every gate: status, observed value, bound and explanation."""
    from rich.markup import escape
    from rich.table import Table

    title = escape(f"Gates for {report.model}" + (f" on {report.data}" if report.data else ""))
    table = Table(title=title, title_justify="left", header_style="bold", expand=False)
    table.add_column("gate", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("observed", justify="right", no_wrap=True)
    table.add_column("bound", no_wrap=True)
    table.add_column("explanation", overflow="fold")
    for r in report.results:
        style = _STYLE[r.status]
        table.add_row(
            escape(r.gate),
            f"[{style}]{r.status.value}[/]",
            _fmt(r.observed),
            escape(r.bound),
            escape(r.explanation),
        )
    return table


def evaluation_table(ev: Evaluation, *, max_slices: int = 40) -> list[Any]:
    """Rich tables: the overall metrics, then one per slice column."""
    from rich.markup import escape
    from rich.table import Table

    names = list(ev.metrics)
    title = escape(f"{ev.model or 'model'} on {ev.data} — {ev.task}, {ev.n_rows} rows, label {ev.label!r}")
    head = Table(title=title, title_justify="left", header_style="bold")
    for n in names:
        head.add_column(n, justify="right")
    head.add_row(*[_fmt(ev.metrics[n]) for n in names])
    out = [head]
    for column, groups in ev.slices.items():
        t = Table(title=escape(f"by {column}"), title_justify="left", header_style="bold")
        t.add_column(escape(column))
        t.add_column("rows", justify="right")
        for n in names:
            t.add_column(n, justify="right")
        for value, stats in list(groups.items())[:max_slices]:
            t.add_row(escape(str(value)), str(int(stats["n"])), *[_fmt(stats.get(n)) for n in names])
        out.append(t)
    return out


def to_junit_xml(report: GateReport) -> str:
    """JUnit XML: one ``<testsuite>`` for the model, one ``<testcase>`` per gate.

    A failed gate has a ``<failure>``; a waived one (passed by policy, not measured) a ``<skipped>``.
    Jenkins (junit step), GitLab (artifacts:reports:junit) and GitHub test reporters read it.
    """
    failures = len(report.failed)
    skipped = sum(r.status is GateStatus.WAIVED for r in report.results)
    root = ET.Element(
        "testsuites",
        name="modelyard gates",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{report.seconds:.3f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"gates: {report.model}",
        tests=str(len(report.results)),
        failures=str(failures),
        errors="0",
        skipped=str(skipped),
        time=f"{report.seconds:.3f}",
        timestamp=datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        hostname=socket.gethostname(),
    )
    props = ET.SubElement(suite, "properties")
    for k, v in (
        ("model", report.model),
        ("policy", report.policy),
        ("data", report.data),
        ("champion", report.champion),
        ("check_id", report.check_id),
    ):
        if v:
            ET.SubElement(props, "property", name=k, value=str(v))
    for r in report.results:
        kind, _, name = r.gate.partition(".")
        case = ET.SubElement(suite, "testcase", classname=f"gates.{kind}", name=name or kind, time="0")
        if r.status is GateStatus.FAILED:
            f = ET.SubElement(
                case, "failure", message=f"observed {_fmt(r.observed)}, required {r.bound}", type="GateFailed"
            )
            f.text = r.explanation
        elif r.status is GateStatus.WAIVED:
            ET.SubElement(case, "skipped", message=r.explanation)
        out = ET.SubElement(case, "system-out")
        out.text = f"observed: {_fmt(r.observed)}\nbound: {r.bound}\n{r.explanation}"
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(report: GateReport, path: str | os.PathLike[str]) -> Path:
    """Write the JUnit XML of ``report`` to ``path`` (folders are created)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(to_junit_xml(report))
    return p
