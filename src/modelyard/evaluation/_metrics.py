"""Metrics by task, computed for the whole data and for every slice in one vectorized pass.

:data:`METRICS` is the visible name → :class:`MetricSpec` table. Every metric matches the
scikit-learn function it names (``sklearn`` column) to floating-point precision; the common ones
have a grouped implementation that computes all slices of a column at once (one ``bincount`` for
confusion counts, one sort shared by every slice for ROC AUC), the rest call scikit-learn once
per slice. The grouped kernels are in ``_kernels.py``.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import InvalidArgumentError
from modelyard.evaluation._kernels import (
    PreparedTargets,
    _accuracy,
    _binary_prf,
    _brier,
    _explained_variance,
    _log_loss,
    _mae,
    _mape,
    _mse,
    _multi_prf,
    _r2,
    _rmse,
    _roc_auc,
)

__all__ = [
    "METRICS",
    "TASKS",
    "MetricSpec",
    "MetricValues",
    "PreparedTargets",
    "closest_metric",
    "compute_metrics",
    "default_metrics",
    "metric_spec",
    "prepare_targets",
    "suggest_metric",
]

TASKS = ("binary", "multiclass", "regression")
_CLS = frozenset({"binary", "multiclass"})
_REG = frozenset({"regression"})


@dataclass(frozen=True)
class MetricSpec:
    """One metric: the tasks it fits, its direction, its input and its scikit-learn function."""

    name: str
    tasks: frozenset[str]
    greater_is_better: bool
    #: "label": predicted labels/values; "score": scores or probabilities
    needs: str
    sklearn: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    grouped: Callable[[PreparedTargets, np.ndarray | None, int], np.ndarray] | None = None
    description: str = ""

    @property
    def direction(self) -> str:
        return "higher" if self.greater_is_better else "lower"

    def sklearn_function(self) -> Callable[..., float]:
        mod, attr = self.sklearn.split(":")
        fn: Callable[..., float] = getattr(importlib.import_module(mod), attr)
        return fn


def _m(
    name: str,
    tasks: frozenset[str],
    gib: bool,
    needs: str,
    sk: str,
    grouped: Any = None,
    desc: str = "",
    **kw: Any,
) -> MetricSpec:
    return MetricSpec(name, tasks, gib, needs, f"sklearn.metrics:{sk}", kw, grouped, desc)


_B = frozenset({"binary"})
#: Metric name → spec. The visible table of every metric a gate or an evaluation can name.
METRICS: dict[str, MetricSpec] = {
    s.name: s
    for s in [
        _m("accuracy", _CLS, True, "label", "accuracy_score", _accuracy, "fraction of correct labels"),
        _m("balanced_accuracy", _CLS, True, "label", "balanced_accuracy_score"),
        _m("precision", _B, True, "label", "precision_score", _binary_prf("precision"), zero_division=0),
        _m("recall", _B, True, "label", "recall_score", _binary_prf("recall"), zero_division=0),
        _m("f1", _B, True, "label", "f1_score", _binary_prf("f1"), zero_division=0),
        _m(
            "precision_macro",
            _CLS,
            True,
            "label",
            "precision_score",
            _multi_prf("precision", "macro"),
            average="macro",
            zero_division=0,
        ),
        _m(
            "recall_macro",
            _CLS,
            True,
            "label",
            "recall_score",
            _multi_prf("recall", "macro"),
            average="macro",
            zero_division=0,
        ),
        _m(
            "f1_macro",
            _CLS,
            True,
            "label",
            "f1_score",
            _multi_prf("f1", "macro"),
            average="macro",
            zero_division=0,
        ),
        _m(
            "precision_weighted",
            _CLS,
            True,
            "label",
            "precision_score",
            _multi_prf("precision", "weighted"),
            average="weighted",
            zero_division=0,
        ),
        _m(
            "recall_weighted",
            _CLS,
            True,
            "label",
            "recall_score",
            _multi_prf("recall", "weighted"),
            average="weighted",
            zero_division=0,
        ),
        _m(
            "f1_weighted",
            _CLS,
            True,
            "label",
            "f1_score",
            _multi_prf("f1", "weighted"),
            average="weighted",
            zero_division=0,
        ),
        _m("mcc", _CLS, True, "label", "matthews_corrcoef"),
        _m("roc_auc", _CLS, True, "score", "roc_auc_score", _roc_auc, "multiclass: one-vs-rest, macro"),
        _m("average_precision", _B, True, "score", "average_precision_score"),
        _m("log_loss", _CLS, False, "score", "log_loss", _log_loss),
        _m("brier", _B, False, "score", "brier_score_loss", _brier),
        _m("mae", _REG, False, "label", "mean_absolute_error", _mae),
        _m("mse", _REG, False, "label", "mean_squared_error", _mse),
        _m("rmse", _REG, False, "label", "root_mean_squared_error", _rmse),
        _m("r2", _REG, True, "label", "r2_score", _r2),
        _m("mape", _REG, False, "label", "mean_absolute_percentage_error", _mape),
        _m("medae", _REG, False, "label", "median_absolute_error"),
        _m("max_error", _REG, False, "label", "max_error"),
        _m("explained_variance", _REG, True, "label", "explained_variance_score", _explained_variance),
    ]
}

_DEFAULTS = {
    "binary": ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"],
    "multiclass": [
        "accuracy",
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "f1_weighted",
        "roc_auc",
        "log_loss",
    ],
    "regression": ["mae", "mse", "rmse", "r2"],
}

_HINTS = {
    ("f1", "multiclass"): " Use 'f1_macro' or 'f1_weighted' for multiclass tasks.",
    ("precision", "multiclass"): " Use 'precision_macro' or 'precision_weighted' for multiclass tasks.",
    ("recall", "multiclass"): " Use 'recall_macro' or 'recall_weighted' for multiclass tasks.",
}


def metric_spec(name: str, task: str | None = None, *, where: str = "") -> MetricSpec:
    """The spec of metric ``name``; checks that it fits ``task`` when one is given.

    ``where`` prefixes the message (``gates.yaml:3: metrics.roc_auc``) so errors name the line.
    """
    prefix = f"{where}: " if where else ""
    spec = METRICS.get(name)
    if spec is None:
        if task in TASKS:
            listing = f"Metrics for {task}: {', '.join(n for n, s in METRICS.items() if task in s.tasks)}."
        else:
            listing = f"Known metrics: {', '.join(sorted(METRICS))}."
        raise InvalidArgumentError(f"{prefix}unknown metric {name!r}.{suggest_metric(name, task)} {listing}")
    if task is not None and task not in spec.tasks:
        fits = ", ".join(sorted(spec.tasks))
        hint = _HINTS.get(
            (name, task),
            f" Metrics for {task}: {', '.join(n for n, s in METRICS.items() if task in s.tasks)}.",
        )
        raise InvalidArgumentError(
            f"{prefix}metric {name!r} does not fit a {task} task (it is for {fits}).{hint}"
        )
    return spec


def closest_metric(name: str, task: str | None = None) -> tuple[str, float] | None:
    """The metric a mistyped ``name`` most likely means, with its similarity (0..1), or None.

    Only metrics that fit ``task`` are candidates, and a metric is also found by its scikit-learn
    function's name: ``f1_scor`` is close to ``f1_score``, which is ``f1`` (the first metric of that
    function fitting the task: ``f1`` on a binary task, ``f1_macro`` on a multiclass one), and by
    the first word of its name (``recal`` is ``recall_macro`` on a multiclass task).
    """
    names: dict[str, str] = {}
    for spec in METRICS.values():
        if task not in TASKS or task in spec.tasks:
            names[spec.name] = spec.name
    for spec in [s for s in METRICS.values() if s.name in names]:
        names.setdefault(spec.sklearn.rpartition(":")[2], spec.name)
    for spec in [s for s in METRICS.values() if s.name in names]:
        names.setdefault(spec.name.split("_")[0], spec.name)  # 'recal' → recall_macro on a multiclass task
    typed = name.strip().lower()
    match = difflib.get_close_matches(typed, list(names), n=1, cutoff=0.6)
    if not match:
        return None
    return names[match[0]], difflib.SequenceMatcher(None, typed, match[0]).ratio()


def suggest_metric(name: str, task: str | None = None) -> str:
    """`` Did you mean 'x'?`` for a mistyped metric name (see :func:`closest_metric`), or ``""``."""
    found = closest_metric(name, task)
    return f" Did you mean {found[0]!r}?" if found else ""


def default_metrics(task: str, *, has_scores: bool) -> list[str]:
    """The metrics computed when none are named: scored ones only when the model gives scores."""
    return [m for m in _DEFAULTS[task] if has_scores or METRICS[m].needs != "score"]


def _encode(values: Any, classes: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf" and classes.dtype.kind in "biuf":
        codes = np.searchsorted(classes, arr)
        codes = np.clip(codes, 0, len(classes) - 1)
        bad = classes[codes] != arr
    else:
        import pandas as pd

        codes = pd.Index(classes).get_indexer(arr).astype(np.int64)
        bad = codes < 0
    if bad.any():
        unknown = sorted({str(v) for v in np.asarray(arr)[bad][:20]})
        raise InvalidArgumentError(
            f"The {what} holds labels {unknown[:5]} that are not among the model's classes "
            f"{[str(c) for c in classes.tolist()]}. Check the label column, or pass classes=..."
        )
    return codes.astype(np.int64)


def prepare_targets(
    task: str,
    y_true: Any,
    y_pred: Any = None,
    y_score: Any = None,
    *,
    classes: Sequence[Any] | None = None,
) -> PreparedTargets:
    """Check and encode the arrays of one evaluation.

    Classification: ``classes`` is the order of ``y_score``'s columns (the model's ``classes_``);
    when missing it is the sorted union of the labels seen. For a binary task ``y_score`` may be
    the positive (last) class's score (1-D) or the two-column probabilities.
    """
    if task not in TASKS:
        raise InvalidArgumentError(
            f"The 'task' parameter of evaluate must be one of {list(TASKS)}. Got {task!r} instead."
        )
    yt = np.asarray(y_true)
    n = len(yt)
    if y_pred is not None and len(y_pred) != n:
        raise InvalidArgumentError(f"y_pred has {len(y_pred)} rows but y_true has {n}.")
    if y_score is not None and len(y_score) != n:
        raise InvalidArgumentError(f"y_score has {len(y_score)} rows but y_true has {n}.")
    if task == "regression":
        try:
            t = yt.astype(np.float64)
            pr = None if y_pred is None else np.asarray(y_pred).astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(
                f"A regression needs a numeric label and numeric predictions ({exc}). "
                "Pick a numeric label column or set task='binary'/'multiclass'."
            ) from None
        if np.isnan(t).any():
            raise InvalidArgumentError(
                f"The label has {int(np.isnan(t).sum())} missing values; drop those rows first."
            )
        return PreparedTargets(task, n, [], t, pr, None, yt, y_pred)
    if classes is None:
        seen = [yt] + ([np.asarray(y_pred)] if y_pred is not None else [])
        import pandas as pd

        cls = np.asarray(sorted(pd.unique(np.concatenate(seen)).tolist()))
    else:
        cls = np.asarray(list(classes))
    order = np.argsort(cls, kind="stable") if cls.dtype.kind in "biuf" else None
    if task == "binary" and len(cls) > 2:
        raise InvalidArgumentError(
            f"A binary task needs at most 2 classes; the label and predictions hold {len(cls)} "
            f"({[str(c) for c in cls.tolist()[:6]]}). Use task='multiclass'."
        )
    if task == "binary" and len(cls) < 2:
        cls = np.asarray([0, 1]) if cls.dtype.kind in "biu" and cls.tolist() in ([0], [1]) else cls
    sorted_cls = cls[order] if order is not None else cls
    if order is not None:
        t_codes = order[_encode(yt, sorted_cls, "label column")]
        p_codes = None if y_pred is None else order[_encode(y_pred, sorted_cls, "prediction")]
    else:
        t_codes = _encode(yt, cls, "label column")
        p_codes = None if y_pred is None else _encode(y_pred, cls, "prediction")
    score = None
    if y_score is not None:
        score = np.asarray(y_score, dtype=np.float64)
        if task == "binary":
            if score.ndim == 2:
                if score.shape[1] != 2:
                    raise InvalidArgumentError(f"A binary task needs 2 score columns; got {score.shape[1]}.")
                score = score[:, 1]
        elif score.ndim != 2 or score.shape[1] != len(cls):
            raise InvalidArgumentError(
                f"A multiclass task needs one probability column per class ({len(cls)}); got shape "
                f"{score.shape}."
            )
    return PreparedTargets(task, n, cls.tolist(), t_codes, p_codes, score, yt, y_pred)


@dataclass
class MetricValues:
    """Metric values for the whole data and for each slice: ``slices[column][value][metric]``."""

    task: str
    n_rows: int
    overall: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "n_rows": self.n_rows, "metrics": self.overall, "slices": self.slices}


def _sklearn_grouped(spec: MetricSpec, p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    fn = spec.sklearn_function()
    kw = dict(spec.kwargs)
    if p.task == "regression":
        t, pr = p.y_true, p.y_pred
    else:
        t, pr = p.y_true, p.y_pred
        if spec.needs == "score":
            pr = p.y_score
    if (spec.needs == "label" and pr is None) or (spec.needs == "score" and p.y_score is None):
        return np.full(G, np.nan)
    if p.task == "binary" and spec.name in ("precision", "recall", "f1"):
        kw["pos_label"] = 1
    out = np.full(G, np.nan)
    for k in range(G):
        mask = slice(None) if g is None else (g == k)
        tk, pk = t[mask], pr[mask]  # type: ignore[index]
        if len(tk) == 0:
            continue
        try:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[k] = float(fn(tk, pk, **kw))
        except ValueError:
            out[k] = np.nan  # undefined on this slice (e.g. one class only)
    return out


def compute_metrics(
    prepared: PreparedTargets,
    metrics: Sequence[str],
    slices: Mapping[str, tuple[np.ndarray, Sequence[str]]] | None = None,
) -> MetricValues:
    """Compute ``metrics`` overall and per slice.

    ``slices`` maps a column name to ``(codes, labels)``: an int code per row and the label of
    each code (see :func:`modelyard.evaluation.slice_codes`).
    """
    specs = [metric_spec(m, prepared.task) for m in metrics]
    for s in specs:
        if s.needs == "score" and prepared.y_score is None:
            raise InvalidArgumentError(
                f"Metric {s.name!r} needs scores or probabilities, and the model gives none (no "
                f"predict_proba). "
                f"Drop {s.name!r} or register a model that has predict_proba."
            )
        if s.needs == "label" and prepared.y_pred is None:
            raise InvalidArgumentError(f"Metric {s.name!r} needs predictions; none were given.")

    def run(g: np.ndarray | None, G: int) -> dict[str, np.ndarray]:
        cache = prepared.__dict__.setdefault("_cache", {})
        for key in [k for k in cache if k[0] == "conf"]:
            del cache[key]
        out = {}
        for s in specs:
            out[s.name] = (
                s.grouped(prepared, g, G) if s.grouped is not None else _sklearn_grouped(s, prepared, g, G)
            )
        return out

    overall = {k: float(v[0]) for k, v in run(None, 1).items()}
    result = MetricValues(prepared.task, prepared.n, overall)
    for column, (codes, labels) in (slices or {}).items():
        G = len(labels)
        vals = run(codes, G)
        counts = np.bincount(codes, minlength=G)
        result.slices[column] = {
            str(labels[k]): {"n": int(counts[k]), **{m: float(v[k]) for m, v in vals.items()}}
            for k in range(G)
        }
    return result
