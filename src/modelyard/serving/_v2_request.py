"""Decoding and checking an Open Inference Protocol (V2) infer request.

The body is JSON, or (binary tensor data extension) a JSON header followed by raw tensor bytes
(:mod:`modelyard.serving._v2_binary`). Checks follow the protocol: every tensor has a name, a
known ``datatype`` that its data really holds, a ``shape`` of non-negative integers whose
product is the number of elements; ``id`` is a string; requested ``outputs`` exist. A problem
of the request's form answers 400; a request that is well formed but does not fit the model's
columns answers 422 (missing columns, values no model can take) later, in the input checks.

The tensors become one :class:`Payload` column each (a tensor of shape ``[rows]`` or
``[rows, 1]`` named after a signature column), or all the columns at once (one tensor of shape
``[rows, k]`` for a model with ``k`` columns, in the signature's order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.errors import did_you_mean
from modelyard.serving._codec import HTTPProblem, Payload, _short, loads
from modelyard.serving._columnar import MIN_ROWS, NumericPayload
from modelyard.serving._v2_binary import FIXED_SIZES, HEADER, decode_tensor, header_length

__all__ = ["OUTPUTS", "V2_TYPES", "V2Request", "decode_v2"]

#: The datatypes of the protocol.
V2_TYPES = frozenset({*FIXED_SIZES, "BYTES"})
#: The named outputs a model can have: its predictions, and its class probabilities when it has them.
OUTPUTS = ("predict", "probabilities")
_MAX_RANK = 8
_INT_RANGES = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
_JSON_KINDS = {"BOOL": "true/false", "BYTES": "strings", "FP": "numbers", "INT": "integers"}


@dataclass
class V2Request:
    """What a V2 request asks of the answer besides the predictions."""

    id: str | None
    #: the outputs asked for, in order, with whether each is wanted as binary data
    outputs: list[tuple[str, bool]]


def _bad(message: str, code: str = "bad_format", problems: list[str] | None = None) -> HTTPProblem:
    return HTTPProblem(400, code, message, problems=problems)


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


def _kind_of(v: Any) -> str:
    if isinstance(v, bool):
        return "true/false"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a number with a fraction" if v == v and v not in (math.inf, -math.inf) else "a float"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return f"a {type(v).__name__}"


def _check_json_data(name: str, datatype: str, flat: list[Any]) -> None:
    """400 when the JSON elements of a tensor are not of its ``datatype`` (null is a missing value)."""
    types = set(map(type, flat))
    types.discard(type(None))
    if datatype == "BOOL":
        allowed: tuple[type, ...] = (bool,)
        family = "BOOL"
    elif datatype == "BYTES":
        allowed, family = (str,), "BYTES"
    elif datatype.startswith("FP"):
        allowed, family = (int, float), "FP"
    else:
        allowed, family = (int,), "INT"
    ok = types <= set(allowed) and not (family in ("FP", "INT") and bool in types)
    if not ok:
        for i, v in enumerate(flat):
            if v is None:
                continue
            if type(v) not in allowed or (family in ("FP", "INT") and isinstance(v, bool)):
                raise _bad(
                    f"Input {name!r} is {datatype} but element {i} is {_kind_of(v)} ({_short(v)}); "
                    f"{datatype} data are {_JSON_KINDS[family]}."
                )
    if family == "INT" and flat:
        lo, hi = _INT_RANGES[datatype]
        ints = [v for v in flat if v is not None]
        if ints and (min(ints) < lo or max(ints) > hi):
            i, v = next((i, v) for i, v in enumerate(flat) if v is not None and not lo <= v <= hi)
            raise _bad(
                f"Input {name!r} is {datatype} but element {i} ({str(v)[:24]}) is outside [{lo}, {hi}]."
            )


def _params(obj: Mapping[str, Any], where: str) -> dict[str, Any]:
    params = obj.get("parameters")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _bad(f"'parameters' of {where} must be an object. Got {_short(params)} instead.")
    return params


def _flag(params: dict[str, Any], key: str, where: str) -> bool:
    v = params.get(key, False)
    if not isinstance(v, bool):
        raise _bad(f"Parameter {key!r} of {where} must be true or false. Got {_short(v)} instead.")
    return v


def _outputs(obj: dict[str, Any], available: Sequence[str]) -> list[tuple[str, bool]]:
    binary_all = _flag(_params(obj, "the request"), "binary_data_output", "the request")
    wanted = obj.get("outputs")
    if wanted is None:
        return [("predict", binary_all)]
    quoted = [repr(a) for a in available]
    listed = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    if not isinstance(wanted, list) or not wanted:
        raise _bad(
            f"'outputs' must be a non-empty list of {{'name': ...}} (leave it out for 'predict'); "
            f"the outputs are {listed}."
        )
    out: list[tuple[str, bool]] = []
    for o in wanted:
        if not isinstance(o, dict) or not isinstance(o.get("name"), str):
            raise _bad(f"'outputs' must be a list of {{'name': ...}}; the outputs are {listed}.")
        name = o["name"]
        where = f"output {name[:80]!r}"
        params = _params(o, where)
        if "classification" in params:
            raise _bad(
                f"Output {name[:80]!r} asks for 'classification', an extension this server does not "
                f"have; ask for 'probabilities' (with the classes in its parameters) instead."
            )
        binary = _flag(params, "binary_data", where) if "binary_data" in params else binary_all
        out.append((name, binary))
    names = [n for n, _ in out]
    unknown = [n for n in dict.fromkeys(names) if n not in available]
    if unknown:
        head = (
            f"Unknown output {unknown[0][:80]!r}"
            if len(unknown) == 1
            else "Unknown outputs " + ", ".join(repr(n[:80]) for n in unknown[:10])
        )
        raise _bad(
            f"{head}; the outputs are {listed}." + did_you_mean(unknown[0], list(available)),
            "unknown_output",
        )
    if len(set(names)) != len(names):
        raise _bad(f"'outputs' names an output twice: {names}.")
    return out


def _shape(t: dict[str, Any], name: str) -> list[int]:
    shape = t["shape"]
    if (
        not isinstance(shape, list)
        or not shape
        or len(shape) > _MAX_RANK
        or not all(type(s) is int and 0 <= s < 2**31 for s in shape)
    ):
        raise _bad(
            f"Input {name!r} has a bad shape {_short(shape)}; send a list of 1 to {_MAX_RANK} "
            "non-negative integers like [2, 3]."
        )
    return shape


def _tensor_values(
    t: dict[str, Any], name: str, datatype: str, shape: list[int], tail: memoryview | None, pos: int
) -> tuple[Any, int]:
    """The flat elements of tensor ``t`` (a list, or a numpy array for binary data) and the
    position in ``tail`` after its binary data."""
    params = _params(t, f"input {name!r}")
    size = params.get("binary_data_size")
    if size is None:
        if "data" not in t:
            raise _bad(
                f"Input {name!r} has neither 'data' nor parameters.binary_data_size; "
                "send its elements one way."
            )
        flat = _flat(t["data"])
        count = math.prod(shape)
        if len(flat) != count:
            raise _bad(f"Input {name!r} has {len(flat)} values but shape {shape} needs {count}.")
        _check_json_data(name, datatype, flat)
        return flat, pos
    if "data" in t:
        raise _bad(f"Input {name!r} has both 'data' and parameters.binary_data_size; send one.")
    if type(size) is not int or size < 0:
        raise _bad(f"Input {name!r} has binary_data_size {_short(size)}; it must be a non-negative integer.")
    if tail is None:
        raise _bad(
            f"Input {name!r} has binary_data_size but the request has no Inference-Header-Content-Length "
            "header; send it with the length of the JSON part of the body.",
            "bad_binary_data",
        )
    if size > len(tail) - pos:
        raise _bad(
            f"Input {name!r} has binary_data_size {size} but only {len(tail) - pos} bytes of binary "
            "data remain after the JSON header and the inputs before it.",
            "bad_binary_data",
        )
    arr = decode_tensor(tail[pos : pos + size], datatype, shape, name)
    if arr.dtype.kind == "f" and arr.size and (arr != arr).any():  # NaN: the binary missing value
        values = arr.astype(object)
        values[arr != arr] = None
        return values, pos + size
    return arr, pos + size


def _numbers_ok(arr: Any) -> bool:
    """Whether a decoded binary tensor holds only values any model can take: bools, integers
    (64 bits at most by their type) or finite floats; the input checks need not look again."""
    import numpy as np

    kind = arr.dtype.kind
    return kind in "biu" or (kind == "f" and bool(np.isfinite(arr).all()))


def _columns(flat: Any, names: list[str], rows: int) -> Payload:
    """The elements of one ``[rows, len(names)]`` tensor (row-major) as one column per name;
    binary numbers numpy checked are marked ``checked``."""
    width = len(names)
    if isinstance(flat, list):
        out = Payload({c: flat[j::width] if width > 1 else flat for j, c in enumerate(names)}, rows)
    else:  # binary: split the columns in C
        out = Payload(dict(zip(names, flat.reshape(rows, width).T.tolist(), strict=True)), rows)
        if _numbers_ok(flat):
            out.checked = frozenset(names)
    return out


def _table(flat: Any, datatype: str, names: list[str], rows: int) -> NumericPayload | None:
    """One ``[rows, len(names)]`` tensor of numbers as a float matrix (no per-value Python work),
    or None (a BOOL or BYTES tensor, a null or a binary NaN, one row): the columns then.

    The JSON elements were checked against ``datatype`` already (:func:`_check_json_data`), so
    the list holds ints and floats only and converts exactly as the columns would; the values no
    model can take leave the matrix in the input checks (:meth:`NumericPayload.checked_numeric`)."""
    import numpy as np

    if rows < MIN_ROWS or datatype in ("BOOL", "BYTES"):
        return None
    if isinstance(flat, list):
        try:  # a null becomes NaN, which leaves the matrix in the input checks
            arr = np.array(flat, dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            return None
    elif flat.dtype.kind in "fiu":
        arr = flat.astype(np.float64, copy=False)
    else:  # a binary float tensor with NaN came as objects (None for each missing value)
        return None
    out = NumericPayload(list(names), arr.reshape(rows, len(names)), lambda: _columns(flat, names, rows))
    if not isinstance(flat, list) and _numbers_ok(flat):
        out.checked = frozenset(names)
    return out


def decode_v2(
    body: bytes,
    headers: Mapping[str, str],
    names: Sequence[str] | None,
    available: Sequence[str] = OUTPUTS,
) -> tuple[Payload, V2Request]:
    """The payload and the asks of a V2 infer request body (JSON, or JSON header + binary tensors
    when ``Inference-Header-Content-Length`` is set). ``names``: the model's columns in order;
    ``available``: the outputs that may be asked for."""
    tail: memoryview | None = None
    raw_header = headers.get(HEADER)
    if raw_header is not None:
        n = header_length(raw_header, len(body))
        tail = memoryview(body)[n:]
        body = body[:n]
    obj = loads(body)
    if not isinstance(obj, dict) or not isinstance(obj.get("inputs"), list) or not obj["inputs"]:
        raise _bad("The body must be {'inputs': [{'name', 'shape', 'datatype', 'data'}]}.")
    v2_id = obj.get("id")
    if v2_id is not None and not isinstance(v2_id, str):
        raise _bad(f"'id' must be a string. Got {_short(v2_id)} instead.")
    outputs = _outputs(obj, available)
    tensors = obj["inputs"]
    single = len(tensors) == 1
    known = list(names or [])
    cols: dict[str, list[Any]] = {}
    checked: set[str] = set()  # columns from binary tensors whose values numpy already checked
    seen: set[str] = set()
    n_rows = -1
    pos = 0
    fast: NumericPayload | None = None  # a single [rows, k] tensor of numbers (_table)
    for t in tensors:
        if not isinstance(t, dict) or not {"name", "shape", "datatype"} <= set(t):
            raise _bad("Every input tensor needs 'name', 'shape', 'datatype' and 'data'.")
        if not isinstance(t["name"], str) or not t["name"]:
            raise _bad(
                f"An input tensor's 'name' must be a non-empty string. Got {_short(t['name'])} instead."
            )
        name = t["name"][:80]
        if t["name"] in seen:
            raise _bad(f"Input {name!r} is sent twice; send each input tensor once.")
        seen.add(t["name"])
        datatype = t["datatype"]
        if not isinstance(datatype, str) or datatype not in V2_TYPES:
            raise _bad(
                f"Input {name!r} has unknown datatype {_short(datatype)}; use one of {sorted(V2_TYPES)}."
            )
        shape = _shape(t, name)
        flat, pos = _tensor_values(t, name, datatype, shape, tail, pos)
        rows = shape[0]
        width = math.prod(shape[1:])
        if single and known and rows and (width > 1 or t["name"] not in known):
            k = len(known)
            if width != k:
                raise _bad(
                    f"Input {name!r} has shape {shape} but the model takes {k} columns; "
                    f"send shape [rows, {k}] (one row: [1, {k}]) or one [rows] tensor per column "
                    f"named {known[:5]}{' ...' if k > 5 else ''}.",
                    "bad_shape",
                    [f"expected shape [rows, {k}], got {shape}"],
                )
            table = _table(flat, datatype, known, rows)
            if table is not None:  # every value a number: the float matrix, columns only if asked
                fast = table
            else:
                part = _columns(flat, known, rows)
                cols.update(part.columns)
                checked.update(part.checked)
        elif width == 1 or rows == 0:
            if isinstance(flat, list):
                cols[t["name"]] = flat
            else:
                cols[t["name"]] = flat.tolist()
                if _numbers_ok(flat):
                    checked.add(t["name"])
        elif single:
            raise HTTPProblem(
                422,
                "needs_columns",
                f"Input {name!r} has {width} values per row but the model has no signature naming its "
                "columns; send one [rows] tensor per column, named after the columns.",
            )
        else:
            raise _bad(
                f"Input {name!r} has shape {shape}; when several input tensors are sent, each is one "
                "column of shape [rows] or [rows, 1].",
                "bad_shape",
            )
        if n_rows >= 0 and rows != n_rows:
            raise _bad("All input tensors must have the same number of rows.")
        n_rows = rows
    if tail is not None and pos != len(tail):
        raise _bad(
            f"The body has {len(tail) - pos} bytes of binary data that no input claims; the inputs' "
            f"binary_data_size add up to {pos} of the {len(tail)} bytes after the JSON header.",
            "bad_binary_data",
        )
    if n_rows <= 0:
        raise HTTPProblem(400, "no_rows", "The input tensors hold no rows.")
    if fast is not None:
        payload: Payload = fast
    else:
        payload = Payload(cols, n_rows)
        payload.checked = frozenset(checked & cols.keys())
    asked = [n for n, _ in outputs]
    if "probabilities" in asked:
        payload.options = {"proba": True, "predict": True} if "predict" in asked else {"proba": True}
    return payload, V2Request(v2_id, outputs)
