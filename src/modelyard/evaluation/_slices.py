"""Slices: turn a column (or quantile bins of a numeric column) into one int code per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.errors import InvalidArgumentError, did_you_mean

__all__ = ["MAX_SLICE_VALUES", "parse_slices", "slice_codes"]

#: A slice column with more distinct values than this must be binned (``tenure:4``).
MAX_SLICE_VALUES = 100

MISSING = "<missing>"


def parse_slices(slices: str | Sequence[str] | None) -> list[str]:
    """``"plan,region"`` or ``["plan", "tenure:4"]`` → a list of slice specs."""
    if slices is None:
        return []
    items = slices.split(",") if isinstance(slices, str) else list(slices)
    out = [s.strip() for s in items if s and s.strip()]
    if len(set(out)) != len(out):
        raise InvalidArgumentError(f"The slices {out} name a column twice; name each once.")
    return out


def _interval_labels(intervals: Any) -> list[str]:
    """``(6.98, 12.04]`` rather than ``(6.9799999999999995, 12.04]``: edges with the fewest
    significant digits (4 or more) that keep every distinct edge distinct."""
    edges = sorted({float(i.left) for i in intervals} | {float(i.right) for i in intervals})
    for digits in range(4, 18):
        if len({f"{e:.{digits}g}" for e in edges}) == len(edges):
            return [f"({i.left:.{digits}g}, {i.right:.{digits}g}]" for i in intervals]
    return [str(c) for c in intervals]


def slice_codes(df: Any, spec: str) -> tuple[str, np.ndarray, list[str]]:
    """``(name, codes, labels)`` for slice ``spec``: a column name, or ``column:N`` for N quantile bins.

    Missing values form their own slice, labelled ``<missing>``.
    """
    import pandas as pd

    column, _, bins = spec.partition(":")
    if column not in df.columns:
        raise InvalidArgumentError(
            f"Slice column {column!r} is not in the evaluation "
            f"data.{did_you_mean(column, map(str, df.columns))} "
            f"Columns: {', '.join(map(str, df.columns))}."
        )
    values = df[column]
    if bins:
        try:
            n_bins = int(bins)
            if n_bins < 2:
                raise ValueError
        except ValueError:
            raise InvalidArgumentError(
                f"Slice {spec!r}: the number of bins after ':' must be an integer >= 2 (for "
                f"example {column}:4)."
            ) from None
        if not pd.api.types.is_numeric_dtype(values):
            raise InvalidArgumentError(
                f"Slice {spec!r}: only numeric columns can be binned; {column!r} is {values.dtype}."
            )
        cut = pd.qcut(values, n_bins, duplicates="drop")
        codes = np.asarray(cut.cat.codes, dtype=np.int64)
        labels = _interval_labels(cut.cat.categories)
    else:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        labels = [str(u) for u in uniques]
        if len(labels) > MAX_SLICE_VALUES:
            raise InvalidArgumentError(
                f"Slice column {column!r} has {len(labels)} distinct values (more than {MAX_SLICE_VALUES}). "
                f"Bin it into quantiles instead, for example '{column}:4'."
            )
    if (codes < 0).any():
        codes = np.where(codes < 0, len(labels), codes)
        labels.append(MISSING)
    return column if not bins else spec, codes, labels
