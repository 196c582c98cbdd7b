"""Expectation suites: inferred from a reference profile, edited as YAML, checked by ``validate``.

The YAML form (``yard data schema churn-train@v3 > expectations.yaml``)::

    suite: churn-train@v3            # a name for reports
    reference: churn-train@v3        # the version whose profile distribution checks compare with
    row_count: {min: 1, max: null}
    allow_extra_columns: true
    columns:
      tenure:
        type: integer                # integer | float | number | string | boolean | datetime | any
        required: true               # the column must be present
        max_null_fraction: 0.0
        min: 0                       # every value >= min ...
        max: 75                      # ... and <= max
        distribution: {statistic: psi, threshold: auto}   # or a fixed number, e.g. 0.2
      plan:
        type: string
        values: [basic, pro, team]   # allowed categories ...
        max_unseen_fraction: 0.01    # ... with this share of other values tolerated
        unique: false

An unknown key, a wrong value type or (when the reference is known) a column the reference does
not have is an error naming the file, line and column of the YAML.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelyard.data._drift import DRIFT_STATISTICS
from modelyard.data._kinds import type_family
from modelyard.data._profile import ColumnProfile, Profile
from modelyard.errors import InvalidArgumentError, did_you_mean

__all__ = [
    "COLUMN_EXPECTATIONS",
    "TYPE_FAMILIES",
    "ColumnExpectations",
    "Suite",
    "infer_suite",
    "load_suite",
    "range_bounds",
    "type_family",
]

TYPE_FAMILIES = ("integer", "float", "number", "string", "boolean", "datetime", "any")
#: Keys a column may have in the YAML.
COLUMN_EXPECTATIONS = (
    "type",
    "required",
    "max_null_fraction",
    "min",
    "max",
    "values",
    "max_unseen_fraction",
    "unique",
    "distribution",
)
_SUITE_KEYS = ("suite", "reference", "row_count", "allow_extra_columns", "columns")
_DEFAULT_STAT = "psi"
#: Chance that one of an inferred suite's range checks fails on a new sample (of the reference's
#: size) of the reference's own distribution, shared by the suite's range checks.
RANGE_ALPHA = 0.005
#: The log-scale (heavy tail) fit never lets a never-negative column reach past this many times
#: its observed max: a slipped decimal point (x10) still fails.
MAX_LOG_FACTOR = 5.0
#: Categorical columns with at most this many values get an allowed-values expectation.
MAX_CATEGORIES = 50


def type_matches(expected: str, actual: str) -> bool:
    """True when a column of family ``actual`` satisfies ``type: expected``."""
    if expected in ("any", actual):
        return True
    if expected == "number":
        return actual in ("integer", "float")
    return expected == "float" and actual == "integer"


@dataclass
class ColumnExpectations:
    """What one column must satisfy (None: not checked)."""

    type: str | None = None
    required: bool = True
    max_null_fraction: float | None = None
    min: float | None = None
    max: float | None = None
    values: list[Any] | None = None
    max_unseen_fraction: float = 0.0
    unique: bool = False
    distribution: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.type is not None:
            d["type"] = self.type
        if not self.required:
            d["required"] = False
        if self.max_null_fraction is not None:
            d["max_null_fraction"] = self.max_null_fraction
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.values is not None:
            d["values"] = list(self.values)
            d["max_unseen_fraction"] = self.max_unseen_fraction
        if self.unique:
            d["unique"] = True
        if self.distribution is not None:
            d["distribution"] = dict(self.distribution)
        return d


@dataclass
class Suite:
    """A set of expectations on a table. ``marks`` maps YAML paths to ``(line, column)``."""

    name: str = "suite"
    reference: str | None = None
    row_count_min: int | None = None
    row_count_max: int | None = None
    allow_extra_columns: bool = True
    columns: dict[str, ColumnExpectations] = field(default_factory=dict)
    source: str | None = None
    marks: dict[tuple[str, ...], tuple[int, int]] = field(default_factory=dict, repr=False)

    def where(self, *path: str) -> str:
        """``file:line:column: `` for a YAML path (empty when the suite did not come from a file)."""
        if self.source is None:
            return ""
        line, col = self.marks.get(tuple(path), (0, 0))
        return f"{self.source}:{line}:{col}: " if line else f"{self.source}: "

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.name,
            "reference": self.reference,
            "row_count": {"min": self.row_count_min, "max": self.row_count_max},
            "allow_extra_columns": self.allow_extra_columns,
            "columns": {name: c.to_dict() for name, c in self.columns.items()},
        }

    def to_yaml(self) -> str:
        import yaml

        head = (
            f"# modelyard expectations{' inferred from ' + self.reference if self.reference else ''}.\n"
            "# Edit freely; keys per column: " + ", ".join(COLUMN_EXPECTATIONS) + ".\n"
            "# Check data with: yard validate data PATH --suite THIS_FILE\n"
        )
        return head + yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None, width=100)

    def check_columns_against(self, schema_columns: list[str], reference_label: str) -> None:
        """Raise when the suite names a column the reference lacks (a typo), pointing at the YAML."""
        known = set(schema_columns)
        for name in self.columns:
            if name not in known:
                raise InvalidArgumentError(
                    f"{self.where('columns', name)}column {name!r} is not in {reference_label}."
                    + (
                        did_you_mean(name, schema_columns)
                        or f" Its columns are: {', '.join(schema_columns)}."
                    )
                )


# -- inference --------------------------------------------------------------------------------------
def _round_out(v: float, up: bool, integer: bool) -> float | int:
    if integer:
        return int(math.ceil(v) if up else math.floor(v))
    if v == 0:
        return 0.0
    nd = 3 - math.floor(math.log10(abs(v)))
    scale = 10.0**nd
    return round((math.ceil(v * scale) if up else math.floor(v * scale)) / scale, max(nd, 0))


def _hist_quantile(col: ColumnProfile, q: float) -> float | None:
    """The ``q`` quantile read off the aligned histogram (linear within a bin), in [min, max].

    The histogram's error is a share of the column's spread (the DDSketch's is a share of the
    value, useless for tails of a column far from zero such as years).
    """
    edges, counts = col.histogram
    total = sum(counts)
    if not total:
        return None
    target = q * total
    seen = 0.0
    for i, c in enumerate(counts):
        if c and seen + c >= target:
            v = edges[i] + (edges[i + 1] - edges[i]) * (target - seen) / c
            return min(max(v, float(col.min)), float(col.max))
        seen += c
    return float(col.max)


_EULER = 0.5772156649


def _tail_scale(col: ColumnProfile, upper: bool) -> float:
    """Scale ``β`` of an exponential tail fitted to one end of the reference (0: a flat end).

    Two estimates, the larger wins (heavy tails push the second one up): the spread between the
    90 % and 99 % quantiles (``β·ln 10`` for an exponential tail) and the distance from the 90 %
    quantile to the extreme (expected ``β·(ln(m/10) + γ)`` for ``m`` rows).
    """
    m = col.n_num
    if m < 20:
        return 0.0
    sign = 1.0 if upper else -1.0
    q90 = _hist_quantile(col, 0.9 if upper else 0.1)
    q99 = _hist_quantile(col, 0.99 if upper else 0.01)
    if q90 is None or q99 is None:
        return 0.0
    ext = float(col.max) if upper else float(col.min)
    betas = [sign * (ext - q90) / (math.log(m / 10) + _EULER)]
    if m >= 200:
        betas.append(sign * (q99 - q90) / math.log(10))
    return max(0.0, *betas)


def _log_tail_scale(col: ColumnProfile) -> float:
    """The same fit on the log scale (a Pareto tail), for the upper end of a column that is never negative."""
    m = col.n_num
    q90 = _hist_quantile(col, 0.9)
    if m < 20 or q90 is None or q90 <= 0 or float(col.min) < 0:
        return 0.0
    betas = [math.log(float(col.max) / q90) / (math.log(m / 10) + _EULER)]
    q99 = _hist_quantile(col, 0.99)
    if m >= 200 and q99 is not None and q99 > 0:
        betas.append(math.log(q99 / q90) / math.log(10))
    return max(0.0, *betas)


def _sparse_tail(col: ColumnProfile, upper: bool) -> bool:
    """True when fewer than 1 % of the reference rows lie off the column's main value on that side.

    Such a tail (a pixel that is almost always 0) is a handful of isolated values: there is no
    spread to learn a margin from, so that side gets no bound.
    """
    if col.hist_k is None:
        return False
    q = _hist_quantile(col, 0.99 if upper else 0.01)
    if q is None:
        return True
    w = 2.0**col.hist_k
    return (q - float(col.min) < w) if upper else (float(col.max) - q < w)


def range_bounds(col: ColumnProfile, checks: int = 1) -> tuple[float | None, float | None]:
    """``(min, max)`` a new batch of the reference's distribution stays within (None: no bound).

    A new sample of the reference's size passes its max with probability 1/2; by more than ``t``
    (exponential tail of scale ``β``) with probability ``≈ e^(−t/β)``. The margin is the ``t``
    where that is :data:`RANGE_ALPHA` shared by the suite's ``checks`` range checks:
    ``t = β · ln(checks / RANGE_ALPHA)``. The upper end of a never-negative column also gets the
    same fit on the log scale (measurements often vary by factors: a heavy, Pareto-like tail),
    at most :data:`MAX_LOG_FACTOR` times its max, and takes the wider of the two. A column that is
    never negative in the reference keeps 0 as its floor (a negative radius or count is always wrong).
    """
    cmin, cmax = float(col.min), float(col.max)
    spread = math.log(max(checks, 1) / RANGE_ALPHA)
    lo: float | None = None if _sparse_tail(col, False) else cmin - _tail_scale(col, False) * spread
    hi: float | None = None if _sparse_tail(col, True) else cmax + _tail_scale(col, True) * spread
    if hi is not None:
        hi = max(hi, cmax * min(MAX_LOG_FACTOR, math.exp(_log_tail_scale(col) * spread)))
    if cmin >= 0:  # a never-negative column stays never-negative: a margin never reaches below 0
        lo = 0.0 if lo is None else max(lo, 0.0)
    return lo, hi


def infer_column(
    col: ColumnProfile, *, range_checks: int = 1, distribution_checks: int = 1
) -> ColumnExpectations:
    """Expectations a column of the reference satisfies, with room for new samples of the same data.

    Ranges: :func:`range_bounds` (the observed min/max extended by a margin learned from the
    tail and the number of rows; ``range_checks`` is the suite's number of range checks); a
    constant column, or a side with under 1 % of the rows off the main value, gets no bound
    (there is no spread to learn a margin from) other than a floor of 0. Null fraction: half again plus one
    point of room (0 stays 0). Distribution: PSI with the ``auto`` threshold (sized at check time
    from both row counts, see :func:`modelyard.data._drift.distribution_check`).
    """
    fam = type_family(col.type)
    e = ColumnExpectations(type=fam if fam != "other" else "any")
    nf = col.null_fraction
    e.max_null_fraction = 0.0 if nf == 0 else round(min(1.0, nf + max(0.01, nf * 0.5)), 4)
    if (
        col.kind == "numeric"
        and col.min is not None
        and isinstance(col.min, int | float)
        and math.isfinite(col.min)
        and math.isfinite(col.max)
    ):
        integer = fam == "integer"
        cmin, cmax = float(col.min), float(col.max)
        if cmax > cmin:
            lo, hi = range_bounds(col, range_checks)
            e.min = None if lo is None else _round_out(lo, False, integer)
            e.max = None if hi is None else _round_out(hi, True, integer)
        elif cmin == 0:
            e.min = 0 if integer else 0.0
    if (
        col.kind in ("categorical", "boolean")
        and col.distinct_exact
        and 0 < len(col.values) <= MAX_CATEGORIES
    ):
        e.values = (
            sorted(col.values) if col.kind == "categorical" else sorted(v == "true" for v in col.values)
        )
        e.max_unseen_fraction = 0.01 if col.kind == "categorical" else 0.0
    if (
        col.distinct_exact
        and col.count > 1
        and col.distinct == col.count
        and col.nulls == 0
        and fam in ("integer", "string")
    ):
        e.unique = True
    id_like = fam in ("integer", "string") and col.count > 100 and col.distinct >= 0.9 * col.count
    if col.kind in ("numeric", "categorical", "boolean", "datetime") and col.count > 0 and not id_like:
        e.distribution = {"statistic": _DEFAULT_STAT, "threshold": "auto"}
    return e


def infer_suite(reference: str | Profile, *, uri: Any = None, name: str | None = None) -> Suite:
    """Infer a suite from a dataset version (``"churn-train@v3"``) or a :class:`Profile`."""
    prof: Profile | None
    if isinstance(reference, Profile):
        prof, ref_label = reference, None
    else:
        from modelyard.data._service import DataService

        svc = DataService(uri)
        v = svc.resolve(reference)
        prof = svc.profile(v)
        if prof is None:
            raise InvalidArgumentError(
                f"{v.ref} has no profile (it holds no tabular files, or was added with --no-profile); "
                "expectations cannot be inferred from it."
            )
        ref_label = v.ref
    suite = Suite(name=name or ref_label or "suite", reference=ref_label, row_count_min=1)
    numeric = [c for c in prof.columns.values() if c.kind == "numeric"]
    for col in prof.columns.values():
        suite.columns[col.name] = infer_column(col, range_checks=2 * max(len(numeric), 1))
    return suite


# -- loading YAML with positions ---------------------------------------------------------------------
def _to_python(node: Any, path: tuple[str, ...], marks: dict[tuple[str, ...], tuple[int, int]]) -> Any:
    import yaml

    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for k, v in node.value:
            key = str(k.value)
            marks[(*path, key)] = (k.start_mark.line + 1, k.start_mark.column + 1)
            out[key] = _to_python(v, (*path, key), marks)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, str(i)), marks) for i, v in enumerate(node.value)]
    return yaml.SafeLoader("").construct_object(node, deep=True)


def load_suite(source: str | os.PathLike[str] | dict[str, Any] | Suite) -> Suite:
    """Read a suite from a YAML file (or a dict); errors name the file, line and column."""
    if isinstance(source, Suite):
        return source
    import yaml

    from modelyard._yaml import compose_yaml, read_yaml_text

    marks: dict[tuple[str, ...], tuple[int, int]] = {}
    label: str | None = None
    if isinstance(source, dict):
        doc: Any = source
    else:
        path = Path(source)
        label = str(source)
        try:
            text = read_yaml_text(path, what="expectation suite")
        except FileNotFoundError:
            from modelyard.errors import NotFoundError

            raise NotFoundError(
                f"Cannot read the suite {label!r}: no such file. Write one with `yard data schema "
                f"NAME@vN > {label}`."
            ) from None
        try:
            node = compose_yaml(text, what="expectation suite", name=label)
        except yaml.MarkedYAMLError as exc:
            m = exc.problem_mark
            where = f"{label}:{m.line + 1}:{m.column + 1}: " if m else f"{label}: "
            raise InvalidArgumentError(f"{where}YAML syntax error: {exc.problem}.") from None
        doc = _to_python(node, (), marks) if node is not None else {}
    suite = Suite(source=label, marks=marks)
    if not isinstance(doc, dict):
        raise InvalidArgumentError(
            f"{suite.where()}a suite is a mapping with the keys {', '.join(_SUITE_KEYS)}."
        )
    for key in doc:
        if key not in _SUITE_KEYS:
            raise InvalidArgumentError(
                f"{suite.where(key)}unknown suite key {key!r}.{did_you_mean(key, _SUITE_KEYS)} "
                f"Known keys: {', '.join(_SUITE_KEYS)}."
            )
    suite.name = str(doc.get("suite") or (Path(label).stem if label else "suite"))
    suite.reference = doc.get("reference")
    rc = doc.get("row_count") or {}
    if not isinstance(rc, dict) or set(rc) - {"min", "max"}:
        raise InvalidArgumentError(
            f"{suite.where('row_count')}row_count must be a mapping with 'min' and/or 'max'."
        )
    suite.row_count_min = _int_or_none(rc.get("min"), suite, ("row_count", "min"))
    suite.row_count_max = _int_or_none(rc.get("max"), suite, ("row_count", "max"))
    suite.allow_extra_columns = _bool(doc.get("allow_extra_columns", True), suite, ("allow_extra_columns",))
    cols = doc.get("columns") or {}
    if not isinstance(cols, dict):
        raise InvalidArgumentError(
            f"{suite.where('columns')}'columns' must map column names to expectations."
        )
    for name, spec in cols.items():
        suite.columns[name] = _column(name, spec if spec is not None else {}, suite)
    return suite


def _column(name: str, spec: Any, suite: Suite) -> ColumnExpectations:
    base = ("columns", name)
    if not isinstance(spec, dict):
        raise InvalidArgumentError(
            f"{suite.where(*base)}the expectations of column {name!r} must be a mapping."
        )
    for key in spec:
        if key not in COLUMN_EXPECTATIONS:
            raise InvalidArgumentError(
                f"{suite.where(*base, key)}unknown expectation {key!r} for column {name!r}."
                f"{did_you_mean(key, COLUMN_EXPECTATIONS)} Known expectations: "
                f"{', '.join(COLUMN_EXPECTATIONS)}."
            )
    e = ColumnExpectations()
    if "type" in spec:
        t = spec["type"]
        if t not in TYPE_FAMILIES:
            raise InvalidArgumentError(
                f"{suite.where(*base, 'type')}'type' of column {name!r} must be one of "
                f"{', '.join(TYPE_FAMILIES)}. "
                f"Got {t!r}.{did_you_mean(str(t), TYPE_FAMILIES)}"
            )
        e.type = t
    e.required = _bool(spec.get("required", True), suite, (*base, "required"))
    e.max_null_fraction = _fraction(spec.get("max_null_fraction"), suite, (*base, "max_null_fraction"), name)
    e.min = _number(spec.get("min"), suite, (*base, "min"), name)
    e.max = _number(spec.get("max"), suite, (*base, "max"), name)
    if e.min is not None and e.max is not None and e.min > e.max:
        raise InvalidArgumentError(
            f"{suite.where(*base, 'min')}column {name!r} has min {e.min} greater than max {e.max}."
        )
    if "values" in spec:
        vals = spec["values"]
        if not isinstance(vals, list) or not vals:
            raise InvalidArgumentError(
                f"{suite.where(*base, 'values')}'values' of column {name!r} must be a non-empty list."
            )
        e.values = vals
    mu = _fraction(spec.get("max_unseen_fraction"), suite, (*base, "max_unseen_fraction"), name)
    e.max_unseen_fraction = mu if mu is not None else 0.0
    e.unique = _bool(spec.get("unique", False), suite, (*base, "unique"))
    if "distribution" in spec:
        d = spec["distribution"]
        if d is True:
            d = {}
        if not isinstance(d, dict):
            raise InvalidArgumentError(
                f"{suite.where(*base, 'distribution')}'distribution' of column {name!r} must be a "
                f"mapping such as {{statistic: psi, threshold: 0.2}}."
            )
        for key in d:
            if key not in ("statistic", "threshold"):
                raise InvalidArgumentError(
                    f"{suite.where(*base, 'distribution', key)}unknown key {key!r} in the "
                    f"distribution check of column {name!r}."
                    f"{did_you_mean(key, ('statistic', 'threshold'))} Known keys: statistic, threshold."
                )
        stat = d.get("statistic", _DEFAULT_STAT)
        if stat not in DRIFT_STATISTICS:
            raise InvalidArgumentError(
                f"{suite.where(*base, 'distribution', 'statistic')}the drift statistic of column "
                f"{name!r} must be one of "
                f"{', '.join(DRIFT_STATISTICS)}. Got {stat!r}."
            )
        raw = d.get("threshold", "auto")
        if raw == "auto":
            thr: Any = "auto"
        else:
            if isinstance(raw, str):
                raise InvalidArgumentError(
                    f"{suite.where(*base, 'distribution', 'threshold')}'threshold' of column "
                    f"{name!r} must be a number or 'auto'. Got {raw!r}."
                )
            thr = _number(raw, suite, (*base, "distribution", "threshold"), name)
        e.distribution = {"statistic": stat, "threshold": thr}
    return e


def _number(v: Any, suite: Suite, path: tuple[str, ...], col: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise InvalidArgumentError(
            f"{suite.where(*path)}{path[-1]!r} of column {col!r} must be a number. Got {v!r}."
        )
    return v


def _fraction(v: Any, suite: Suite, path: tuple[str, ...], col: str) -> float | None:
    n = _number(v, suite, path, col)
    if n is not None and not 0 <= n <= 1:
        raise InvalidArgumentError(
            f"{suite.where(*path)}{path[-1]!r} of column {col!r} must be between 0 and 1. Got {v!r}."
        )
    return n


def _int_or_none(v: Any, suite: Suite, path: tuple[str, ...]) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise InvalidArgumentError(
            f"{suite.where(*path)}row_count {path[-1]} must be a whole number >= 0. Got {v!r}."
        )
    return v


def _bool(v: Any, suite: Suite, path: tuple[str, ...]) -> bool:
    if not isinstance(v, bool):
        raise InvalidArgumentError(f"{suite.where(*path)}{path[-1]!r} must be true or false. Got {v!r}.")
    return v
