"""The validation report: ``.ok``, ``.failures``, and rich / JSON / HTML / JUnit renderings."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from html import escape
from typing import Any

from modelyard._json import strict_json
from modelyard.data._profile import Profile

__all__ = ["CheckResult", "ValidationReport"]


@dataclass
class CheckResult:
    """One expectation checked: ``column`` (None for table checks), what was expected, what was seen."""

    column: str | None
    expectation: str
    ok: bool
    observed: Any
    expected: Any
    detail: str = ""
    samples: list[dict[str, Any]] = field(default_factory=list)
    failing_rows: int = 0

    @property
    def name(self) -> str:
        return f"{self.column}.{self.expectation}" if self.column else self.expectation

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "expectation": self.expectation,
            "ok": self.ok,
            "observed": self.observed,
            "expected": self.expected,
            "detail": self.detail,
            "failing_rows": self.failing_rows,
            "samples": self.samples,
        }


@dataclass
class ValidationReport:
    """What ``yard.validate`` found. ``ok`` is True when every expectation holds."""

    suite: str
    reference: str | None
    data: str
    rows: int
    results: list[CheckResult]
    profile: Profile | None = None
    reference_profile: Profile | None = None
    created_at: float = field(default_factory=time.time)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        """The expectations that did not hold."""
        return [r for r in self.results if not r.ok]

    def __repr__(self) -> str:
        return (
            f"<ValidationReport {self.data} vs {self.suite}: "
            f"{len(self.results) - len(self.failures)}/{len(self.results)} passed>"
        )

    def raise_for_failures(self) -> None:
        """Raise :class:`~modelyard.errors.ValidationFailed` (carrying this report) unless ``ok``."""
        if not self.ok:
            from modelyard.errors import ValidationFailed

            first = self.failures[0]
            raise ValidationFailed(
                f"{len(self.failures)} of {len(self.results)} expectations failed on {self.data}; "
                f"first: {first.name} expected {first.expected!r}, observed {first.observed!r}.",
                report=self,
            )

    # -- JSON -------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from modelyard._version import __version__

        out: dict[str, Any] = strict_json(
            {
                "type": "modelyard.validation_report",
                "modelyard_version": __version__,
                "ok": self.ok,
                "suite": self.suite,
                "reference": self.reference,
                "data": self.data,
                "rows": self.rows,
                "checks": len(self.results),
                "failed": len(self.failures),
                "results": [r.to_dict() for r in self.results],
            },
            str_keys=True,
            stringify=True,
        )
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    # -- terminal ---------------------------------------------------------------------------------
    def __rich__(self) -> Any:
        return self.render()

    def render(self, *, all_checks: bool = False, hint: str = "report.print(all_checks=True)") -> Any:
        """The terminal view: the failed checks (with failing row counts and sample rows) and a
        one-line count of the passes; ``all_checks=True`` lists every check. ``hint`` says how to
        see them all (the CLI passes ``--all``)."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        n_fail = len(self.failures)
        n_pass = len(self.results) - n_fail
        head = Text(
            f"{self.data} ({self.rows:,} rows) against {self.suite}"
            + (f" (reference {self.reference})" if self.reference and self.reference != self.suite else "")
        )
        shown = sorted(self.results, key=lambda r: r.ok) if all_checks else self.failures
        parts: list[Any] = [head]
        if shown:
            t = Table(box=None, header_style="bold")
            for col in ("", "column", "expectation", "observed", "expected", "failing rows", "detail"):
                t.add_column(col, justify="right" if col == "failing rows" else "left")
            for r in shown:
                mark = Text("✓", style="green") if r.ok else Text("✗", style="bold red")
                rows = f"{r.failing_rows:,}" if r.failing_rows else ""
                t.add_row(
                    mark,
                    r.column or "(table)",
                    r.expectation,
                    _short(r.observed),
                    _short(r.expected),
                    rows,
                    r.detail,
                )
            parts.append(t)
        if n_fail and not all_checks and n_pass:
            parts.append(
                Text(f"✓ {n_pass} other checks passed (not listed; {hint} shows every check)", style="green")
            )
        parts.append(Text(f"{n_pass} passed, {n_fail} failed", style="bold red" if n_fail else "bold green"))
        if not n_fail and not all_checks:
            parts[-1].append(Text(f" ({hint} lists them)", style="dim"))
        for r in self.failures:
            if r.samples:
                rows = ", ".join(f"row {s['row']}: {_sample(s['value'])}" for s in r.samples)
                parts.append(Text(f"  {r.name} sample rows: {rows}", style="dim"))
        return Group(*parts)

    def print(
        self, console: Any = None, *, all_checks: bool = False, hint: str = "report.print(all_checks=True)"
    ) -> None:
        """Print the failures (every check with ``all_checks=True``) to ``console`` (a rich Console)."""
        if console is None:
            from rich.console import Console

            console = Console()
        console.print(self.render(all_checks=all_checks, hint=hint))

    # -- JUnit ----------------------------------------------------------------------------------------
    def to_junit(self) -> str:
        """JUnit XML: one ``<testcase>`` per expectation, a ``<failure>`` for each that failed."""
        from xml.sax.saxutils import quoteattr

        suite_name = f"modelyard.validate.{self.suite}"
        lines = [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<testsuites name="modelyard validation" tests="{len(self.results)}" '
            f'failures="{len(self.failures)}" errors="0">',
            f'  <testsuite name={quoteattr(suite_name)} tests="{len(self.results)}" '
            f'failures="{len(self.failures)}" '
            f'errors="0" skipped="0" '
            f'timestamp="{time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.created_at))}">',
            f'    <properties><property name="data" value={quoteattr(self.data)}/>'
            f'<property name="rows" value="{self.rows}"/>'
            f'<property name="reference" value={quoteattr(self.reference or "")}/></properties>',
        ]
        for r in self.results:
            classname = quoteattr(f"{suite_name}.{r.column or 'table'}")
            head = f'    <testcase classname={classname} name={quoteattr(r.expectation)} time="0"'
            if r.ok:
                lines.append(head + "/>")
                continue
            msg = f"{r.name}: expected {_short(r.expected)}, observed {_short(r.observed)}"
            body = "\n".join([r.detail] + [f"row {s['row']}: {s['value']!r}" for s in r.samples])
            lines.append(head + ">")
            lines.append(
                f'      <failure message={quoteattr(msg)} type="ExpectationFailed">{escape(body)}</failure>'
            )
            lines.append("    </testcase>")
        lines += ["  </testsuite>", "</testsuites>", ""]
        return "\n".join(lines)

    # -- HTML -------------------------------------------------------------------------------------------
    def to_html(self) -> str:
        """A self-contained page: summary, every check, and per-column reference vs current charts."""
        from modelyard.data._drift import _categorical, aligned_histograms
        from modelyard.ui import PALETTE, bar_chart, histogram, render_page
        from modelyard.ui._pages import utc

        n_fail = len(self.failures)
        status = "passed" if self.ok else "failed"
        checks: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for r in sorted(self.results, key=lambda r: (r.ok, r.column or "")):
            checks[r.ok].append(
                {
                    "ok": r.ok,
                    "column": r.column or "(table)",
                    "expectation": r.expectation,
                    "observed": _short(r.observed),
                    "expected": _short(r.expected),
                    "detail": r.detail,
                    "samples": [f"row {s['row']}: {_sample(s['value'])}" for s in r.samples],
                }
            )
        charts = []
        cur, ref = self.profile, self.reference_profile
        failed_cols = {r.column for r in self.failures}
        for name, cp in cur.columns.items() if cur is not None else ():
            rp = ref.columns.get(name) if ref is not None else None
            if cp.kind in ("numeric", "datetime"):
                fmt = _date if cp.kind == "datetime" else None  # datetime edges are epoch seconds
                if rp is not None:
                    edges, rc, cc = aligned_histograms(rp, cp)
                    svg = histogram(edges, [("reference", rc), ("current", cc)], fmt=fmt)
                else:
                    edges, cc = cp.histogram
                    svg = histogram(edges, [("current", cc)], colors=PALETTE[1:], fmt=fmt)
            elif cp.kind in ("categorical", "boolean"):
                if rp is not None:
                    keys, rc, cc = _categorical(rp, cp)
                    order = sorted(range(len(keys)), key=lambda i: -(rc[i] + cc[i]))[:12]
                    svg = bar_chart(
                        [keys[i] for i in order],
                        [("reference", [rc[i] for i in order]), ("current", [cc[i] for i in order])],
                        shares=True,
                        width=360,
                    )
                else:
                    top = cp.top(12)
                    svg = bar_chart(
                        [k for k, _ in top],
                        [("current", [c for _, c in top])],
                        shares=True,
                        colors=PALETTE[1:],
                        width=360,
                    )
            else:
                continue
            stats = f"nulls {cp.null_fraction:.2%}"
            if cp.distinct_exact or cp.hll.any():  # validation's light profile skips distinct counting
                stats += f" · distinct {'' if cp.distinct_exact else '~'}{cp.distinct:,}"
            if cp.mean is not None and cp.kind == "datetime":
                stats += f" · mean {_date(cp.mean)} · std {(cp.std or 0) / 86400:.3g} days"
                if rp is not None and rp.mean is not None:
                    stats += f" (reference {_date(rp.mean)} · {(rp.std or 0) / 86400:.3g} days)"
            elif cp.mean is not None:
                stats += f" · mean {cp.mean:.4g} · std {cp.std or 0:.4g}"
                if rp is not None and rp.mean is not None:
                    stats += f" (reference {rp.mean:.4g} · {rp.std or 0:.4g})"
            charts.append(
                {"name": name, "type": cp.type, "svg": svg, "stats": stats, "failed": name in failed_cols}
            )
        names = ("reference", "current") if ref is not None else ("current",)
        colors = PALETTE if ref is not None else PALETTE[1:]
        return render_page(
            "validation.html.j2",
            title=f"Validation {status}: {self.data}",
            status=status,
            headline=f"{self.data} — {len(self.results) - n_fail} passed, {n_fail} failed",
            meta=f"{self.rows:,} rows · suite {self.suite}"
            + (f" · reference {self.reference}" if self.reference else "")
            + f" · {utc(self.created_at, '%Y-%m-%d %H:%M:%S UTC')}",
            failed=checks[False],
            passed=checks[True],
            legend=list(zip(names, colors, strict=False)),
            charts=charts,
        )


def _sample(v: Any) -> str:
    """A sample row's value: floats shortened, strings quoted, None as None."""
    return _short(v) if isinstance(v, float) else repr(v)


def _date(seconds: float) -> str:
    """Epoch seconds (how profiles keep datetimes) as a UTC date, with the time when it is not midnight."""
    try:
        t = time.gmtime(seconds)
    except (OverflowError, OSError, ValueError):
        return _short(seconds)
    return time.strftime("%Y-%m-%d" if t.tm_hour == t.tm_min == t.tm_sec == 0 else "%Y-%m-%d %H:%M", t)


def _short(v: Any, limit: int = 80) -> str:
    if isinstance(v, float):
        s = f"{v:.6g}"
    elif isinstance(v, dict):
        s = ", ".join(f"{k}={_short(x, 40)}" for k, x in v.items() if x is not None)
    elif isinstance(v, list):
        s = "[" + ", ".join(_short(x, 20) for x in v[:8]) + (", …" if len(v) > 8 else "") + "]"
    else:
        s = "-" if v is None else str(v)
    return s if len(s) <= limit else s[: limit - 1] + "…"
