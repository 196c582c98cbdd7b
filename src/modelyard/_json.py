"""Strict JSON for reports and ``--json`` output: NaN and ±inf become the strings JSON lacks."""

from __future__ import annotations

from typing import Any

__all__ = ["json_float", "strict_json"]


def json_float(v: float) -> float | str:
    """``v`` itself when finite, else ``"NaN"``, ``"Infinity"`` or ``"-Infinity"``."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def strict_json(o: Any, *, str_keys: bool = False, stringify: bool = False) -> Any:
    """``o`` with every float made JSON-safe, through dicts, lists and tuples.

    ``str_keys`` turns dict keys into strings; ``stringify`` turns values that are not JSON
    scalars into ``str(value)`` (otherwise they are left for ``json.dumps(default=...)``).
    """
    if isinstance(o, float):
        return json_float(o)
    if isinstance(o, dict):
        return {
            (str(k) if str_keys else k): strict_json(v, str_keys=str_keys, stringify=stringify)
            for k, v in o.items()
        }
    if isinstance(o, (list, tuple)):
        return [strict_json(v, str_keys=str_keys, stringify=stringify) for v in o]
    if stringify and not (o is None or isinstance(o, (str, int, bool))):
        return str(o)
    return o
