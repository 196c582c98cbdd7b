"""Request decoding and response encoding for the three wire formats.

* ours: ``{"records": [{...}]}`` or ``{"columns": [...], "data": [[...]]}`` (``"version"`` pins one)
* MLflow ``/invocations``: ``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``
* V2 / Open Inference Protocol: ``{"inputs": [{"name", "shape", "datatype", "data"}]}``

A request decodes into a :class:`Payload` (column name → list of values); the batcher merges
payloads column-wise and builds one DataFrame per predict call, so no per-request DataFrame
is made on the fast path.
"""

from __future__ import annotations

import json
import math
import re
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
    "decode_mlflow",
    "decode_native",
    "decode_v2",
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

    __slots__ = ("columns", "matrix", "n", "options", "source")

    def __init__(self, columns: dict[str, list[Any]], n: int) -> None:
        self.columns = columns
        self.n = n
        self.matrix: Any = (
            None  # set by the numeric fast path: the rows as typed matrix rows (prediction log)
        )
        self.source = "json"  # or "csv": the 422 for a headerless CSV says so
        self.options: dict[str, Any] | None = None  # {"proba": True} asks for class probabilities

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


_V2_TYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}


def _flat(data: Any) -> list[Any]:
    """Nested lists (row-major tensor data) flattened, without recursion."""
    if not isinstance(data, list):
        return [data]
    while data and isinstance(data[0], list):
        out: list[Any] = []
        for d in data:
            if isinstance(d, list):
                out.extend(d)
            else:
                out.append(d)
        data = out
    rows: list[Any] = data
    return rows


def _short(v: Any) -> str:
    """``repr(v)`` cut to 80 characters, for messages that echo a client's value."""
    flat = (
        isinstance(v, list)
        and len(v) <= 8
        and all(isinstance(x, (int, float, str, bool)) or x is None for x in v)
    )
    text = repr(v) if flat or not isinstance(v, (list, dict)) else f"<{type(v).__name__} of {len(v)}>"
    return text if len(text) <= 80 else text[:77] + "..."


def decode_v2(obj: Any, names: Sequence[str] | None) -> tuple[Payload, Any]:
    """Open Inference Protocol infer request; one tensor per column, or one [n, k] tensor."""
    if not isinstance(obj, dict) or not isinstance(obj.get("inputs"), list) or not obj["inputs"]:
        raise HTTPProblem(
            400, "bad_format", "The body must be {'inputs': [{'name', 'shape', 'datatype', 'data'}]}."
        )
    tensors = obj["inputs"]
    cols: dict[str, list[Any]] = {}
    n = -1
    for t in tensors:
        if not isinstance(t, dict) or not {"name", "shape", "datatype", "data"} <= set(t):
            raise HTTPProblem(
                400, "bad_format", "Every input tensor needs 'name', 'shape', 'datatype' and 'data'."
            )
        if not isinstance(t["name"], str) or not t["name"]:
            raise HTTPProblem(
                400,
                "bad_format",
                f"An input tensor's 'name' must be a non-empty string. Got {_short(t['name'])} instead.",
            )
        if not isinstance(t["datatype"], str) or t["datatype"] not in _V2_TYPES:
            raise HTTPProblem(
                400,
                "bad_format",
                f"Input {t['name'][:80]!r} has unknown datatype {_short(t['datatype'])}; "
                f"use one of {sorted(_V2_TYPES)}.",
            )
        shape = t["shape"]
        if (
            not isinstance(shape, list)
            or not shape
            or len(shape) > 8
            or not all(type(s) is int and 0 <= s < 2**31 for s in shape)
        ):
            raise HTTPProblem(
                400,
                "bad_format",
                f"Input {t['name'][:80]!r} has a bad shape {_short(shape)}; "
                "send a list of at most 8 non-negative integers like [2, 3].",
            )
        flat = _flat(t["data"])
        size = math.prod(shape)
        if len(flat) != size:
            raise HTTPProblem(
                400,
                "bad_format",
                f"Input {t['name'][:80]!r} has {len(flat)} values but shape {shape} needs {size}.",
            )
        rows = shape[0]
        width = size // rows if rows else 0
        if len(tensors) == 1 and width > 1:
            if not names or len(names) != width:
                raise HTTPProblem(
                    422,
                    "needs_columns",
                    f"Input {t['name']!r} has {width} values per row; send one tensor per column "
                    f"(named {list(names or [])}) or a [rows, {len(names or [])}] tensor.",
                )
            for j, c in enumerate(names):
                cols[c] = flat[j::width]
        elif width == 1 or rows == 0:
            cols[t["name"]] = flat
        else:
            raise HTTPProblem(
                400,
                "bad_format",
                f"Input {t['name']!r} must have shape [rows] or [rows, 1] when "
                "several input tensors are sent.",
            )
        if n >= 0 and rows != n:
            raise HTTPProblem(400, "bad_format", "All input tensors must have the same number of rows.")
        n = rows
    if n <= 0:
        raise HTTPProblem(400, "no_rows", "The input tensors hold no rows.")
    v2_id = obj.get("id")
    if v2_id is not None and not isinstance(v2_id, (str, int)):
        raise HTTPProblem(400, "bad_format", f"'id' must be a string. Got {_short(v2_id)} instead.")
    return Payload(cols, n), v2_id


def to_jsonable(out: Any) -> Any:
    """Predictions as JSON values: a list (one per row) or a list of objects for frames."""
    import numpy as np

    if hasattr(out, "to_dict") and hasattr(out, "columns"):
        return out.to_dict(orient="records")
    if isinstance(out, np.ndarray):
        if out.dtype.kind in "fiub":
            return out
        return out.tolist()
    if isinstance(out, (list, tuple)):
        return list(out)
    return out


def v2_outputs(out: Any, name: str = "predict") -> list[dict[str, Any]]:
    """Predictions as V2 output tensors."""
    import numpy as np

    def tensor(name: str, arr: Any) -> dict[str, Any]:
        arr = np.asarray(arr)
        kind = arr.dtype.kind
        dtype = "FP64" if kind == "f" else "INT64" if kind in "iu" else "BOOL" if kind == "b" else "BYTES"
        data = arr.reshape(-1).tolist() if dtype != "BYTES" else [str(v) for v in arr.reshape(-1)]
        return {"name": name, "shape": list(arr.shape), "datatype": dtype, "data": data}

    if hasattr(out, "columns") and hasattr(out, "to_numpy"):
        return [tensor(str(c), out[c].to_numpy()) for c in out.columns]
    return [tensor(name, out)]
