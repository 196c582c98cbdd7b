"""The grouped metric kernels: each computes one metric for every slice of a column at once
(``g`` a group code per row, ``G`` the number of groups) from :class:`PreparedTargets`: one
``bincount`` for confusion counts, one sort shared by every slice for ROC AUC. ``_metrics.py``
names them in the metric table and matches each to the scikit-learn function it replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["PreparedTargets"]


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


def _cache(p: PreparedTargets, key: tuple[Any, ...], make: Callable[[], np.ndarray]) -> np.ndarray:
    store = p.__dict__.setdefault("_cache", {})
    if key not in store:
        store[key] = make()
    got: np.ndarray = store[key]
    return got


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
    mean: np.ndarray = per.mean(axis=0)
    return mean  # one-vs-rest, macro: NaN when a class is absent from a slice


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
    root: np.ndarray = np.sqrt(_mse(p, g, G))
    return root


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


def _one_minus_ratio(res: np.ndarray, ss_tot: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``1 - res / ss_tot`` per group (R², explained variance), NaN below two rows; with
    scikit-learn's force_finite: a constant target scores 1.0 if predicted exactly, else 0.0."""
    out = 1.0 - _div(res, ss_tot, np.nan)
    const = ss_tot == 0
    out[const] = np.where(res[const] == 0, 1.0, 0.0)
    out[n < 2] = np.nan
    return out


def _r2(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    ss_res, ss_tot, n = _r2_parts(p, g, G)
    return _one_minus_ratio(ss_res, ss_tot, n)


def _explained_variance(p: PreparedTargets, g: np.ndarray | None, G: int) -> np.ndarray:
    assert p.y_true is not None
    n = _count(g, G, p.n)
    r = _resid(p)
    r_mean = _div(_gsum(r, g, G), n, np.nan)
    dr = r - (r_mean[0] if g is None else r_mean[g])
    var_res = _gsum(dr * dr, g, G)
    _, ss_tot, _ = _r2_parts(p, g, G)
    return _one_minus_ratio(var_res, ss_tot, n)
