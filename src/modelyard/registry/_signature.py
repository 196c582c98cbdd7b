"""Model signatures: the input columns (name, dtype, optional range) and outputs of a model.

A signature is inferred from an input example when a model is logged and enforced at predict:
every problem (missing column, wrong type, value out of range, nulls where none are allowed) is
collected and reported at once in one :class:`SignatureError`. Safe casts are applied (an int
column where floats are expected, a float column holding whole numbers where ints are expected);
extra columns are dropped with a note in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidArgumentError, SignatureError

__all__ = ["NUMERIC_DTYPES", "ColSpec", "MatrixCheck", "Signature", "SignatureError", "to_frame"]

log = logging.getLogger("modelyard.registry")

#: dtype names a signature uses, each with the pandas/numpy kinds it accepts as-is.
DTYPES = ("bool", "int64", "int32", "float64", "float32", "string", "datetime")
#: the dtypes whose values a float matrix holds exactly (see :class:`MatrixCheck`).
NUMERIC_DTYPES = frozenset({"float64", "float32", "int64", "int32", "bool"})


@dataclass(frozen=True)
class ColSpec:
    """One column: ``name``, ``dtype`` (one of :data:`DTYPES`), optional ``min``/``max``, ``nullable``."""

    name: str
    dtype: str
    min: float | None = None
    max: float | None = None
    nullable: bool = False

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.min is not None:
            d["min"] = self.min
        if self.max is not None:
            d["max"] = self.max
        if self.nullable:
            d["nullable"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColSpec:
        return cls(
            name=str(d["name"]),
            dtype=str(d["dtype"]),
            min=d.get("min"),
            max=d.get("max"),
            nullable=bool(d.get("nullable", False)),
        )


def _dtype_name(series: Any) -> str:
    """The signature dtype of a pandas column (one of :data:`DTYPES`).

    Not the data package's ``column_kind`` (Arrow types, for profiles) nor monitoring's ``_kind``
    (numeric or categorical, for drift tests): a signature is a contract enforced at predict, so
    it keeps the width (``int32`` vs ``int64``) and refuses a dtype it cannot describe.
    """
    import pandas as pd

    dt = series.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "bool"
    if pd.api.types.is_integer_dtype(dt):
        return "int32" if dt.itemsize <= 4 else "int64"
    if pd.api.types.is_float_dtype(dt):
        return "float32" if dt.itemsize <= 4 else "float64"
    if pd.api.types.is_datetime64_any_dtype(dt):
        return "datetime"
    if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dt) or dt.kind == "O":
        return "string"
    raise InvalidArgumentError(
        f"Column {series.name!r} has dtype {dt} which a signature cannot describe; "
        f"convert it to one of {list(DTYPES)} or pass signature= explicitly."
    )


def to_frame(data: Any, names: list[str] | None = None) -> Any:
    """Turn a DataFrame, list of records, dict of columns or 2-D array into a DataFrame."""
    import numpy as np
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame().T if names and data.index.tolist() == names else data.to_frame()
    if isinstance(data, dict):
        if all(np.ndim(v) == 0 for v in data.values()):
            return pd.DataFrame([data])
        return pd.DataFrame(data)
    if isinstance(data, (list, tuple)) and data and all(isinstance(r, dict) for r in data):
        return pd.DataFrame(list(data))
    try:
        arr = np.asarray(data)
    except Exception as exc:
        raise InvalidArgumentError(
            f"Cannot read model input of type {type(data).__name__}; pass a pandas DataFrame, "
            "a list of records (dicts), a dict of columns or a 2-D numpy array."
        ) from exc
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if names and len(names) == arr.shape[0] else arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise InvalidArgumentError(
            f"A model input array must be 2-D (rows × columns). Got an array of shape {arr.shape}."
        )
    cols = names if names and len(names) == arr.shape[1] else [str(i) for i in range(arr.shape[1])]
    return pd.DataFrame(arr, columns=cols)


@dataclass(frozen=True)
class Signature:
    """Input columns and outputs of a model. ``kind`` is ``"frame"`` (named columns) or ``"array"``."""

    inputs: list[ColSpec]
    outputs: list[ColSpec] = field(default_factory=list)
    kind: str = "frame"

    # -- building ----------------------------------------------------------------------------
    @classmethod
    def infer(cls, example: Any, output: Any = None, *, ranges: bool = False) -> Signature:
        """Infer a signature from an input example (and optionally an output example).

        ``ranges=True`` records each numeric column's observed min and max as its allowed range.
        """
        import numpy as np
        import pandas as pd

        kind = "frame" if isinstance(example, (pd.DataFrame, dict, list, pd.Series)) else "array"
        df = to_frame(example)
        inputs = []
        for name in df.columns:
            s = df[name]
            dtype = _dtype_name(s)
            lo = hi = None
            if ranges and dtype.startswith(("int", "float")) and s.notna().any():
                lo, hi = float(s.min()), float(s.max())
            inputs.append(ColSpec(str(name), dtype, lo, hi, bool(s.isna().any())))
        outputs: list[ColSpec] = []
        if output is not None:
            if isinstance(output, pd.DataFrame):
                out = output
            else:
                arr = np.asarray(output)
                out = pd.DataFrame(arr.reshape(len(arr), -1) if arr.ndim != 1 else {"prediction": arr})
                if arr.ndim != 1:
                    out.columns = [str(c) for c in out.columns]
            outputs = [ColSpec(str(c), _dtype_name(out[c])) for c in out.columns]
        return cls(inputs, outputs, kind)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [c.to_dict() for c in self.outputs],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        return cls(
            [ColSpec.from_dict(c) for c in d.get("inputs", [])],
            [ColSpec.from_dict(c) for c in d.get("outputs", [])],
            str(d.get("kind", "frame")),
        )

    @property
    def input_names(self) -> list[str]:
        return [c.name for c in self.inputs]

    def matrix_check(self, order: list[str]) -> MatrixCheck | None:
        """The value rules of :meth:`validate` for a float matrix whose columns are ``order``.

        None when the rules cannot be checked on floats: an ``"array"`` signature, a column that is
        not numeric or bool, or ``order`` naming other columns than the inputs.
        """
        specs = {c.name: c for c in self.inputs}
        if self.kind != "frame" or not specs or len(order) != len(specs) or set(order) != set(specs):
            return None
        if any(c.dtype not in NUMERIC_DTYPES for c in self.inputs):
            return None
        return MatrixCheck([specs[name] for name in order])

    # -- enforcing ----------------------------------------------------------------------------
    def validate(self, data: Any, *, check_ranges: bool = True, model: str | None = None) -> Any:
        """Return ``data`` as a DataFrame with the signature's columns, order and dtypes.

        Raises :class:`SignatureError` listing every problem at once.
        """
        import numpy as np
        import pandas as pd

        df = to_frame(data, self.input_names)
        problems: list[str] = []
        names = self.input_names
        present = {str(c): c for c in df.columns}
        missing = [n for n in names if n not in present]
        for n in missing:
            problems.append(f"missing column {n!r}")
        extra = [c for c in present if c not in set(names)]
        if extra:
            log.info("modelyard: dropping input columns not in the signature: %s", extra)
        out: dict[str, Any] = {}
        for spec in self.inputs:
            if spec.name not in present:
                continue
            s = df[present[spec.name]]
            cast, problem = _cast(s, spec)
            if problem:
                problems.append(problem)
                continue
            if not spec.nullable and cast.isna().any():
                problems.append(
                    f"column {spec.name!r} has {int(cast.isna().sum())} missing value(s) but the "
                    f"signature allows none"
                )
            if check_ranges and (spec.min is not None or spec.max is not None) and spec.dtype != "string":
                vals = cast.to_numpy(dtype=float, na_value=np.nan)
                if spec.min is not None and (vals < spec.min).any():
                    problems.append(
                        f"column {spec.name!r} has {int((vals < spec.min).sum())} value(s) below the minimum "
                        f"{spec.min:g} (lowest {np.nanmin(vals):g})"
                    )
                if spec.max is not None and (vals > spec.max).any():
                    problems.append(
                        f"column {spec.name!r} has {int((vals > spec.max).sum())} value(s) above the maximum "
                        f"{spec.max:g} (highest {np.nanmax(vals):g})"
                    )
            out[spec.name] = cast
        if problems:
            raise SignatureError(problems, model=model)
        return pd.DataFrame(out, index=df.index)


class MatrixCheck:
    """A numeric signature's rules as one vectorized accept-or-defer test on a float matrix.

    Built by :meth:`Signature.matrix_check`. :meth:`accepts` says whether every row of a
    (rows × columns) float matrix passes what :meth:`Signature.validate` checks on the same values:
    no missing value (NaN) where the column is not nullable, values within min/max, whole numbers
    in int columns, 0/1 in bool columns. It gives no reasons: a caller (the server's numeric fast
    path) sends a matrix it refuses through ``validate``, which names every problem. Whether the
    request held numbers at all (not strings) is the caller's to check while it builds the matrix.
    """

    def __init__(self, specs: list[ColSpec]) -> None:
        import numpy as np

        self.columns = len(specs)
        self.dtypes = [c.dtype for c in specs]
        self.nullable = np.array([c.nullable for c in specs], dtype=bool)
        self.any_non_nullable = not self.nullable.all()
        self.lo = np.array([-np.inf if c.min is None else c.min for c in specs], dtype=float)
        self.hi = np.array([np.inf if c.max is None else c.max for c in specs], dtype=float)
        self.check_range = bool(np.isfinite(self.lo).any() or np.isfinite(self.hi).any())
        self.whole = np.array([c.dtype.startswith("int") for c in specs], dtype=bool)
        self.any_whole = bool(self.whole.any())
        self.bools = np.array([c.dtype == "bool" for c in specs], dtype=bool)
        self.any_bools = bool(self.bools.any())

    def accepts(self, x: Any) -> bool:
        """True when every row of the float matrix ``x`` passes the signature's value rules."""
        import numpy as np

        if x.ndim != 2 or x.shape[1] != self.columns:
            return False
        if self.any_non_nullable and np.isnan(x[:, ~self.nullable]).any():
            return False
        if self.check_range:
            with np.errstate(invalid="ignore"):
                if ((x < self.lo) | (x > self.hi)).any():
                    return False
        if self.any_whole:
            sub = np.nan_to_num(x[:, self.whole])
            if (sub != np.round(sub)).any():
                return False
        if self.any_bools:
            sub = x[:, self.bools]
            if not np.isin(sub[~np.isnan(sub)], (0.0, 1.0)).all():
                return False
        return True


#: The dtype a column of nulls only is cast to, per signature dtype (nullable, so the nulls stay nulls).
_NULL_DTYPES = {
    "float64": "float64",
    "float32": "float32",
    "int64": "Int64",
    "int32": "Int32",
    "bool": "boolean",
    "datetime": "datetime64[ns]",
}


def _cast(s: Any, spec: ColSpec) -> tuple[Any, str | None]:
    """Cast a column to the spec's dtype when safe; else return a problem."""
    import numpy as np
    import pandas as pd

    try:
        got = _dtype_name(s)
    except InvalidArgumentError:
        got = str(s.dtype)
    want = spec.dtype
    wrong = f"column {spec.name!r} should be {want} but is {got}"
    if got == want:
        return s, None
    if len(s) and got == "string" and s.isna().all() and want in _NULL_DTYPES:
        # only nulls (JSON null, empty CSV cells) carry no type: cast them, so the null check
        # reports them as missing values rather than as "should be float64 but is string"
        return s.astype(_NULL_DTYPES[want]), None
    if want.startswith("float"):
        if got in ("int64", "int32", "bool", "float64", "float32"):
            return s.astype(want), None
        if got == "string":
            return s, wrong
    if want.startswith("int"):
        if got in ("int64", "int32", "bool"):
            return s.astype(want), None
        if got.startswith("float"):
            vals = s.to_numpy(dtype=float)
            finite = vals[~np.isnan(vals)]
            if np.all(finite == np.round(finite)):
                if np.isnan(vals).any():
                    return s.astype("Int64"), None
                return s.astype(want), None
            return (
                s,
                f"{wrong} with fractional values (e.g. {float(finite[finite != np.round(finite)][0]):g})",
            )
    if want == "bool":
        if got.startswith("int"):
            if s.isin([0, 1]).all():
                return s.astype(bool), None
        return s, wrong
    if want == "string":
        if got == "string":
            return s, None
        return s, wrong
    if want == "datetime":
        if got == "string":
            try:
                return pd.to_datetime(s), None
            except (ValueError, TypeError):
                return s, f"{wrong} that does not parse as dates"
        return s, wrong
    return s, wrong
