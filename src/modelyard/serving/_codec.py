"""Request decoding and response encoding for the three wire formats.

* ours: ``{"records": [{...}]}`` or ``{"columns": [...], "data": [[...]]}`` (``"version"`` pins one)
* MLflow ``/invocations``: ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``
* V2 / Open Inference Protocol: decoded in :mod:`modelyard.serving._v2_request`

A request decodes into a :class:`Payload` (column name → list of values); the batcher merges
payloads column-wise and builds one DataFrame per predict call, so no per-request DataFrame
is made on the fast path.
"""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Sequence
from typing import Any

try:  # orjson is 5-10x faster; the stdlib is the fallback
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

    def _loads_fast(data: bytes) -> Any:
        return orjson.loads(data)

    _FastError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover
    orjson = None  # type: ignore[assignment]

    def dumps(obj: Any) -> bytes:
        return json.dumps(_nan_to_none(obj), default=_default).encode()

    def _loads_fast(data: bytes) -> Any:
        return json.loads(data)

    _FastError = json.JSONDecodeError

__all__ = [
    "HTTPProblem",
    "Payload",
    "PredictAndProba",
    "decode_mlflow",
    "decode_native",
    "dumps",
    "loads",
    "to_jsonable",
]


class HTTPProblem(Exception):
    """An error answered as JSON ``{"error": message, "code": code, "problems": [...]}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        problems: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        self.headers = headers or {}


def _default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _nan_to_none(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, list):
        return [_nan_to_none(v) for v in o]
    if isinstance(o, dict):
        return {k: _nan_to_none(v) for k, v in o.items()}
    return o


#: Deepest nesting of arrays/objects a body may have (a V2 tensor of rank 32 is far beyond any model).
MAX_DEPTH = 64


def _too_deep() -> HTTPProblem:
    return HTTPProblem(
        400, "too_deep", f"The request body nests arrays/objects deeper than {MAX_DEPTH} levels."
    )


def _check_tree(obj: Any) -> None:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and strings that are not valid Unicode (a
    lone surrogate escape such as ``"\\ud800"``, which the stdlib parser lets through)."""
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, str):
            try:
                o.encode("utf-8")
            except UnicodeEncodeError:
                raise HTTPProblem(
                    422,
                    "invalid_input",
                    "The body holds a string with a lone surrogate escape "
                    "(like \\ud800); strings must be valid Unicode.",
                ) from None
        elif isinstance(o, (list, dict)):
            if d >= MAX_DEPTH:
                raise _too_deep()
            if isinstance(o, dict):
                stack.extend((k, d) for k in o)
                stack.extend((v, d + 1) for v in o.values())
            else:
                stack.extend((v, d + 1) for v in o if isinstance(v, (str, list, dict)))


def _depth_ok(obj: Any) -> bool:
    """True when ``obj`` nests at most :data:`MAX_DEPTH` levels (breadth first, no recursion)."""
    level = [obj]
    for _ in range(MAX_DEPTH):
        nxt: list[Any] = []
        for o in level:
            if isinstance(o, list):
                nxt.extend(v for v in o if isinstance(v, (list, dict)))
            elif isinstance(o, dict):
                nxt.extend(v for v in o.values() if isinstance(v, (list, dict)))
        if not nxt:
            return True
        level = nxt
    return False


def loads(body: bytes) -> Any:
    """Parse a JSON body. ``NaN``/``Infinity`` literals parse (the input checks answer 422 for
    them); nesting deeper than :data:`MAX_DEPTH` is a 400, a lone surrogate a 422."""
    if not body:
        raise HTTPProblem(400, "empty_body", "The request body is empty; send a JSON object.")
    try:
        obj = _loads_fast(body)  # orjson refuses lone surrogates and nesting past 1024 levels
    except _FastError:
        try:
            obj = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPProblem(400, "malformed_json", f"The request body is not valid JSON: {exc}.") from None
        except RecursionError:
            raise _too_deep() from None
        _check_tree(obj)
        return obj
    if isinstance(obj, (list, dict)) and _may_nest_deep(body) and not _depth_ok(obj):
        raise _too_deep()
    return obj


_BRACKETS = bytes(range(256)).translate(None, b"[]{}")  # every byte but the brackets
_PAIR = re.compile(rb"\[\]|\{\}")  # an innermost pair


def _may_nest_deep(body: bytes) -> bool:
    """False when the brackets of ``body`` (counted in C, strings included) cannot nest deeper
    than :data:`MAX_DEPTH`; True means the parsed value must be checked."""
    brackets = body.translate(None, _BRACKETS)  # "[", "]", "{", "}" only
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_DEPTH:
        return False
    if len(brackets) <= 65536:  # peel the innermost pairs level by level (a table: 3-4 passes)
        for _ in range(MAX_DEPTH):
            peeled = _PAIR.sub(b"", brackets)
            if not peeled:
                return False
            if len(peeled) == len(brackets):
                return True  # unbalanced (brackets inside strings): check the parsed value
            brackets = peeled
        return True
    import numpy as np

    marks = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((marks == ord("[")) | (marks == ord("{")), 1, -1), dtype=np.int64)
    return bool(depth.max() > MAX_DEPTH)


class Payload:
    """Rows of one request, column-wise."""

    __slots__ = ("checked", "columns", "matrix", "n", "options", "source")

    def __init__(self, columns: dict[str, list[Any]], n: int) -> None:
        self.columns = columns
        self.n = n
        self.matrix: Any = (
            None  # set by the numeric fast path: the rows as typed matrix rows (prediction log)
        )
        self.source = "json"  # or "csv": the 422 for a headerless CSV says so
        self.options: dict[str, Any] | None = None  # {"proba": True} asks for class probabilities
        # columns whose values are already known to be finite numbers, bools or 64-bit integers
        # (decoded from binary tensors and checked in numpy): the input checks skip them
        self.checked: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(self.columns)

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.columns)


def _records(rows: Any, where: str) -> Payload:
    if not isinstance(rows, list):
        raise HTTPProblem(400, "bad_format", f"'{where}' must be a list of objects, one per row.")
    if not rows:
        raise HTTPProblem(400, "no_rows", f"'{where}' is empty; send at least one row.")
    first = rows[0]
    if not isinstance(first, dict):
        raise HTTPProblem(
            400, "bad_format", f"'{where}' must be a list of objects (column → value), one per row."
        )
    if len(rows) == 1:
        return Payload({c: [v] for c, v in first.items()}, 1)
    names = tuple(first)
    same = True
    for r in rows:
        if not isinstance(r, dict):
            raise HTTPProblem(
                400, "bad_format", f"Every row of '{where}' must be an object (column → value)."
            )
        if same and tuple(r) != names:
            same = False
    if same:  # every row has the same keys in the same order: transpose in C
        return Payload(
            dict(zip(names, map(list, zip(*[r.values() for r in rows], strict=True)), strict=True)), len(rows)
        )
    seen = dict.fromkeys(names)
    for r in rows:
        seen.update(dict.fromkeys(r))
    cols = {c: [r.get(c) for r in rows] for c in seen}
    return Payload(cols, len(rows))


def _split(columns: Any, data: Any, where: str) -> Payload:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise HTTPProblem(400, "bad_format", f"'{where}.columns' must be a list of column names.")
    if not isinstance(data, list) or not data:
        raise HTTPProblem(400, "no_rows", f"'{where}.data' must be a non-empty list of rows.")
    k = len(columns)
    for i, row in enumerate(data):
        if not isinstance(row, list) or len(row) != k:
            raise HTTPProblem(
                400, "bad_format", f"Row {i} of '{where}.data' must be a list of {k} values (one per column)."
            )
    cols = {c: [row[j] for row in data] for j, c in enumerate(columns)}
    return Payload(cols, len(data))


def _column_dict(obj: dict[str, Any], where: str) -> Payload:
    n = -1
    cols: dict[str, list[Any]] = {}
    for c, v in obj.items():
        vals = v if isinstance(v, list) else [v]
        if n >= 0 and len(vals) != n:
            raise HTTPProblem(
                400, "bad_format", f"The columns of '{where}' have different lengths ({n} and {len(vals)})."
            )
        n = len(vals)
        cols[c] = vals
    if n <= 0:
        raise HTTPProblem(400, "no_rows", f"'{where}' holds no rows.")
    return Payload(cols, n)


def _lists(rows: list[Any], names: Sequence[str] | None, where: str) -> Payload:
    if not names:
        raise HTTPProblem(
            422,
            "needs_columns",
            f"'{where}' rows are plain lists but the model has no signature naming its columns; "
            "send objects (column → value) instead.",
        )
    return _split(list(names), [r if isinstance(r, list) else [r] for r in rows], where)


def decode_native(obj: Any, names: Sequence[str] | None) -> tuple[Payload, int | None]:
    """Our JSON API: ``records`` or ``columns``+``data``; optional ``version``."""
    if not isinstance(obj, dict):
        raise HTTPProblem(400, "bad_format", 'The body must be a JSON object like {"records": [{"x": 1}]}.')
    version = obj.get("version")
    if version is not None and not (isinstance(version, int) and not isinstance(version, bool)):
        raise HTTPProblem(400, "bad_format", f"'version' must be an integer. Got {_short(version)} instead.")
    if "records" in obj:
        return _records(obj["records"], "records"), version
    if "data" in obj:
        return _split(obj.get("columns", list(names or [])), obj["data"], "body"), version
    if "inputs" in obj and isinstance(obj["inputs"], dict):
        return _column_dict(obj["inputs"], "inputs"), version
    raise HTTPProblem(
        400,
        "bad_format",
        'The body must hold "records" (a list of objects) or "columns" and "data" (a list of rows). '
        f"Got keys {sorted(obj)} instead.",
    )


def decode_mlflow(obj: Any, names: Sequence[str] | None) -> Payload:
    """MLflow scoring-server formats."""
    if not isinstance(obj, dict):
        raise HTTPProblem(
            400,
            "bad_format",
            "The body must be a JSON object with one of "
            "'dataframe_split', 'dataframe_records', 'instances' or 'inputs'.",
        )
    keys = [k for k in ("dataframe_split", "dataframe_records", "instances", "inputs") if k in obj]
    if len(keys) != 1:
        raise HTTPProblem(
            400,
            "bad_format",
            "The body must have exactly one of 'dataframe_split', 'dataframe_records', "
            "'instances', 'inputs'. "
            f"Got keys {sorted(obj)} instead.",
        )
    key = keys[0]
    val = obj[key]
    if key == "dataframe_split":
        if not isinstance(val, dict):
            raise HTTPProblem(
                400, "bad_format", "'dataframe_split' must be an object with 'columns' and 'data'."
            )
        return _split(val.get("columns", list(names or [])), val.get("data"), key)
    if key == "dataframe_records":
        return _records(val, key)
    if isinstance(val, dict):
        return _column_dict(val, key)
    if isinstance(val, list) and val and isinstance(val[0], dict):
        return _records(val, key)
    if isinstance(val, list) and val:
        return _lists(val, names, key)
    raise HTTPProblem(400, "no_rows", f"'{key}' holds no rows.")


def _short(v: Any) -> str:
    """``repr(v)`` cut to 80 characters, for messages that echo a client's value."""
    flat = (
        isinstance(v, list)
        and len(v) <= 8
        and all(isinstance(x, (int, float, str, bool)) or x is None for x in v)
    )
    text = repr(v) if flat or not isinstance(v, (list, dict)) else f"<{type(v).__name__} of {len(v)}>"
    return text if len(text) <= 80 else text[:77] + "..."


class PredictAndProba:
    """A model's predictions and class probabilities for the same rows (a V2 request asking for
    both outputs). Sliced by rows like an array; as an array it is the predictions."""

    __slots__ = ("predict", "proba")

    def __init__(self, predict: Any, proba: Any) -> None:
        self.predict = predict
        self.proba = proba

    def __len__(self) -> int:
        return len(self.predict)

    def __getitem__(self, rows: slice) -> PredictAndProba:
        return PredictAndProba(self.predict[rows], self.proba[rows])

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy as np

        return np.asarray(self.predict, dtype=dtype)


def to_jsonable(out: Any) -> Any:
    """Predictions as JSON values: a list (one per row) or a list of objects for frames."""
    if hasattr(out, "to_dict") and hasattr(out, "columns"):
        return out.to_dict(orient="records")
    np = sys.modules.get("numpy")  # an array exists only once numpy is imported (no import per answer)
    if np is not None and isinstance(out, np.ndarray):
        if out.dtype.kind in "fiub":
            return out
        return out.tolist()
    if isinstance(out, (list, tuple)):
        return list(out)
    return out
