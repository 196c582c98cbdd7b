"""Checks on keys and values that users log (one place, one message style)."""

from __future__ import annotations

import math
import re

from modelyard.errors import InvalidArgumentError, InvalidKeyError

__all__ = ["MAX_KEY_LEN", "MAX_VALUE_LEN", "check_key", "check_value", "to_float"]

MAX_KEY_LEN = 250
MAX_VALUE_LEN = 6000
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_key(key: object, what: str = "key") -> str:
    """Return ``key`` if it is a usable name for a param, metric, tag or artifact; raise otherwise."""
    if not isinstance(key, str):
        raise InvalidKeyError(f"The {what} must be a string. Got {type(key).__name__} {key!r} instead.")
    if not key or not key.strip():
        raise InvalidKeyError(f"The {what} is empty. Give it a name such as 'loss' or 'train/acc'.")
    if len(key) > MAX_KEY_LEN:
        raise InvalidKeyError(
            f"The {what} {key[:40]!r}… is {len(key)} characters long; the limit is {MAX_KEY_LEN}. "
            f"Use a shorter name."
        )
    if ".." in key:
        raise InvalidKeyError(f"The {what} {key!r} contains '..', which is not allowed. Remove the '..'.")
    if _CONTROL.search(key):
        raise InvalidKeyError(
            f"The {what} {key!r} contains a control character (newline, tab, NUL...). Use "
            f"printable characters."
        )
    if key.startswith("/"):
        raise InvalidKeyError(
            f"The {what} {key!r} starts with '/'. Use a relative name such as 'train/loss'."
        )
    return key


def check_value(key: str, value: object, what: str = "param") -> str:
    """Turn a param or tag value into the stored string, rejecting values that are too long."""
    text = value if isinstance(value, str) else _to_text(value)
    if len(text) > MAX_VALUE_LEN:
        raise InvalidArgumentError(
            f"The value of {what} {key!r} is {len(text)} characters long; the limit is {MAX_VALUE_LEN}. "
            "Log long text with run.log_text() as an artifact instead."
        )
    return text


def _to_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def to_float(key: str, value: object) -> float:
    """Convert a metric value to float (NaN and inf are kept)."""
    if isinstance(value, float):
        return value
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"The value of metric {key!r} must be a number. Got {type(value).__name__} {value!r} instead."
        ) from None
    if isinstance(value, bool):
        return out
    if math.isnan(out) and not isinstance(value, float):
        return out
    return out
