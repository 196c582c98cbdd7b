"""All-number request tables decoded straight into one float matrix (no per-value Python work).

A JSON body whose rows are all numbers (the usual request to a numeric model) is decoded by
orjson into lists of Python floats; turning those into per-column lists, checking every value,
then into the float matrix the model wants costs far more than orjson itself. Here the table goes
from orjson's lists to a numpy matrix in one C call, and the checks no model could pass (NaN,
Infinity, integers beyond 64 bits) are two vectorized tests. Formats recognized:

* column-wise: ``{"inputs": {"f0": [...], "f1": [...]}}`` (ours and MLflow's ``inputs``);
* row-wise: ``{"columns": [...], "data": [[...], ...]}``, MLflow ``dataframe_split``, ``instances``
  / ``inputs`` as lists of rows (column names from the model's signature);
* records: ``{"records": [{...}, ...]}``, MLflow ``dataframe_records`` (every row the same keys in
  the same order).

A :class:`NumericPayload` behaves as the :class:`Payload` the regular decoders would have built:
its ``columns`` are built from the original JSON values (ints stay ints) the first time anything
asks for them, by those same decoders. Anything else (a ``true``/``false``, a null, a string,
a ragged row, a value no model can take) returns None here and takes the regular path, which gives
the exact answers and error messages as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import numpy as np

from modelyard.serving._codec import Payload, _column_dict, _records, _split

__all__ = ["MIN_ROWS", "NumericPayload", "numeric_payload"]

#: Fewer rows than this take the regular path (the lists are as cheap for one row).
MIN_ROWS = 2
_BIG = float(2**63)  # beyond, the regular checks decide (integers beyond 64 bits answer 422)
_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
_NUMBER_TYPES = frozenset({float, int})  # exactly: bool (a subclass of int) is not a number here


class NumericPayload(Payload):
    """Rows as a float matrix (``array``: rows × ``names``); ``columns`` on demand, from the JSON."""

    __slots__ = ("_build", "_cols", "array", "names")

    def __init__(self, names: list[str], array: np.ndarray, build: Callable[[], Payload]) -> None:
        # Payload.__init__ would set ``columns``: here they are built only when asked for
        self.names = names
        self.array = array
        self._build: Callable[[], Payload] | None = build
        self._cols: dict[str, list[Any]] | None = None
        self.n = int(array.shape[0])
        self.matrix = None
        self.source = "json"
        self.options = None
        self.checked = frozenset()

    @property  # a lazy view in place of the slot Payload keeps
    def columns(self) -> dict[str, list[Any]]:
        if self._cols is None:
            build, self._build = self._build, None
            if build is not None:
                self._cols = build().columns
            else:  # pragma: no cover - a selection's columns come from its parent's matrix
                self._cols = dict(zip(self.names, self.array.T.tolist(), strict=True))
        return self._cols

    @columns.setter
    def columns(self, value: dict[str, list[Any]]) -> None:
        self._cols = value
        self._build = None

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.names)

    def checked_numeric(self, names: Sequence[str]) -> NumericPayload | None:
        """This payload reduced to ``names`` (a signature's columns, in its order) when every one
        is present and every value is a finite number a model can take; None otherwise (then the
        regular checks run and name each problem)."""
        a = self.array
        if not (np.isfinite(a).all() and (np.abs(a) < _BIG).all()):
            return None
        if list(names) == self.names:
            return self
        index = {c: j for j, c in enumerate(self.names)}
        try:
            idx = [index[c] for c in names]
        except KeyError:
            return None  # a missing column: the regular check lists them
        cols = None if self._cols is None else {c: self._cols[c] for c in names}
        parent = self

        def build() -> Payload:
            full = parent.columns
            return Payload({c: full[c] for c in names}, parent.n)

        out = NumericPayload(list(names), a[:, idx], build)
        if cols is not None:
            out.columns = cols
        out.options = self.options
        return out


def _matrix(values: Any) -> np.ndarray | None:
    """``values`` (lists from orjson) as a 2-d float matrix, or None unless all are numbers."""
    try:
        arr = np.array(values)
    except (ValueError, TypeError, OverflowError):  # ragged, or not numbers
        return None
    if arr.ndim != 2 or arr.dtype.kind not in "iuf" or 0 in arr.shape:
        return None
    return arr.astype(np.float64, copy=False)


def _names(columns: Any) -> list[str] | None:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        return None
    return columns if len(set(columns)) == len(columns) else None


def _from_rows(columns: Any, data: Any, where: str) -> NumericPayload | None:
    names = _names(columns)
    if names is None or not isinstance(data, list) or len(data) < MIN_ROWS:
        return None
    arr = _matrix(data)
    if arr is None or arr.shape[1] != len(names):
        return None
    return NumericPayload(names, arr, lambda: _split(columns, data, where))


def _from_columns(obj: dict[str, Any], where: str) -> NumericPayload | None:
    names = list(obj)
    values = list(obj.values())
    if not names or not all(type(v) is list for v in values) or len(values[0]) < MIN_ROWS:
        return None
    arr = _matrix(values)
    if arr is None:
        return None
    return NumericPayload(names, arr.T, lambda: _column_dict(obj, where))


def _from_records(rows: Any, where: str) -> NumericPayload | None:
    if not isinstance(rows, list) or len(rows) < MIN_ROWS or set(map(type, rows)) != {dict}:
        return None
    keys = set(map(tuple, rows))
    if len(keys) != 1:
        return None
    names = list(next(iter(keys)))
    if not names:
        return None
    # one flat list of the cells and one C pass over their types: cheaper than numpy's look at
    # 100 nested lists (numbers sent as strings stay out: float64 would parse them)
    cells = list(chain.from_iterable(map(dict.values, rows)))
    if not set(map(type, cells)) <= _NUMBER_TYPES:
        return None
    try:
        arr = np.array(cells, dtype=np.float64)
    except OverflowError:  # an integer beyond a float: the regular checks name it
        return None
    if not (np.abs(arr) < _BIG).all():
        return None  # as _matrix: integers beyond 64 bits (and numbers that large) go the regular way
    return NumericPayload(names, arr.reshape(len(rows), len(names)), lambda: _records(rows, where))


def numeric_payload(
    obj: Any, api: str, names: Sequence[str] | None, body: bytes
) -> tuple[NumericPayload, int | None] | None:
    """``(payload, pinned version)`` for a parsed JSON body ``obj`` of ``api`` ("native" or
    "invocations") that is one all-number table; None for anything else (the regular decoders
    then answer it). ``names``: the model's signature columns, for rows sent as plain lists."""
    if not isinstance(obj, dict) or b"true" in body or b"false" in body:
        return None  # JSON booleans would turn into 1.0/0.0 in a float matrix: the regular path
    if api == "native":
        version = obj.get("version")
        if version is not None and (type(version) is not int):
            return None  # the regular decoder answers the 400
        if "records" in obj:
            p = _from_records(obj["records"], "records")
        elif "data" in obj:
            p = _from_rows(obj.get("columns", list(names or [])), obj["data"], "body")
        elif isinstance(obj.get("inputs"), dict):
            p = _from_columns(obj["inputs"], "inputs")
        else:
            return None
        return (p, version) if p is not None else None
    if api != "invocations":
        return None
    keys = [k for k in _MLFLOW_KEYS if k in obj]
    if len(keys) != 1:
        return None
    key = keys[0]
    val = obj[key]
    if key == "dataframe_split":
        if not isinstance(val, dict):
            return None
        p = _from_rows(val.get("columns", list(names or [])), val.get("data"), key)
    elif key == "dataframe_records" or (isinstance(val, list) and val and isinstance(val[0], dict)):
        p = _from_records(val, key)
    elif isinstance(val, dict):
        p = _from_columns(val, key)
    elif isinstance(val, list) and names and val and isinstance(val[0], list):
        p = _from_rows(list(names), val, key)
    else:
        return None
    return (p, None) if p is not None else None
