"""What kind of values an Arrow column holds: the one reader of column types for data versioning.

Two vocabularies, one reading. :func:`type_family` is the one in expectation suites (``type:
integer``), where integers and floats differ. :func:`column_kind` is the one in profiles
(``"kind": "numeric"``), which picks the sketches a column gets (histogram and quantiles, or value
counts); it is the family with integers and floats merged, and strings and dictionaries called
categorical.

Two other places read a column's kind, from pandas dtypes and for other jobs, so they stay apart:
``registry._signature._dtype_name`` names the exact dtype a model signature enforces (widths
included, ``int32`` vs ``int64``; a type it cannot describe is an error), and
``monitoring._columns._kind`` picks a drift test (numeric or categorical only: a bool column is
categorical, dates and durations are numbers, an object column of plain numbers is numeric).
"""

from __future__ import annotations

from typing import Any

__all__ = ["column_kind", "type_family"]

#: The profile kind of each type family.
_KIND_OF_FAMILY = {
    "integer": "numeric",
    "float": "numeric",
    "string": "categorical",
    "boolean": "boolean",
    "datetime": "datetime",
    "other": "other",
}


def type_family(arrow_type: Any) -> str:
    """The expectation type family of an Arrow type (``int32`` → ``integer``...).

    ``arrow_type`` is a pyarrow ``DataType`` or its name as a profile stores it (``"int64"``,
    ``"timestamp[ns]"``, ``"dictionary<values=string, ...>"``). One of ``integer``, ``float``,
    ``string`` (strings and dictionaries), ``boolean``, ``datetime`` (timestamps and dates) or
    ``other``.
    """
    import pyarrow as pa

    t = arrow_type
    if isinstance(t, str):
        s = t.lower()
        if s.startswith(("int", "uint")):
            return "integer"
        if s in ("float", "double", "halffloat") or s.startswith("decimal"):
            return "float"
        if s in ("string", "large_string", "string_view") or s.startswith("dictionary"):
            return "string"
        if s in ("bool", "boolean"):
            return "boolean"
        if s.startswith(("timestamp", "date")):
            return "datetime"
        return "other"
    if pa.types.is_dictionary(t):
        return "string"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    return "other"


def column_kind(arrow_type: Any) -> str:
    """``numeric``, ``boolean``, ``datetime``, ``categorical`` (strings, dictionaries) or ``other``."""
    return _KIND_OF_FAMILY[type_family(arrow_type)]
