"""The numeric fast path's kernels for scikit-learn linear models: the same predictions as the
estimator's own ``predict``, bit for bit, and nothing for an estimator that changed ``predict``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import (
    LinearRegression,
    LogisticRegression,
    Ridge,
    RidgeClassifier,
    SGDClassifier,
)
from sklearn.svm import LinearSVC

from modelyard.serving._codec import Payload
from modelyard.serving._fastpath import NumericFastPath, linear_kernel

RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, 6))
W = RNG.normal(size=6)


def _targets(kind: str) -> np.ndarray:
    score = X @ W
    if kind == "binary":
        return (score > 0).astype(int)
    if kind == "multiclass":
        return np.digitize(score, [-1.0, 0.0, 1.0])
    if kind == "labels":
        return np.array(["cat", "dog", "eel"])[np.digitize(score, [-0.5, 0.5])]
    return score + RNG.normal(scale=0.1, size=len(score))


CASES = [
    (LogisticRegression(max_iter=500), "binary"),
    (LogisticRegression(max_iter=500), "multiclass"),
    (LogisticRegression(max_iter=500), "labels"),
    (LinearSVC(), "binary"),
    (SGDClassifier(random_state=0), "labels"),
    (LinearRegression(), "regression"),
    (LinearRegression(fit_intercept=False), "regression"),
    (Ridge(alpha=0.5), "regression"),
]


@pytest.mark.parametrize(("estimator", "kind"), CASES, ids=lambda c: getattr(c, "__name__", str(c))[:40])
def test_linear_kernels_predict_exactly_what_the_estimator_does(estimator, kind: str) -> None:  # type: ignore[no-untyped-def]
    est = estimator.fit(X, _targets(kind))
    kernel = linear_kernel(est, X.shape[1])
    assert kernel is not None
    probe = np.vstack([X[:50], RNG.normal(scale=3.0, size=(200, 6)), np.zeros((1, 6))])
    for rows in (probe, probe[:1], probe[:7]):
        want = est.predict(rows)
        got = kernel(np.ascontiguousarray(rows))
        assert got.dtype == want.dtype and got.shape == want.shape
        assert np.array_equal(got, want)


def test_a_non_finite_value_goes_to_the_regular_path() -> None:
    est = LogisticRegression(max_iter=500).fit(X, _targets("binary"))
    kernel = linear_kernel(est, X.shape[1])
    assert kernel is not None
    for bad in (np.nan, np.inf, -np.inf):
        rows = X[:3].copy()
        rows[1, 2] = bad
        with pytest.raises(ValueError, match="NaN or infinity"):
            kernel(rows)


class _Shifted(LogisticRegression):
    def predict(self, X):  # type: ignore[no-untyped-def, override]
        return super().predict(X + 1.0)


class _Scored(RidgeClassifier):
    def decision_function(self, X):  # type: ignore[no-untyped-def, override]
        return -super().decision_function(X)


def test_no_kernel_when_predict_is_not_the_librarys_own_or_the_shape_differs() -> None:
    y = _targets("binary")
    assert linear_kernel(_Shifted(max_iter=500).fit(X, y), 6) is None
    assert linear_kernel(_Scored().fit(X, y), 6) is None
    assert linear_kernel(RidgeClassifier().fit(X, y), 6) is None  # its own predict (multi-label aware)
    assert linear_kernel(LogisticRegression(max_iter=500).fit(X, y), 5) is None  # other feature count
    assert linear_kernel(object(), 6) is None


def test_one_row_payloads_make_one_matrix_and_refuse_what_is_not_a_number() -> None:
    from modelyard.registry._signature import ColSpec, Signature

    est = LogisticRegression(max_iter=500).fit(X, _targets("binary"))
    names = [f"f{i}" for i in range(6)]
    sig = Signature([ColSpec(n, "float64") for n in names])
    check = sig.matrix_check(names)
    assert check is not None
    fast = NumericFastPath(est, names, check)
    rows = [dict(zip(names, r.tolist(), strict=True)) for r in X[:5]]
    payloads = [Payload({c: [r[c]] for c in names}, 1) for r in rows]
    x = fast.matrix(payloads)
    assert x is not None and np.array_equal(x, X[:5])
    assert np.array_equal(fast.predict(x), est.predict(X[:5]))
    nested = Payload({c: [[v]] for c, v in rows[0].items()}, 1)  # a cell holding a list
    assert fast.matrix([payloads[0], nested]) is None
    text = Payload({**{c: [v] for c, v in rows[0].items()}, "f3": ["0.5"]}, 1)
    assert fast.matrix([payloads[0], text]) is None
