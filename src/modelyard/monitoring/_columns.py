"""Reading the columns of a drift comparison: a frame from pandas, polars, pyarrow or a mapping,
each column's kind (numeric or categorical), its finite values or category counts with the nulls
apart, and ``DriftReference``, a reference frame whose columns are read once for many windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from modelyard.errors import invalid_param

__all__ = ["DriftReference"]


def _std(x: np.ndarray) -> float:
    # np.std, not a BLAS dot: OpenBLAS threads spin badly on a busy machine
    return float(np.std(x))


def _caller() -> str:
    return "yard.drift"


def _as_frame(obj: Any, name: str) -> Any:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj
    if hasattr(obj, "to_pandas"):  # polars / pyarrow
        return obj.to_pandas()
    if isinstance(obj, Mapping):
        return pd.DataFrame(dict(obj))
    raise invalid_param(name, _caller(), "a pandas DataFrame (or a polars/pyarrow table)", type(obj).__name__)


def _kind(series: Any) -> str:
    """``numeric`` or ``categorical``: which family of drift tests a pandas column gets.

    Not the data package's ``column_kind`` (Arrow types, four kinds picking profile sketches) nor
    the signature's dtype (exact widths, a contract): here only the test matters, so a bool column
    is categorical, dates and durations are numbers (their int64 ticks) and an object column of
    plain numbers is numeric.
    """
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return "numeric"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "numeric"
    if series.dtype == object:
        # an object column of plain numbers (e.g. Decimal, mixed int/float) is numeric
        sample = series.dropna().head(200)
        if len(sample) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sample):
            return "numeric"
    return "categorical"


def _numeric_values(series: Any) -> tuple[np.ndarray, int, int]:
    """Finite float64 values, the count of nulls and of ±inf."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype) or pd.api.types.is_timedelta64_dtype(series.dtype):
        nulls = int(series.isna().sum())
        vals = series.dropna().to_numpy().view("int64").astype(np.float64)
        return vals, nulls, 0
    if series.dtype == object:
        series = pd.to_numeric(series, errors="coerce")
    arr = series.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(arr)
    n_finite = int(finite.sum())
    if n_finite == arr.size:
        return arr, 0, 0
    nan = int(np.isnan(arr).sum())
    return arr[finite], nan, arr.size - n_finite - nan


def _category_counts(series: Any) -> tuple[dict[str, int], int]:
    import pandas as pd

    if isinstance(series.dtype, pd.StringDtype):  # Arrow-backed strings: count in Arrow (~7x faster)
        try:
            import pyarrow as pa
            import pyarrow.compute as pc

            arr = pa.array(series)
            vc = pc.value_counts(arr)
            keys, counts = vc.field("values").to_pylist(), vc.field("counts").to_pylist()
            return {str(k): int(v) for k, v in zip(keys, counts, strict=True) if k is not None}, int(
                arr.null_count
            )
        except (pa.ArrowException, TypeError, ValueError):
            pass
    counts = series.value_counts(dropna=True, sort=False)
    nulls = int(series.isna().sum())
    out: dict[str, int] = {}
    for k, v in counts.items():
        if v > 0:  # a pandas Categorical lists unused categories with 0
            key = str(k)
            out[key] = out.get(key, 0) + int(v)
    return out, nulls


class DriftReference:
    """A reference frame prepared once for many drift comparisons (``monitor run`` windows).

    Sorted numeric columns and category counts are computed on first use and kept, so each
    later ``yard.drift(reference=prepared, current=window)`` only sorts the current window.
    """

    def __init__(self, frame: Any) -> None:
        self.frame = _as_frame(frame, "reference")
        self._numeric: dict[str, tuple[np.ndarray, int, int, float]] = {}
        self._categories: dict[str, tuple[dict[str, int], int]] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        return f"DriftReference({len(self.frame):,} rows x {len(self.frame.columns)} columns)"

    @property
    def prepared(self) -> dict[str, str]:
        """The columns read so far and kept for the next window: name → ``numeric`` or ``categorical``."""
        kept = {name: "numeric" for name in self._numeric}
        kept.update({name: "categorical" for name in self._categories})
        return kept

    def numeric(self, name: str) -> tuple[np.ndarray, int, int, float]:
        """(sorted finite values, nulls, infs, standard deviation) of a column."""
        got = self._numeric.get(name)
        if got is None:
            vals, nulls, infs = _numeric_values(self.frame[name])
            vals = np.sort(vals)
            got = (vals, nulls, infs, _std(vals) if vals.size else 0.0)
            self._numeric[name] = got
        return got

    def categories(self, name: str) -> tuple[dict[str, int], int]:
        got = self._categories.get(name)
        if got is None:
            got = _category_counts(self.frame[name])
            self._categories[name] = got
        return got
