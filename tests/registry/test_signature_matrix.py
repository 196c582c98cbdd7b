"""Signature.matrix_check: the vectorized rules accept exactly the float rows that validate accepts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelyard.errors import SignatureError
from modelyard.registry._signature import ColSpec, Signature

SIG = Signature(
    [
        ColSpec("x", "float64", min=-1.0, max=1.0),
        ColSpec("n", "int64"),
        ColSpec("b", "bool"),
        ColSpec("maybe", "float32", nullable=True),
    ]
)
ORDER = ["n", "x", "maybe", "b"]  # the estimator's order, not the signature's

ROWS = {
    "fine": [[3.0, 0.5, np.nan, 1.0], [-2.0, -1.0, 2.5, 0.0]],
    "nan where none allowed": [[3.0, np.nan, 0.0, 1.0]],
    "below min": [[3.0, -1.5, 0.0, 1.0]],
    "above max": [[3.0, 1.01, 0.0, 1.0]],
    "fraction in an int column": [[3.5, 0.0, 0.0, 1.0]],
    "2 in a bool column": [[3.0, 0.0, 0.0, 2.0]],
    "nan in an int column": [[np.nan, 0.0, 0.0, 1.0]],
}


def _validate_accepts(rows: list[list[float]]) -> bool:
    frame = pd.DataFrame(rows, columns=ORDER)
    for spec in SIG.inputs:  # hand validate the types a request would carry: int and bool columns
        col = frame[spec.name]
        if spec.dtype.startswith("int") and not col.isna().any() and (col == col.round()).all():
            frame[spec.name] = col.astype("int64")
        if spec.dtype == "bool" and col.isin([0.0, 1.0]).all():
            frame[spec.name] = col.astype(bool)
    try:
        SIG.validate(frame)
    except SignatureError:
        return False
    return True


@pytest.mark.parametrize("case", sorted(ROWS))
def test_matrix_check_agrees_with_validate(case: str) -> None:
    check = SIG.matrix_check(ORDER)
    assert check is not None and check.dtypes == ["int64", "float64", "float32", "bool"]
    rows = ROWS[case]
    assert check.accepts(np.array(rows, dtype=float)) is _validate_accepts(rows)
    assert check.accepts(np.array(rows, dtype=float)) is (case == "fine")


def test_matrix_check_refuses_the_wrong_shape() -> None:
    check = SIG.matrix_check(ORDER)
    assert check is not None
    assert not check.accepts(np.zeros((2, 3)))
    assert not check.accepts(np.zeros(4))


def test_no_matrix_check_for_what_floats_cannot_hold() -> None:
    assert Signature([ColSpec("s", "string")]).matrix_check(["s"]) is None
    assert Signature([ColSpec("t", "datetime")]).matrix_check(["t"]) is None
    assert Signature([ColSpec("a", "float64")], kind="array").matrix_check(["a"]) is None
    assert SIG.matrix_check(["n", "x", "b"]) is None  # a column left out
    assert SIG.matrix_check(["n", "x", "b", "other"]) is None  # another name
    assert Signature([]).matrix_check([]) is None
