"""The drift engine: ``yard.drift(reference=df, current=df)`` → :class:`DriftReport`.
The columns are read by ``_columns.py``; this module chooses the method and decides.

Per column the method is chosen by type and size (like the best tools) and can be overridden.
The size is both samples' harmonic mean ``2nm/(n+m)`` (equal to ``n`` when both have ``n``
rows; a 398-row reference against a 2,405-row window counts as 683, not as 2,405 nor 398):

========================  ==================================  =====================================
column                    small (size ≤ ``large_sample``)     large
========================  ==================================  =====================================
numeric                   KS test                             normalized Wasserstein ≥ 0.1
categorical, 2 values     two-proportion Z-test               Jensen–Shannon distance ≥ 0.1
categorical, > 2 values   chi-squared test                    Jensen–Shannon distance ≥ 0.1
========================  ==================================  =====================================

A test decides "drift" when its p-value, corrected for testing every column at once
(``correction="holm"``: Holm–Bonferroni, so ``alpha`` bounds the chance that *any* untouched
column is flagged; ``"bh"``: Benjamini–Hochberg, the expected share of false flags; ``"none"``)
is below ``alpha`` **and** the effect size (normalized Wasserstein, Jensen–Shannon distance) is
at least ``min_effect`` (default: the large-sample thresholds, 0.1), so a significant but tiny
shift is not drift. Large samples are decided on the effect size, so a decision does not flip
just because more rows arrive; the raw and corrected p-values and the effect size are reported
for every column. Repeated rows in the current sample of a continuous column (replayed traffic)
are discounted: the KS p-value uses the rows that are really new (``rows_current_effective``).
Null share and unseen categories are drift signals of their own. Bad input
never raises: each column gets a status (``too_few_rows``, ``missing_in_reference``,
``all_null``, ``type_mismatch``...) and the dataset score never becomes NaN.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from modelyard import _stats
from modelyard.errors import invalid_param
from modelyard.monitoring._columns import (
    DriftReference,
    _as_frame,
    _caller,
    _category_counts,
    _kind,
    _numeric_values,
    _std,
)
from modelyard.monitoring._report import ColumnDrift, DriftReport

__all__ = ["DEFAULT_THRESHOLDS", "METHODS", "DriftReference", "drift"]

#: Selectable methods, by the kind of column they apply to.
METHODS: dict[str, tuple[str, ...]] = {
    "ks": ("numeric",),
    "wasserstein": ("numeric",),
    "chisquare": ("categorical",),
    "z": ("categorical",),
    "jensenshannon": ("numeric", "categorical"),
    "psi": ("numeric", "categorical"),
}
#: Methods decided on a p-value (< alpha) rather than on a distance (≥ threshold).
P_VALUE_METHODS = frozenset({"ks", "chisquare", "z"})
#: Default decision threshold per distance method.
DEFAULT_THRESHOLDS: dict[str, float] = {"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.1}

_BINS = 10  # quantile bins for PSI / JS on numeric columns
_HIST_BINS = 24  # bins of the report's histograms


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


class _Config:
    def __init__(
        self,
        *,
        alpha: float,
        large_sample: int,
        min_rows: int,
        null_threshold: float,
        unseen_threshold: float,
        methods: Mapping[str, str],
        method: str | None,
        thresholds: Mapping[str, float],
        correction: str = "holm",
        min_effect: float | None = None,
    ) -> None:
        self.correction = correction
        self.min_effect = min_effect
        self.alpha = alpha
        self.large_sample = large_sample
        self.min_rows = min_rows
        self.null_threshold = null_threshold
        self.unseen_threshold = unseen_threshold
        self.methods = dict(methods)
        self.method = method
        self.thresholds = dict(thresholds)


def _pick_method(cfg: _Config, column: str, kind: str, n_small: float, n_categories: int) -> tuple[str, str]:
    """(method, how it was chosen)."""
    chosen = cfg.methods.get(column) or cfg.method
    if chosen:
        if kind not in METHODS[chosen]:
            # a global method that does not fit this column's type falls back to auto
            if column in cfg.methods:
                raise invalid_param(
                    f"methods[{column!r}]",
                    _caller(),
                    f"a method for {kind} columns ({', '.join(m for m, k in METHODS.items() if kind in k)})",
                    chosen,
                )
        else:
            return chosen, "selected"
    large = n_small > cfg.large_sample
    if kind == "numeric":
        return ("wasserstein" if large else "ks"), "auto"
    if large:
        return "jensenshannon", "auto"
    return ("z" if n_categories <= 2 else "chisquare"), "auto"


def _size(n: int, m: int) -> float:
    """The sample size a method is chosen by: the harmonic mean of both sizes."""
    return 2.0 * n * m / (n + m) if n + m else 0.0


def _correct(cfg: _Config, cols: list[ColumnDrift]) -> None:
    """Correct the p-value decisions for the number of columns tested and apply the effect floor."""
    tested = [
        c
        for c in cols
        if c.method in P_VALUE_METHODS and c.status in ("ok", "drift") and c.p_value is not None
    ]
    if not tested:
        return
    adj = _stats.adjust_p_values([float(c.p_value) for c in tested], cfg.correction)  # type: ignore[arg-type]
    for c, pa in zip(tested, adj, strict=True):
        c.p_value_adjusted = float(pa)
        floor = (
            cfg.min_effect
            if cfg.min_effect is not None
            else DEFAULT_THRESHOLDS["wasserstein" if c.effect_name == "wasserstein_norm" else "jensenshannon"]
        )
        c.effect_floor = floor
        significant = pa < (c.threshold if c.threshold is not None else cfg.alpha)
        _decide(c, bool(significant and (c.effect_size or 0.0) >= floor))


def _threshold(cfg: _Config, column: str, method: str) -> float:
    if column in cfg.thresholds:
        return float(cfg.thresholds[column])
    if method in P_VALUE_METHODS:
        return cfg.alpha
    return DEFAULT_THRESHOLDS[method]


def _null_signal(cfg: _Config, col: ColumnDrift) -> None:
    """Null share is its own drift signal: a real change (≥ null_threshold) that is significant."""
    nr, nc = col.rows_reference, col.rows_current
    xr, xc = col.null_share_reference * nr, col.null_share_current * nc
    diff = abs(col.null_share_current - col.null_share_reference)
    _, p = _stats.two_proportion_z(xr, nr, xc, nc)
    col.null_drift = bool(diff >= cfg.null_threshold and p < cfg.alpha)


def _numeric_column(
    cfg: _Config, name: str, ref: Any, cur: Any, prepared: DriftReference | None
) -> ColumnDrift:
    if prepared is not None:
        a, a_null, a_inf, a_std = prepared.numeric(name)
    else:
        a, a_null, a_inf = _numeric_values(ref)
        a_std = None
    b, b_null, b_inf = _numeric_values(cur)
    col = ColumnDrift(name=name, kind="numeric", rows_reference=len(ref), rows_current=len(cur))
    col.null_share_reference = (a_null + a_inf) / max(len(ref), 1)
    col.null_share_current = (b_null + b_inf) / max(len(cur), 1)
    col.inf_count_reference, col.inf_count_current = a_inf, b_inf
    col.valid_reference, col.valid_current = a.size, b.size
    _null_signal(cfg, col)
    if a.size == 0 or b.size == 0:
        return _finish_empty(col)
    if min(a.size, b.size) < cfg.min_rows:
        return _finish_too_few(cfg, col)
    if prepared is None:
        a = np.sort(a)
    b = np.sort(b)
    n_eff = _effective_rows(a, b)
    if n_eff < b.size:
        col.rows_current_effective = n_eff
    method, how = _pick_method(cfg, name, "numeric", _size(a.size, n_eff), 0)
    col.method, col.method_choice = method, how
    col.threshold = _threshold(cfg, name, method)
    scale = _std(a) if a_std is None else a_std
    if scale == 0.0:
        scale = _std(np.concatenate([a, b]))
    if a[0] == a[-1] == b[0] == b[-1]:
        col.status, col.drifted, col.reason = (
            "constant",
            bool(col.null_drift),
            "the same single value on both sides",
        )
        col.statistic, col.p_value, col.effect_size, col.effect_name = 0.0, 1.0, 0.0, "wasserstein_norm"
        if col.null_drift:
            col.status, col.reason = "drift", "null share changed"
        _numeric_hist(col, a, b)
        return col
    d, p = _stats.ks_from_sorted(a, b)
    if n_eff < b.size:  # repeated rows: the test's p-value for the rows that are really new
        from scipy.stats import distributions

        en = a.size * n_eff / (a.size + n_eff)
        p = float(np.clip(distributions.kstwo.sf(d, max(1, round(en))), 0.0, 1.0))
    w = _stats.wasserstein_from_sorted(a, b) / scale
    col.p_value = p
    col.effect_name, col.effect_size = "wasserstein_norm", w
    if method == "ks":
        col.statistic = d
        dist_drift = p < col.threshold
    elif method == "wasserstein":
        col.statistic = w
        dist_drift = w >= col.threshold
    else:
        edges = _stats.quantile_edges(a, _BINS)
        rc, cc = _stats.histogram_counts(a, edges), _stats.histogram_counts(b, edges)
        stat = _stats.psi(rc, cc) if method == "psi" else _stats.jensen_shannon(rc, cc)
        col.statistic = col.effect_size = stat
        col.effect_name = method
        dist_drift = stat >= col.threshold
    col.ks_statistic = d
    _decide(col, dist_drift)
    _numeric_hist(col, a, b)
    return col


def _distinct_sorted(x: np.ndarray) -> int:
    return int(np.count_nonzero(x[1:] != x[:-1])) + 1 if x.size else 0


def _effective_rows(a: np.ndarray, b: np.ndarray) -> int:
    """Rows of the current sample that count as independent draws (replayed rows do not).

    A continuous reference (at least half its values distinct) repeats a value in a share
    ``1 - distinct/n`` of its rows; a current sample that repeats far more (under half the
    reference's distinct share) holds copies (replayed traffic, retries): it counts as
    ``distinct / reference distinct share`` rows, so 171 rows replayed into a 2,405-row
    window are tested as about 171, not 2,405.
    """
    sa = _distinct_sorted(a) / a.size
    if sa < 0.5 or b.size < 2:
        return int(b.size)
    db = _distinct_sorted(b)
    if db / b.size >= 0.5 * sa:
        return int(b.size)
    return int(min(b.size, max(2, round(db / sa))))


def _numeric_hist(col: ColumnDrift, a: np.ndarray, b: np.ndarray) -> None:
    lo = min(a[int(0.005 * (a.size - 1))], b[int(0.005 * (b.size - 1))])
    hi = max(a[int(0.995 * (a.size - 1))], b[int(0.995 * (b.size - 1))])
    if not hi > lo:
        lo, hi = float(min(a[0], b[0])), float(max(a[-1], b[-1]))
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, _HIST_BINS + 1)
    inner = edges[1:-1]
    col.histogram = {
        "edges": [float(e) for e in edges],
        "reference": (_stats.histogram_counts(a, inner) / a.size).tolist(),
        "current": (_stats.histogram_counts(b, inner) / b.size).tolist(),
    }
    col.mean_reference, col.mean_current = float(a.mean()), float(b.mean())


def _decide(col: ColumnDrift, dist_drift: bool) -> None:
    reasons = []
    if dist_drift:
        if col.method in P_VALUE_METHODS:
            reasons.append(
                f"{col.method} p-value past threshold"
                + (" after correction" if col.p_value_adjusted is not None else "")
            )
        else:
            reasons.append(f"{col.method} distance past threshold")
    if col.null_drift:
        reasons.append("null share changed")
    if col.unseen_drift:
        reasons.append("unseen categories")
    col.distribution_drift = bool(dist_drift)
    col.drifted = bool(reasons)
    col.status = "drift" if col.drifted else "ok"
    col.reason = "; ".join(reasons)


def _finish_empty(col: ColumnDrift) -> ColumnDrift:
    side = "reference" if col.valid_reference == 0 else "current"
    if col.valid_reference == 0 and col.valid_current == 0:
        side = "both sides"
    if col.null_drift:
        col.status, col.drifted = "drift", True
        col.reason = f"no non-null values on {side}; null share changed"
    else:
        col.status, col.drifted = "all_null", None
        col.reason = f"no non-null values on {side}: nothing to compare"
    return col


def _finish_too_few(cfg: _Config, col: ColumnDrift) -> ColumnDrift:
    col.status, col.drifted = "too_few_rows", None
    col.reason = (
        f"{min(col.valid_reference, col.valid_current)} non-null values on the smaller side, "
        f"fewer than min_rows={cfg.min_rows}: no decision"
    )
    if col.null_drift:
        col.status, col.drifted, col.reason = (
            "drift",
            True,
            col.reason.replace("no decision", "null share changed"),
        )
    return col


def _categorical_column(
    cfg: _Config, name: str, ref: Any, cur: Any, prepared: DriftReference | None
) -> ColumnDrift:
    rc, r_null = prepared.categories(name) if prepared is not None else _category_counts(ref)
    cc, c_null = _category_counts(cur)
    col = ColumnDrift(name=name, kind="categorical", rows_reference=len(ref), rows_current=len(cur))
    col.null_share_reference = r_null / max(len(ref), 1)
    col.null_share_current = c_null / max(len(cur), 1)
    col.valid_reference, col.valid_current = sum(rc.values()), sum(cc.values())
    _null_signal(cfg, col)
    if col.valid_reference == 0 or col.valid_current == 0:
        return _finish_empty(col)
    unseen = {k: v for k, v in cc.items() if k not in rc}
    col.unseen_share = sum(unseen.values()) / col.valid_current
    col.unseen_categories = sorted(unseen, key=lambda k: -unseen[k])[:10]
    col.unseen_drift = bool(col.unseen_share >= cfg.unseen_threshold)
    if min(col.valid_reference, col.valid_current) < cfg.min_rows:
        return _finish_too_few(cfg, col)
    cats, r_list, c_list = _stats.align_categories(rc, cc, order="frequency")
    r = np.array(r_list, dtype=np.float64)
    c = np.array(c_list, dtype=np.float64)
    top = cats[:_HIST_BINS]
    col.histogram = {
        "categories": top,
        "reference": (r[: len(top)] / r.sum()).tolist(),
        "current": (c[: len(top)] / c.sum()).tolist(),
    }
    method, how = _pick_method(
        cfg, name, "categorical", _size(col.valid_reference, col.valid_current), len(cats)
    )
    col.method, col.method_choice = method, how
    col.threshold = _threshold(cfg, name, method)
    js = _stats.jensen_shannon(r, c)
    col.effect_name, col.effect_size = "jensenshannon", js
    if len(cats) == 1:
        col.statistic, col.p_value = 0.0, 1.0
        col.status, col.drifted, col.reason = "constant", False, "a single category on both sides"
        if col.null_drift:
            col.status, col.drifted, col.reason = "drift", True, "null share changed"
        return col
    # the p-value reported for every method: Z-test for two categories, else chi-squared
    if len(cats) == 2:
        col.p_value = _stats.two_proportion_z(r[0], r.sum(), c[0], c.sum())[1]
    else:
        col.p_value = _stats.chi2_homogeneity(r, c)[1]
    if method == "chisquare":
        col.statistic, col.p_value = _stats.chi2_homogeneity(r, c)
        dist_drift = col.p_value < col.threshold
    elif method == "z":
        # Z compares the share of the most frequent reference category
        i0 = cats.index(max(rc, key=lambda k: rc[k])) if len(cats) > 2 else 0
        col.statistic, col.p_value = _stats.two_proportion_z(r[i0], r.sum(), c[i0], c.sum())
        dist_drift = col.p_value < col.threshold
    elif method == "psi":
        col.statistic = col.effect_size = _stats.psi(r, c)
        col.effect_name = "psi"
        dist_drift = col.statistic >= col.threshold
    else:
        col.statistic = js
        dist_drift = js >= col.threshold
    _decide(col, dist_drift)
    return col


def _column(
    cfg: _Config,
    name: str,
    ref_df: Any,
    cur_df: Any,
    kinds: Mapping[str, str],
    prepared: DriftReference | None,
) -> ColumnDrift:
    in_ref, in_cur = name in ref_df.columns, name in cur_df.columns
    if not (in_ref and in_cur):
        col = ColumnDrift(
            name=name,
            kind="unknown",
            rows_reference=len(ref_df),
            rows_current=len(cur_df),
            status="missing_in_current" if in_ref else "missing_in_reference",
        )
        col.reason = f"column {name!r} is only in the {'reference' if in_ref else 'current'} data"
        return col
    ref, cur = ref_df[name], cur_df[name]
    kind = kinds.get(name)
    if kind is None:
        kr, kc = _kind(ref), _kind(cur)
        if kr != kc:
            # an all-null side carries no type; otherwise try reading strings as numbers
            if ref.notna().sum() == 0:
                kind = kc
            elif cur.notna().sum() == 0:
                kind = kr
            else:
                kind = _reconcile(ref, cur, kr, kc)
        else:
            kind = kr
    if kind == "type_mismatch":
        col = ColumnDrift(name=name, kind="mixed", rows_reference=len(ref), rows_current=len(cur))
        col.status = "type_mismatch"
        col.reason = f"reference is {ref.dtype} ({_kind(ref)}), current is {cur.dtype} ({_kind(cur)})"
        return col
    if kind == "numeric":
        if prepared is not None and _kind(ref) != "numeric":
            prepared = None  # text reference read as numbers: not what was prepared
        return _numeric_column(cfg, name, ref, cur, prepared)
    if prepared is not None and _kind(ref) != "categorical":
        prepared = None
    return _categorical_column(cfg, name, ref, cur, prepared)


def _reconcile(ref: Any, cur: Any, kr: str, kc: str) -> str:
    """Numeric on one side, text on the other: numeric if the text parses as numbers, else a mismatch."""
    import pandas as pd

    text = cur if kc == "categorical" else ref
    if pd.api.types.is_bool_dtype(text.dtype):
        return "type_mismatch"
    parsed = pd.to_numeric(text.astype("object"), errors="coerce")
    if int(parsed.notna().sum()) == int(text.notna().sum()):
        return "numeric"
    return "type_mismatch"


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    prediction: str | Sequence[str] | None = None,
    method: str | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    categorical: Sequence[str] | None = None,
    numeric: Sequence[str] | None = None,
    alpha: float = 0.05,
    large_sample: int = 1000,
    min_rows: int = 30,
    null_threshold: float = 0.05,
    unseen_threshold: float = 0.05,
    drift_share: float = 0.5,
    correction: str = "holm",
    min_effect: float | None = None,
    domain_classifier: bool = False,
    domain_classifier_threshold: float = 0.55,
    max_workers: int | None = None,
    seed: int = 0,
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column; return a :class:`DriftReport`.

    ``method`` sets one method for every column it fits, ``methods`` per column (``"ks"``,
    ``"wasserstein"``, ``"chisquare"``, ``"z"``, ``"jensenshannon"``, ``"psi"``); otherwise the
    method is chosen by type and size (``large_sample``). ``thresholds`` overrides the decision
    threshold per column (p-value methods: alpha; distances: minimum distance). P-values are
    corrected across the columns (``correction``: ``"holm"``, ``"bh"`` or ``"none"``) and a test
    only calls drift when the effect size is at least ``min_effect`` (None: 0.1, the large-sample
    thresholds; 0 turns the floor off). ``prediction``
    names the model output column(s): reported as prediction drift, not counted in the dataset
    share. The dataset drifts when ``share_drifted >= drift_share``. ``domain_classifier`` adds
    a multivariate detector: the ROC AUC of a classifier told to separate the two samples.
    Pass ``reference=DriftReference(df)`` to compare many batches against one reference: its
    columns are sorted and counted once.
    """
    prepared = reference if isinstance(reference, DriftReference) else None
    ref_df = prepared.frame if prepared is not None else _as_frame(reference, "reference")
    cur_df = _as_frame(current, "current")
    for param, value, lo, hi in (
        ("alpha", alpha, 0.0, 1.0),
        ("drift_share", drift_share, 0.0, 1.0),
        ("null_threshold", null_threshold, 0.0, 1.0),
        ("unseen_threshold", unseen_threshold, 0.0, 1.0),
    ):
        if not (isinstance(value, (int, float)) and lo < value <= hi):
            raise invalid_param(param, _caller(), f"a number in ({lo}, {hi}]", value)
    if correction not in ("holm", "bh", "none"):
        raise invalid_param("correction", _caller(), "one of 'holm', 'bh', 'none'", correction)
    if min_effect is not None and not (isinstance(min_effect, (int, float)) and min_effect >= 0):
        raise invalid_param("min_effect", _caller(), "a number >= 0 or None", min_effect)
    if not isinstance(min_rows, int) or min_rows < 2:
        raise invalid_param("min_rows", _caller(), "an int >= 2", min_rows)
    all_methods = sorted(METHODS)
    if method is not None and method not in METHODS:
        raise invalid_param("method", _caller(), f"one of {all_methods} or None", method)
    for col_name, m in (methods or {}).items():
        if m not in METHODS:
            raise invalid_param(f"methods[{col_name!r}]", _caller(), f"one of {all_methods}", m)
    preds = [prediction] if isinstance(prediction, str) else list(prediction or [])
    if columns is None:
        names = list(dict.fromkeys([*map(str, ref_df.columns), *map(str, cur_df.columns)]))
    else:
        names = list(columns)
    for p in preds:
        if p not in names:
            names.append(p)
    kinds: dict[str, str] = {}
    for col_name in categorical or ():
        kinds[col_name] = "categorical"
    for col_name in numeric or ():
        kinds[col_name] = "numeric"
    cfg = _Config(
        alpha=alpha,
        large_sample=large_sample,
        min_rows=min_rows,
        null_threshold=null_threshold,
        unseen_threshold=unseen_threshold,
        methods=methods or {},
        method=method,
        thresholds=thresholds or {},
        correction=correction,
        min_effect=min_effect,
    )
    workers = max_workers or min(4, os.cpu_count() or 1)
    if workers > 1 and len(names) > 1 and max(len(ref_df), len(cur_df)) >= 50_000:
        with ThreadPoolExecutor(workers) as pool:
            cols = list(pool.map(lambda n: _column(cfg, n, ref_df, cur_df, kinds, prepared), names))
    else:
        cols = [_column(cfg, n, ref_df, cur_df, kinds, prepared) for n in names]
    for c in cols:
        c.is_prediction = c.name in preds
    _correct(cfg, [c for c in cols if not c.is_prediction])
    _correct(cfg, [c for c in cols if c.is_prediction])
    for c in cols:
        for attr in ("statistic", "p_value", "p_value_adjusted", "effect_size", "threshold"):
            setattr(c, attr, _finite_or_none(getattr(c, attr)))
    report = DriftReport(
        columns=cols,
        drift_share=drift_share,
        rows_reference=len(ref_df),
        rows_current=len(cur_df),
        settings={
            "alpha": alpha,
            "large_sample": large_sample,
            "min_rows": min_rows,
            "null_threshold": null_threshold,
            "unseen_threshold": unseen_threshold,
            "drift_share": drift_share,
            "correction": correction,
            "min_effect": min_effect,
        },
    )
    if domain_classifier:
        from modelyard.monitoring._domain import domain_classifier_auc

        features = [c.name for c in cols if c.status in ("ok", "drift", "constant") and not c.is_prediction]
        report.domain_classifier = domain_classifier_auc(
            ref_df,
            cur_df,
            features,
            {c.name: c.kind for c in cols},
            threshold=domain_classifier_threshold,
            seed=seed,
        )
    return report
