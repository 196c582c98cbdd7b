"""The Open Inference Protocol's binary tensor data extension (``binary_tensor_data``).

A request (or response) whose tensors travel as raw bytes is the JSON header followed by the
tensors' bytes, in the order of the tensors in the JSON; the ``Inference-Header-Content-Length``
header gives the JSON header's length and each binary tensor carries
``parameters.binary_data_size``. Tensor bytes are little-endian, row-major, without padding; a
``BOOL`` element is one byte (0 or 1) and a ``BYTES`` element is a 4-byte little-endian unsigned
length followed by that many bytes.

Every length a client sends is checked against the bytes that are really there (and so against
the server's body limit, which bounds the body) before anything is allocated from it.
"""

from __future__ import annotations

import math
from typing import Any

from modelyard.serving._codec import HTTPProblem, dumps
from modelyard.serving._http import JSONResponse

__all__ = [
    "FIXED_SIZES",
    "HEADER",
    "BinaryResponse",
    "binary_answer",
    "decode_tensor",
    "encode_tensor",
    "header_length",
]

#: The HTTP header giving the length of the JSON header of a body with binary tensors.
HEADER = "inference-header-content-length"

#: Bytes per element of the fixed-size datatypes, and their little-endian numpy dtype.
FIXED_SIZES: dict[str, tuple[int, str]] = {
    "BOOL": (1, "u1"),
    "UINT8": (1, "<u1"),
    "UINT16": (2, "<u2"),
    "UINT32": (4, "<u4"),
    "UINT64": (8, "<u8"),
    "INT8": (1, "<i1"),
    "INT16": (2, "<i2"),
    "INT32": (4, "<i4"),
    "INT64": (8, "<i8"),
    "FP16": (2, "<f2"),
    "FP32": (4, "<f4"),
    "FP64": (8, "<f8"),
}


def _bad(message: str) -> HTTPProblem:
    return HTTPProblem(400, "bad_binary_data", message)


def header_length(value: str, body_size: int) -> int:
    """The ``Inference-Header-Content-Length`` value, checked against the body's size."""
    text = value.strip()
    if not text.isdigit():
        raise _bad(
            f"The Inference-Header-Content-Length header must be a non-negative integer. "
            f"Got {value[:40]!r} instead."
        )
    n = int(text)
    if n == 0 or n > body_size:
        raise _bad(
            f"The Inference-Header-Content-Length header says the JSON header has {n} bytes but the "
            f"body has {body_size}; it must be between 1 and the body's length."
        )
    return n


def decode_tensor(raw: memoryview, datatype: str, shape: list[int], name: str) -> Any:
    """The elements of one binary tensor as a flat numpy array (``BYTES``: an object array of
    ``str``, or of ``bytes`` for elements that are not UTF-8). ``raw`` is exactly its bytes."""
    import numpy as np

    count = math.prod(shape)
    if datatype != "BYTES":
        size, dtype = FIXED_SIZES[datatype]
        if len(raw) != count * size:
            raise _bad(
                f"Input {name!r} has binary_data_size {len(raw)} but shape {shape} of {datatype} "
                f"needs {count} x {size} = {count * size} bytes."
            )
        arr = np.frombuffer(raw, dtype=dtype)
        if datatype == "BOOL":
            if arr.size and int(arr.max()) > 1:
                raise _bad(f"Input {name!r} is BOOL but holds bytes other than 0 and 1.")
            return arr.astype(bool)
        return arr
    return _decode_bytes(raw, count, name)


def _decode_bytes(raw: memoryview, count: int, name: str) -> Any:
    import numpy as np

    total = len(raw)
    if count * 4 > total:  # every element has at least its 4-byte length
        raise _bad(
            f"Input {name!r} has binary_data_size {total} but {count} BYTES elements need at "
            f"least {count * 4} bytes (a 4-byte length each)."
        )
    out = np.empty(count, dtype=object)
    data = raw.tobytes()
    pos = 0
    for i in range(count):
        if pos + 4 > total:
            raise _bad(f"Input {name!r}: element {i} of {count} has no 4-byte length; the data ends.")
        n = int.from_bytes(data[pos : pos + 4], "little")
        pos += 4
        if n > total - pos:
            raise _bad(
                f"Input {name!r}: element {i} says it has {n} bytes but only {total - pos} remain "
                "in its binary_data_size."
            )
        chunk = data[pos : pos + n]
        pos += n
        try:
            out[i] = chunk.decode("utf-8")
        except UnicodeDecodeError:
            out[i] = chunk
    if pos != total:
        raise _bad(
            f"Input {name!r} has {total - pos} bytes after its {count} BYTES elements; "
            "binary_data_size must be exactly the elements' bytes."
        )
    return out


def encode_tensor(arr: Any, datatype: str) -> bytes:
    """The binary form of ``arr`` (any shape) as ``datatype``."""
    import numpy as np

    flat = np.asarray(arr).reshape(-1)
    if datatype == "BYTES":
        parts: list[bytes] = []
        for v in flat.tolist():
            b = v if isinstance(v, bytes) else str(v).encode("utf-8")
            parts.append(len(b).to_bytes(4, "little"))
            parts.append(b)
        return b"".join(parts)
    _, dtype = FIXED_SIZES[datatype]
    return np.ascontiguousarray(flat.astype(dtype)).tobytes()


class BinaryResponse(JSONResponse):
    """A V2 answer with binary tensors: the JSON header, then the tensors' bytes."""

    __slots__ = ("header_size",)

    def __init__(self, body: bytes, header_size: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(body, 200, headers)
        self.header_size = header_size

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(self.body)).encode()),
            (HEADER.encode(), str(self.header_size).encode()),
        ]
        if self.headers:
            raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status_code, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


def binary_answer(body: dict[str, Any], blobs: list[bytes], headers: dict[str, str]) -> BinaryResponse:
    """The response of ``body`` (its binary outputs already carry ``binary_data_size``) followed
    by ``blobs`` in the order of those outputs."""
    head = dumps(body)
    return BinaryResponse(head + b"".join(blobs), len(head), headers)
