"""Metrics by task, computed for the whole data and for every slice in one vectorized pass.

:data:`METRICS` is the visible name → :class:`MetricSpec` table. Every metric matches the
scikit-learn function it names (``sklearn`` column) to floating-point precision; the common ones
have a grouped implementation that computes all slices of a column at once (one ``bincount`` for
confusion counts, one sort shared by every slice for ROC AUC), the rest call scikit-learn once
per slice.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import InvalidArgumentError

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


@dataclass
class PreparedTargets:
    """Encoded targets of one evaluation: class codes for classifiers, floats for regression."""

    task: str
    n: int
    classes: list[Any] = field(default_factory=list)
    y_true: np.ndarray | None = None  # int codes (classification) or float (regression)
    y_pred: np.ndarray | None = None
    #: binary: score of the positive class (1-D); multiclass: probabilities (n, K).
    y_score: np.ndarray | None = None
    #: the raw arrays, given to scikit-learn for metrics without a grouped implementation
    raw_true: Any = None
    raw_pred: Any = None

    @property
    def k(self) -> int:
        return len(self.classes)


# -- grouped kernels: each returns one value per group ----------------------------------------
# ``g`` holds a group code per row (None: one group), ``G`` the number of groups.


def _count(g: np.ndarray | None, G: int, n: int) -> np.ndarray:
    return np.array([n], dtype=np.float64) if g is None else np.bincount(g, minlength=G).astype(np.float64)


def _gsum(values: np.ndarray, g: np.ndarray | None, G: int) -> np.ndarray:
    if g is None:
        return np.array([values.sum(dtype=np.float64)])
    return np.bincount(g, weights=values, minlength=G)


def _confusion(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    """Confusion counts, shape (G, K, K): [group, true, predicted]."""
    k = p.k
    assert p.y_true is not None and p.y_pred is not None
    idx = p.y_true * k + p.y_pred
    if g is not None:
        idx = g.astype(np.int64) * (k * k) + idx
    return np.bincount(idx, minlength=G * k * k).reshape(G, k, k).astype(np.float64)


def _div(num: np.ndarray, den: np.ndarray, fill: float = 0.0) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, fill, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _cache(p: PreparedTargets, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
    store = p.__dict__.setdefault("_cache", {})
    if key not in store:
        store[key] = make()
    return store[key]


def _conf(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    return _cache(p, ("conf", id(g)), lambda: _confusion(p, g, G))


def _accuracy(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    c = _conf(p, g, G)
    return _div(np.trace(c, axis1=1, axis2=2), c.sum(axis=(1, 2)), np.nan)


def _binary_prf(which: str) -> Callable[[PreparedTargets, np.ndarray | None, int], np.ndarray]:
    def fn(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
        c = _conf(p, g, G)
        tp, fp, fn_ = c[:, 1, 1], c[:, 0, 1], c[:, 1, 0]
        if which == "precision":
            return _div(tp, tp + fp)
        if which == "recall":
            return _div(tp, tp + fn_)
        return _div(2 * tp, 2 * tp + fp + fn_)

    return fn


def _multi_prf(which: str, average: str) -> Callable[[PreparedTargets, np.ndarray | None, int], np.ndarray]:
    def fn(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
        c = _conf(p, g, G)
        tp = np.diagonal(c, axis1=1, axis2=2)
        true_n, pred_n = c.sum(axis=2), c.sum(axis=1)
        if which == "precision":
            per = _div(tp, pred_n)
        elif which == "recall":
            per = _div(tp, true_n)
        else:
            per = _div(2 * tp, true_n + pred_n)
        if average == "weighted":
            return _div((per * true_n).sum(axis=1), true_n.sum(axis=1))
        present = (true_n + pred_n) > 0  # scikit-learn averages over the labels seen in the call
        return _div((per * present).sum(axis=1), present.sum(axis=1), np.nan)

    return fn


def _score_order(p: PreparedTargets, column: int | None) -> np.ndarray:
    def make() -> np.ndarray:
        assert p.y_score is not None  # only ranking metrics ask, and they need scores
        s = p.y_score if column is None else p.y_score[:, column]
        return np.argsort(s, kind="quicksort")

    return _cache(p, ("order", column), make)


def _auc_grouped(
    score: np.ndarray, pos: np.ndarray, order: np.ndarray, g: np.ndarray | None, G: int
) -> np.ndarray:
    """ROC AUC per group by the rank-sum (Mann-Whitney U) identity, ties given their average rank.

    One global sort by score is shared by every grouping: a stable sort of the small group codes
    keeps each group's rows in score order.
    """
    if g is not None:
        gc = g.astype(np.int16 if G < 32000 else np.int64)
        order = order[np.argsort(gc[order], kind="stable")]
        gs = gc[order]
    s = score[order]
    y = pos[order]
    n = len(s)
    if n == 0:
        return np.full(G, np.nan)
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    if g is not None:
        new[1:] |= gs[1:] != gs[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    pos_in_block = np.add.reduceat(y.astype(np.float64), starts)
    if g is None:
        gstart = np.zeros(1)
        block_group = np.zeros(len(starts), dtype=np.int64)
    else:
        counts = np.bincount(gs, minlength=G)
        gstart = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.float64)
        block_group = gs[starts].astype(np.int64)
    avg_rank = (starts + ends - 1) / 2.0 + 1.0 - gstart[block_group]
    rank_sum = np.bincount(block_group, weights=avg_rank * pos_in_block, minlength=G)
    n_pos = np.bincount(block_group, weights=pos_in_block, minlength=G)
    n_all = np.bincount(block_group, weights=(ends - starts).astype(np.float64), minlength=G)
    n_neg = n_all - n_pos
    return _div(rank_sum - n_pos * (n_pos + 1) / 2.0, n_pos * n_neg, np.nan)


def _roc_auc(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    assert p.y_score is not None and p.y_true is not None
    if p.task == "binary":
        return _auc_grouped(p.y_score, p.y_true == 1, _score_order(p, None), g, G)
    per = np.vstack(
        [_auc_grouped(p.y_score[:, j], p.y_true == j, _score_order(p, j), g, G) for j in range(p.k)]
    )
    return per.mean(axis=0)  # one-vs-rest, macro: NaN when a class is absent from a slice


def _log_loss(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    assert p.y_score is not None and p.y_true is not None
    if p.task == "binary":
        prob = np.column_stack([1.0 - p.y_score, p.y_score])
    else:
        prob = p.y_score / p.y_score.sum(axis=1, keepdims=True)
    eps = np.finfo(prob.dtype).eps
    picked = np.clip(prob[np.arange(p.n), p.y_true], eps, 1 - eps)
    return _div(_gsum(-np.log(picked), g, G), _count(g, G, p.n), np.nan)


def _brier(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    assert p.y_score is not None and p.y_true is not None
    d = p.y_score - (p.y_true == 1)
    return _div(_gsum(d * d, g, G), _count(g, G, p.n), np.nan)


def _resid(p: PreparedTargets) -> np.ndarray:
    return _cache(p, ("resid",), lambda: p.y_true - p.y_pred)  # type: ignore[operator]


def _mae(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    return _div(_gsum(np.abs(_resid(p)), g, G), _count(g, G, p.n), np.nan)


def _mse(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    r = _resid(p)
    return _div(_gsum(r * r, g, G), _count(g, G, p.n), np.nan)


def _rmse(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    return np.sqrt(_mse(p, g, G))


def _mape(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    y = p.y_true
    ape = np.abs(_resid(p)) / np.maximum(np.abs(y), np.finfo(np.float64).eps)  # type: ignore[arg-type]
    return _div(_gsum(ape, g, G), _count(g, G, p.n), np.nan)


def _r2_parts(p: PreparedTargets, g: np.ndarray | None, G: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert p.y_true is not None
    n = _count(g, G, p.n)
    r = _resid(p)
    ss_res = _gsum(r * r, g, G)
    mean = _div(_gsum(p.y_true, g, G), n, np.nan)
    d = p.y_true - (mean[0] if g is None else mean[g])
    return ss_res, _gsum(d * d, g, G), n


def _r2(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    ss_res, ss_tot, n = _r2_parts(p, g, G)
    out = 1.0 - _div(ss_res, ss_tot, np.nan)
    # scikit-learn's force_finite: a constant target scores 1.0 if predicted exactly, else 0.0
    const = ss_tot == 0
    out[const] = np.where(ss_res[const] == 0, 1.0, 0.0)
    out[n < 2] = np.nan
    return out


def _explained_variance(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    assert p.y_true is not None
    n = _count(g, G, p.n)
    r = _resid(p)
    r_mean = _div(_gsum(r, g, G), n, np.nan)
    dr = r - (r_mean[0] if g is None else r_mean[g])
    var_res = _gsum(dr * dr, g, G)
    _, ss_tot, _ = _r2_parts(p, g, G)
    out = 1.0 - _div(var_res, ss_tot, np.nan)
    const = ss_tot == 0
    out[const] = np.where(var_res[const] == 0, 1.0, 0.0)
    out[n < 2] = np.nan
    return out


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
        return getattr(importlib.import_module(mod), attr)


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
                f"A multiclass task needs one probability column per class ({len(cls)}); got shape {score.shape}."
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
                f"Metric {s.name!r} needs scores or probabilities, and the model gives none (no predict_proba). "
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
