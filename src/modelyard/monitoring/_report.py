"""Drift results: :class:`ColumnDrift` per column and :class:`DriftReport` with its renderings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from modelyard._json import strict_json
from modelyard._version import __version__

__all__ = ["STATUSES", "ColumnDrift", "DriftReport"]

#: Every per-column status, with what it means.
STATUSES: dict[str, str] = {
    "ok": "compared, no drift",
    "drift": "compared, drift detected (see reason)",
    "constant": "one value / one category on both sides: nothing can drift",
    "too_few_rows": "fewer non-null values than min_rows on a side: no decision",
    "all_null": "no non-null values on a side and the null share did not change: no decision",
    "missing_in_reference": "the column is only in the current data",
    "missing_in_current": "the column is only in the reference data",
    "type_mismatch": "numeric on one side, text on the other",
}


@dataclass
class ColumnDrift:
    """The drift result of one column."""

    name: str
    kind: str  # numeric | categorical | unknown | mixed
    rows_reference: int = 0
    rows_current: int = 0
    status: str = "ok"
    drifted: bool | None = None  # None: no decision (see status)
    reason: str = ""
    method: str | None = None
    method_choice: str | None = None  # auto | selected
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None  # corrected for the number of columns tested (see correction)
    effect_floor: float | None = None  # a test calls drift only at this effect size or more
    effect_size: float | None = None  # n-stable: normalized Wasserstein, JS distance or PSI
    effect_name: str | None = None
    threshold: float | None = None
    distribution_drift: bool | None = None
    ks_statistic: float | None = None
    valid_reference: int = 0
    valid_current: int = 0
    rows_current_effective: int | None = None  # repeated (replayed) rows discounted; None: all rows count
    null_share_reference: float = 0.0
    null_share_current: float = 0.0
    null_drift: bool = False
    inf_count_reference: int = 0
    inf_count_current: int = 0
    unseen_share: float = 0.0
    unseen_categories: list[str] = field(default_factory=list)
    unseen_drift: bool = False
    mean_reference: float | None = None
    mean_current: float | None = None
    is_prediction: bool = False
    histogram: dict[str, Any] | None = None

    @property
    def score(self) -> float:
        """The drift score exported as a gauge: the effect size (0 when there is none)."""
        return float(self.effect_size) if self.effect_size is not None else 0.0

    def to_dict(self, *, histogram: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not histogram:
            d.pop("histogram")
        clean: dict[str, Any] = _clean(d)
        return clean


def _clean(obj: Any) -> Any:
    """JSON-safe values under the one convention of ``modelyard._json``: NaN and ±inf as the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (a number that was not computed is None already)."""
    return strict_json(obj)


class DriftReport:
    """Drift of a current sample against a reference, per column and for the dataset.

    ``report.drifted_columns``, ``report.share_drifted``, ``report.dataset_drift``,
    ``report.columns["age"]``; render with ``to_dict()``, ``to_json()``, ``to_html()`` or
    ``print_table()``.
    """

    def __init__(
        self,
        *,
        columns: list[ColumnDrift],
        drift_share: float,
        rows_reference: int,
        rows_current: int,
        settings: dict[str, Any] | None = None,
        title: str = "Drift report",
    ) -> None:
        self.columns: dict[str, ColumnDrift] = {c.name: c for c in columns}
        self.drift_share = drift_share
        self.rows_reference = rows_reference
        self.rows_current = rows_current
        self.settings = settings or {}
        self.domain_classifier: dict[str, Any] | None = None
        self.title = title
        #: optional history for the "drift score over time" chart: [{"time_ms", "share_drifted"}...]
        self.history: list[dict[str, Any]] = []

    # -- summary --------------------------------------------------------------------------------
    @property
    def features(self) -> list[ColumnDrift]:
        return [c for c in self.columns.values() if not c.is_prediction]

    @property
    def evaluated_columns(self) -> list[str]:
        """Feature columns with a decision (drifted or not)."""
        return [c.name for c in self.features if c.drifted is not None]

    @property
    def drifted_columns(self) -> list[str]:
        """Feature columns that drifted (prediction columns are in :attr:`prediction_drift`)."""
        return [c.name for c in self.features if c.drifted]

    @property
    def problems(self) -> dict[str, str]:
        """Columns without a decision → their status."""
        return {c.name: c.status for c in self.columns.values() if c.drifted is None}

    @property
    def share_drifted(self) -> float:
        """Drifted share of the evaluated feature columns; 0.0 (never NaN) when none was evaluated."""
        evaluated = len(self.evaluated_columns)
        return len(self.drifted_columns) / evaluated if evaluated else 0.0

    @property
    def dataset_drift(self) -> bool:
        """True when ``share_drifted >= drift_share`` (or the domain classifier says so)."""
        if self.evaluated_columns and self.share_drifted >= self.drift_share:
            return True
        return bool(self.domain_classifier and self.domain_classifier.get("drifted"))

    @property
    def prediction_drift(self) -> dict[str, bool | None]:
        """Prediction column → drifted (None: no decision)."""
        return {c.name: c.drifted for c in self.columns.values() if c.is_prediction}

    @property
    def status(self) -> str:
        return "ok" if self.evaluated_columns else "no_columns_evaluated"

    def summary(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drift_share_threshold": self.drift_share,
            "drifted_columns": self.drifted_columns,
            "evaluated_columns": len(self.evaluated_columns),
            "columns": len(self.columns),
            "prediction_drift": self.prediction_drift,
            "problems": self.problems,
            "rows_reference": self.rows_reference,
            "rows_current": self.rows_current,
        }

    def __repr__(self) -> str:
        return (
            f"DriftReport(dataset_drift={self.dataset_drift}, share_drifted={self.share_drifted:.3f}, "
            f"drifted_columns={self.drifted_columns})"
        )

    # -- renderings -----------------------------------------------------------------------------
    def to_dict(self, *, histograms: bool = True) -> dict[str, Any]:
        """Everything as plain JSON values: a statistic that was not computed is None, a non-finite
        number the string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (strict JSON has no such tokens)."""
        clean: dict[str, Any] = _clean(
            {
                "title": self.title,
                "modelyard_version": __version__,
                "summary": self.summary(),
                "settings": self.settings,
                "domain_classifier": self.domain_classifier,
                "columns": {n: c.to_dict(histogram=histograms) for n, c in self.columns.items()},
                "history": self.history,
            }
        )
        return clean

    def to_json(self, *, indent: int | None = 2, histograms: bool = True) -> str:
        return json.dumps(self.to_dict(histograms=histograms), indent=indent, allow_nan=False)

    def to_html(self, path: str | None = None) -> str:
        """A self-contained HTML page (inline CSS and SVG, no scripts); written to ``path`` if given."""
        from modelyard.monitoring._html import render_html

        html = render_html(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(html)
        return html

    def _repr_html_(self) -> str:  # pragma: no cover - notebooks
        return self.to_html()

    def table(self, *, max_rows: int = 50) -> Any:
        """A :class:`rich.table.Table` of the columns, drifted first."""
        from rich.markup import escape
        from rich.table import Table

        t = Table(
            title=f"{escape(self.title)}: {len(self.drifted_columns)}/{len(self.evaluated_columns)} "
            f"columns drifted "
            f"(share {self.share_drifted:.2f}, dataset drift: {'YES' if self.dataset_drift else 'no'})"
        )
        for name, just in (
            ("column", "left"),
            ("type", "left"),
            ("method", "left"),
            ("statistic", "right"),
            ("p-value", "right"),
            ("effect", "right"),
            ("nulls ref→cur", "right"),
            ("status", "left"),
        ):
            t.add_column(name, justify=just)  # type: ignore[arg-type]
        order = sorted(
            self.columns.values(), key=lambda c: (not c.drifted, c.drifted is None, -c.score, c.name)
        )
        for c in order[:max_rows]:
            style = "bold red" if c.drifted else ("yellow" if c.drifted is None else "")
            t.add_row(
                escape(c.name) + (" (prediction)" if c.is_prediction else ""),
                c.kind,
                c.method or "-",
                _fmt(c.statistic),
                _fmt(c.p_value),
                f"{_fmt(c.effect_size)} {c.effect_name or ''}".strip(),
                f"{c.null_share_reference:.1%}→{c.null_share_current:.1%}",
                escape(c.status + (f": {c.reason}" if c.reason and c.status != "ok" else "")),
                style=style,
            )
        return t

    def print_table(self, console: Any = None) -> None:
        """Print the summary table to the terminal."""
        from rich.console import Console

        (console or Console()).print(self.table())


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        return f"{x:.2e}"
    return f"{x:.4f}"
