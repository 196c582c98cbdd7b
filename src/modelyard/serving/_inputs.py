"""Checks of a decoded request against one model version, before it is queued for a batch.

A value no model can take (NaN or ±Infinity, an object or a list where one value belongs, an
integer beyond 64 bits) and a request missing signature columns answer 422 here: they never
reach the batcher, the model, the circuit breaker, the fallback or a rollout's error rate.
The payload the model gets keeps only the signature's columns, in its order; that is also what
the prediction log records (with the signature's types).
"""

from __future__ import annotations

import math
import re
from itertools import chain
from typing import Any

from modelyard.errors import did_you_mean
from modelyard.serving._codec import HTTPProblem, Payload

__all__ = ["InputCheck", "value_problem"]

_SCALARS = frozenset({int, float, bool, str, type(None)})
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
_MAX_LISTED = 20  # unexpected column names listed in a 422 at most
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def _kind(v: Any) -> str:
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "a list"
    return f"a {type(v).__name__}"


def value_problem(name: str, values: list[Any]) -> str | None:
    """The first value of column ``name`` no model can take, described; None when all are fine."""
    types = set(map(type, values))
    if not types <= _SCALARS:
        for i, v in enumerate(values):
            if type(v) not in _SCALARS:
                return (
                    f"column {name!r} row {i} holds {_kind(v)}; send one number, string, "
                    "true/false or null per cell"
                )
    if float in types:
        floats = values if len(types) == 1 else [v for v in values if type(v) is float]
        if not all(map(math.isfinite, floats)):
            for i, v in enumerate(values):
                if type(v) is float and not math.isfinite(v):
                    what = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
                    return (
                        f"column {name!r} row {i} is {what}; numbers must be finite "
                        "(send null for a missing value)"
                    )
    if int in types:
        ints = values if len(types) == 1 else [v for v in values if type(v) is int]
        if ints and (min(ints) < _INT_MIN or max(ints) > _INT_MAX):
            for i, v in enumerate(values):
                if type(v) is int and not _INT_MIN <= v <= _INT_MAX:
                    return f"column {name!r} row {i} is an integer beyond 64 bits ({str(v)[:20]}...)"
    return None


def parse_dates(name: str, values: list[Any]) -> tuple[list[Any], str | None]:
    """Date strings (or epoch numbers) of a datetime column as Timestamps, each in its own format
    (ISO 8601 or other), never through pandas' format inference and its per-request warning."""
    import pandas as pd

    s = pd.Series(values, dtype=object)
    present = s.notna().to_numpy()
    try:
        parsed = pd.to_datetime(s, format="mixed", errors="coerce")
    except (ValueError, TypeError, OverflowError) as exc:
        return values, f"column {name!r} holds dates that cannot be read together ({str(exc)[:120]})"
    bad = present & parsed.isna().to_numpy()
    if bad.any():
        i = int(bad.argmax())
        return values, f"column {name!r} row {i} ({str(values[i])[:40]!r}) does not parse as a date"
    return [None if pd.isna(v) else v for v in parsed.tolist()], None


def _looks_like_data(names: list[str]) -> bool:
    """True when every header cell reads as a number (pandas renames repeats to ``1.0.1``)."""
    return bool(names) and all(_NUMBER.match(re.sub(r"(\.\d+)\.\d+$", r"\1", n)) for n in names)


class InputCheck:
    """The pre-batching checks of one model version (its signature's columns, when it has one)."""

    def __init__(self, model: Any) -> None:
        sig = getattr(model, "signature", None)
        frame = sig is not None and getattr(sig, "kind", "frame") == "frame"
        self.names: list[str] = [str(s.name) for s in (getattr(sig, "inputs", None) or [])] if frame else []
        self.dtypes: dict[str, str] = (
            {str(s.name): str(s.dtype) for s in getattr(sig, "inputs", None) or []} if frame else {}
        )
        self._signature = sig if frame else None
        self._dates = [n for n, d in self.dtypes.items() if d == "datetime"]
        self._set = frozenset(self.names)
        self._key = tuple(self.names)

    def check(self, payload: Payload) -> Payload:
        """``payload`` reduced to the signature's columns; raises a 422 naming every problem."""
        numeric = getattr(payload, "checked_numeric", None)  # an all-number table (_columnar.py)
        if numeric is not None and self.names and not self._dates:
            fine: Payload | None = numeric(self.names)
            if fine is not None:
                return fine  # every signature column there, every value a finite number
        cols = payload.columns
        if not self.names:  # no signature: every column goes to the model, so every column is checked
            problems = _problems(cols, payload.checked)
            if problems:
                raise _invalid(problems)
            return payload
        if payload.key == self._key:
            selected = cols
        else:
            missing = [n for n in self.names if n not in cols]
            if missing:
                raise self._missing(missing, [c for c in cols if c not in self._set], payload)
            selected = {n: cols[n] for n in self.names}
        problems = _problems(selected, payload.checked)
        if self._dates and not problems:
            selected = dict(selected)
            for c in self._dates:
                selected[c], problem = parse_dates(c, selected[c])
                if problem:
                    problems.append(problem)
        if problems:
            raise _invalid(problems)
        if selected is cols:
            return payload
        out = Payload(selected, payload.n)
        out.source = payload.source
        out.options = payload.options
        out.checked = payload.checked
        return out

    def _missing(self, missing: list[str], unexpected: list[str], payload: Payload) -> HTTPProblem:
        if payload.source == "csv" and len(missing) == len(self.names) and _looks_like_data(unexpected):
            return HTTPProblem(
                422,
                "invalid_input",
                "The first row of the CSV looks like data, not a header; start the body with a header "
                f"row naming the columns: {','.join(self.names)}.",
                problems=[
                    f"header cells {unexpected[:5]} are numbers; expected column names {self.names[:5]}"
                    + (" ..." if len(self.names) > 5 else "")
                ],
            )
        problems = [f"missing column {n!r}" for n in missing]
        for u in unexpected[:_MAX_LISTED]:
            problems.append(f"unexpected column {u[:200]!r}.{did_you_mean(u, missing)}".rstrip("."))
        if len(unexpected) > _MAX_LISTED:
            problems.append(f"... and {len(unexpected) - _MAX_LISTED} more unexpected columns")
        problems += self._other_problems({n: payload.columns[n] for n in self.names if n in payload.columns})
        head = f"The input is missing {len(missing)} of the model's {len(self.names)} columns" + (
            f" and has {len(unexpected)} it does not know" if unexpected else ""
        )
        return HTTPProblem(422, "invalid_input", f"{head}; see 'problems'.", problems=problems)

    def _other_problems(self, present: dict[str, list[Any]]) -> list[str]:
        """The problems of the columns that are there, so one answer lists every problem."""
        found = [p for c, v in present.items() if (p := value_problem(c, v))]
        if found or not present or self._signature is None:
            return found
        import pandas as pd

        from modelyard.errors import SignatureError

        try:
            self._signature.validate(pd.DataFrame(present))
        except SignatureError as exc:
            return [str(p) for p in exc.problems if not str(p).startswith("missing column")]
        except Exception:  # the listing is a courtesy; the missing columns are the answer
            return []
        return []


def _problems(columns: dict[str, list[Any]], skip: frozenset[str]) -> list[str]:
    """The first problem of each column not in ``skip``: one pass over all values when every one
    is fine (the usual request: a few type tests for the whole table instead of per column)."""
    todo = [v for c, v in columns.items() if c not in skip] if skip else list(columns.values())
    if value_problem("", list(chain.from_iterable(todo))) is None:
        return []
    return [p for c, v in columns.items() if c not in skip and (p := value_problem(c, v))]


def _invalid(problems: list[str]) -> HTTPProblem:
    return HTTPProblem(
        422, "invalid_input", "The input holds values no model can take; see 'problems'.", problems=problems
    )
