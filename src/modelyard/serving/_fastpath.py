"""A numeric fast path for scikit-learn models: the batch goes to the estimator as one float matrix.

The registry's ``LoadedModel.predict`` validates a DataFrame column by column and hands the
estimator a DataFrame, which costs far more than the prediction of a linear model. When a
model's signature has only numeric (or bool) columns and its estimator is a plain scikit-learn
estimator, the server builds the float matrix straight from the decoded request columns (every
column present, numbers only), lets the signature's own vectorized rules
(``registry._signature.MatrixCheck``: no missing values where none are allowed, whole numbers for
int columns, 0/1 for bool, min/max ranges) accept it, and calls the estimator on the matrix.
Anything the fast path does not accept goes to the regular path, which produces the exact
signature errors. The fast path is switched on only after it gave the same predictions as the
regular path on the warm-up rows.

For scikit-learn's linear models whose ``predict`` is the library's own (``LinearClassifierMixin``,
``LinearModel``: LogisticRegression, RidgeClassifier, SGD*, LinearSVC, LinearRegression, Ridge...),
the fast path computes the same expression the library does (``x @ coef_.T + intercept_``, then
the sign or arg-max over ``classes_``) without its per-call input checks, which cost ~100 µs per
call whatever the batch size; a batch with a non-finite value goes to the regular path (the
library's own error). Any other estimator gets its own ``predict`` on the matrix.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from modelyard.registry._signature import NUMERIC_DTYPES, MatrixCheck

__all__ = ["NumericFastPath", "numeric_fast_path"]


class NumericFastPath:
    """Predict payload columns with ``estimator`` as a float matrix in ``order``."""

    def __init__(self, estimator: Any, order: list[str], check: MatrixCheck) -> None:
        self.estimator = estimator
        self.order = order
        self.check = check
        self.dtypes = check.dtypes
        self.kernel = linear_kernel(estimator, len(order))

    def matrix(self, payloads: list[Any]) -> np.ndarray | None:
        """The float matrix of the payloads, or None when a row needs the regular path."""
        order = self.order
        arrays: list[np.ndarray] = [
            p.array for p in payloads if getattr(p, "names", None) == order and hasattr(p, "array")
        ]
        if len(arrays) == len(payloads):  # all-number tables (_columnar.py), already floats
            return self._checked(arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
        try:
            if all(p.n == 1 for p in payloads):  # one row each: one flat list, one array
                flat = _numbers([p.columns[c][0] for p in payloads for c in order])
                if flat is None or flat.ndim != 1:  # a cell holding a list is not a number
                    return None
                return self._checked(flat.reshape(len(payloads), len(order)))
            if len(payloads) == 1:
                arr = _numbers([payloads[0].columns[c] for c in order])
            else:
                parts = []
                for p in payloads:
                    part = _numbers([p.columns[c] for c in order])
                    if part is None:
                        return None
                    parts.append(part)
                arr = np.concatenate(parts, axis=1)
        except (KeyError, TypeError, ValueError):
            return None
        if arr is None:
            return None
        return self._checked(arr.T)

    def _checked(self, x: np.ndarray) -> np.ndarray | None:
        """``x`` (rows × columns in ``order``) when the signature's rules accept it, else None."""
        if x.ndim != 2 or x.shape[1] != len(self.order):
            return None
        if not self.check.accepts(x):
            return None
        return np.ascontiguousarray(x)

    def predict(self, x: np.ndarray) -> Any:
        if self.kernel is not None:
            return self.kernel(x)
        return self.estimator.predict(x)


def _regressor_predicts() -> tuple[Any, ...]:
    """The regressors' ``predict`` functions that are ``LinearModel.predict`` (LinearRegression
    and Ridge restate it for its docstring: ``return super().predict(X)``; tests/serving/
    test_fast_kernels.py checks each against the estimator)."""
    from sklearn.linear_model import LinearRegression, Ridge
    from sklearn.linear_model._base import LinearModel

    return (LinearModel.predict, LinearRegression.predict, Ridge.predict)


def linear_kernel(estimator: Any, n_features: int) -> Callable[[np.ndarray], np.ndarray] | None:
    """``predict`` of a scikit-learn linear model as its own numpy expression, or None when
    ``estimator`` is not one whose ``predict`` and decision function are the library's."""
    try:
        from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    except ImportError:  # pragma: no cover - another scikit-learn layout: the estimator's predict
        return None
    cls = type(estimator)
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    if type(coef) is not np.ndarray or coef.dtype != np.float64 or coef.ndim not in (1, 2):
        return None
    if coef.shape[-1] != n_features:
        return None
    if isinstance(intercept, np.ndarray):
        if intercept.dtype != np.float64 or intercept.ndim > 1:
            return None
    elif type(intercept) not in (float, int, np.float64):
        return None
    coef_t = coef.T if coef.ndim == 2 else coef
    if (
        isinstance(estimator, LinearClassifierMixin)
        and cls.predict is LinearClassifierMixin.predict
        and cls.decision_function is LinearClassifierMixin.decision_function
    ):
        classes = getattr(estimator, "classes_", None)
        if type(classes) is not np.ndarray or len(classes) < 2:
            return None

        def classify(x: np.ndarray) -> np.ndarray:
            if not np.isfinite(x).all():
                raise ValueError("the input holds NaN or infinity")  # the regular path reports it
            scores = x @ coef_t + intercept
            if scores.ndim > 1 and scores.shape[1] == 1:
                scores = scores.reshape(-1)
            idx = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            out: np.ndarray = classes.take(idx, axis=0)
            return out

        return classify
    if (
        isinstance(estimator, LinearModel)
        and cls.predict in _regressor_predicts()
        and cls._decision_function is LinearModel._decision_function
    ):

        def regress(x: np.ndarray) -> np.ndarray:
            if not np.isfinite(x).all():
                raise ValueError("the input holds NaN or infinity")
            out: np.ndarray = x @ coef_t + intercept
            return out

        return regress
    return None


def _numbers(cols: list[Any]) -> np.ndarray | None:
    """The columns as a float matrix, or None when a cell is not a number, bool or None.

    ``np.array(cols, dtype=float)`` would parse strings ("1.5" becomes 1.5), which the signature
    refuses ("should be float64 but is string"): the array is built with the inferred dtype first,
    so a string cell shows as a string (``U``) or object array and the regular path answers the 422.
    """
    arr = np.array(cols)
    kind = arr.dtype.kind
    if kind in "fiub":
        return arr.astype(float, copy=False)
    if kind != "O":
        return None  # strings, bytes, dates...
    # None (a missing value) or an integer beyond 64 bits makes an object array: check each cell
    if any(isinstance(v, (str, bytes)) for v in arr.flat):
        return None
    return arr.astype(float)


def numeric_fast_path(model: Any) -> NumericFastPath | None:
    """A fast path for ``model`` (a registry LoadedModel), or None when it does not qualify."""
    if getattr(model, "flavor", None) != "sklearn":
        return None
    sig = getattr(model, "signature", None)
    if sig is None or getattr(sig, "kind", "frame") != "frame" or not sig.inputs:
        return None
    if any(s.dtype not in NUMERIC_DTYPES for s in sig.inputs):
        return None
    opts = getattr(model, "_options", {}) or {}
    if opts.get("method") not in (None, "predict"):
        return None
    raw = getattr(model, "raw", None)
    if raw is None or not callable(getattr(raw, "predict", None)):
        return None
    specs = {s.name: s for s in sig.inputs}
    if "feature_names_in_" in vars(raw):
        order = [str(c) for c in raw.feature_names_in_]
        if set(order) != set(specs):
            return None
        estimator = copy.copy(raw)  # shallow: same fitted arrays, minus the names check
        del estimator.feature_names_in_
    elif hasattr(raw, "feature_names_in_"):
        return None  # a Pipeline or meta-estimator that reads names itself
    else:
        order = list(specs)
        estimator = raw
    check = sig.matrix_check(order)
    if check is None:
        return None
    return NumericFastPath(estimator, order, check)
