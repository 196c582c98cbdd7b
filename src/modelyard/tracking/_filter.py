"""The run filter language, compiled to parameterized SQL (never string concatenation).

Grammar::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := atom ("and" atom)*
    atom       := "(" or_expr ")" | comparison
    comparison := field op value | field ["not"] "in" "(" value ("," value)* ")"
    field      := metrics.KEY | params.KEY | tags.KEY | [attributes.]NAME
    op         := = | == | != | <> | < | <= | > | >= | like | ilike
    value      := 'text' | "text" | number

KEY may be wrapped in backticks when it holds spaces or operators: ``metrics.`val loss` < 0.3``.
Attribute names: ``run_id``, ``name``, ``status``, ``start_time``, ``end_time``, ``user``,
``parent_id``, ``experiment``. Times compare with milliseconds or an ISO date ``'2026-01-31'``.

Limits (each refused with a FilterSyntaxError pointing at the token, never a database error):
at most :data:`MAX_LENGTH` characters, :data:`MAX_COMPARISONS` comparisons, :data:`MAX_VALUES`
values in ``in (...)`` lists, :data:`MAX_DEPTH` nested parentheses; numbers must be finite doubles.
Metrics are doubles, so an integer beyond 64 bits compares with them as a double; times must fit
in 64-bit milliseconds.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from modelyard.errors import FilterSyntaxError, did_you_mean
from modelyard.store._schema import experiments, runs

__all__ = [
    "ATTRIBUTES",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_VALUES",
    "BoolOp",
    "Comparison",
    "Field",
    "parse_filter",
]

MAX_COMPARISONS = 200
"""Comparisons one filter may hold (SQLite refuses expressions nested past 1,000 levels)."""
MAX_VALUES = 1000
"""Values all the ``in (...)`` lists of one filter may hold together (bound parameters)."""
MAX_DEPTH = 50
"""Parentheses one filter may nest."""
MAX_LENGTH = 100_000
"""Characters one filter may hold (1,000 run ids in a list take about 40,000)."""
_INT64 = (-(2**63), 2**63 - 1)

ATTRIBUTES = {
    "run_id": runs.c.id,
    "id": runs.c.id,
    "name": runs.c.name,
    "run_name": runs.c.name,
    "status": runs.c.status,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "user": runs.c.user,
    "parent_id": runs.c.parent_id,
    "experiment": experiments.c.name,
}
_TIME_ATTRS = {"start_time", "end_time"}
_KINDS = ("metrics", "params", "tags", "attributes")
_KIND_ALIASES = {
    "metric": "metrics",
    "metrics": "metrics",
    "param": "params",
    "params": "params",
    "parameter": "params",
    "parameters": "params",
    "tag": "tags",
    "tags": "tags",
    "attribute": "attributes",
    "attributes": "attributes",
    "attr": "attributes",
    "run": "attributes",
}

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_][A-Za-z0-9_.:/\-]*))?)
    """,
    re.X,
)
_WORD_OPS = {"like", "ilike", "in", "not"}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Field:
    kind: str  # metrics | params | tags | attributes
    key: str
    pos: int


@dataclass(frozen=True)
class Comparison:
    field: Field
    op: str
    value: Any  # str | float | int | tuple
    value_pos: int
    value_is_number: bool | tuple[bool, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    items: tuple[Any, ...]


def _tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise FilterSyntaxError(
                f"Unexpected character {text[pos]!r} at position {pos} of the filter.",
                text=text,
                position=pos,
            )
        kind = m.lastgroup or ""
        if kind != "ws":
            tok = m.group(kind)
            if kind == "ident" and tok.lower() in {"and", "or"} | _WORD_OPS:
                kind = tok.lower()
            out.append(Token(kind, tok, pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        if len(text) > MAX_LENGTH:
            raise FilterSyntaxError(
                f"The filter is {len(text):,} characters long; the limit is {MAX_LENGTH:,}.",
                text=text,
                position=MAX_LENGTH,
            )
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.comparisons = 0
        self.values = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: Token) -> FilterSyntaxError:
        return FilterSyntaxError(message, text=self.text, position=tok.pos)

    def parse(self) -> Any:
        if self.peek().kind == "end":
            raise self.error("The filter is empty.", self.peek())
        node = self.or_expr()
        tok = self.peek()
        if tok.kind != "end":
            raise self.error(f"Expected 'and', 'or' or the end of the filter, found {tok.text!r}.", tok)
        return node

    def or_expr(self) -> Any:
        items = [self.and_expr()]
        while self.peek().kind == "or":
            self.next()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_expr(self) -> Any:
        items = [self.atom()]
        while self.peek().kind == "and":
            self.next()
            items.append(self.atom())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def atom(self) -> Any:
        tok = self.peek()
        if tok.kind == "lparen":
            self.next()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(f"The filter nests parentheses more than {MAX_DEPTH} levels deep.", tok)
            node = self.or_expr()
            self.depth -= 1
            close = self.next()
            if close.kind != "rparen":
                raise self.error(
                    f"Expected ')' to close the '(' at position {tok.pos}, found "
                    f"{close.text or 'the end'!r}.",
                    close,
                )
            return node
        return self.comparison()

    def field(self) -> Field:
        tok = self.next()
        if tok.kind != "ident":
            raise self.error(
                f"Expected a field such as metrics.acc, params.lr, tags.team or status, found "
                f"{tok.text or 'the end'!r}.",
                tok,
            )
        if "." in tok.text:
            prefix, key = tok.text.split(".", 1)
            kind = _KIND_ALIASES.get(prefix.lower())
            if kind is None:
                raise self.error(
                    f"Unknown field prefix {prefix!r}; use one of {', '.join(_KINDS)}."
                    + did_you_mean(prefix.lower(), _KIND_ALIASES),
                    tok,
                )
            if key.startswith("`") and key.endswith("`"):
                key = key[1:-1]
            if not key:
                raise self.error(f"The field {tok.text!r} has no key after the dot.", tok)
        else:
            kind, key = "attributes", tok.text
        if kind == "attributes":
            key = key.lower()
            if key not in ATTRIBUTES:
                raise self.error(
                    f"Unknown run attribute {key!r}; use one of "
                    f"{', '.join(sorted(set(ATTRIBUTES) - {'id', 'run_name'}))}, "
                    "or metrics.KEY, params.KEY, tags.KEY." + did_you_mean(key, ATTRIBUTES),
                    tok,
                )
        return Field(kind, key, tok.pos)

    def value(self) -> tuple[Any, bool, Token]:
        tok = self.next()
        if tok.kind == "string":
            body = tok.text[1:-1]
            quote = tok.text[0]
            body = body.replace(quote * 2, quote) if quote == "'" else body
            body = re.sub(r"\\(.)", r"\1", body)
            return body, False, tok
        if tok.kind == "number":
            num = float(tok.text)  # inf when out of range, even for a long integer
            if not math.isfinite(num):
                shown = tok.text if len(tok.text) <= 24 else tok.text[:20] + "..."
                raise self.error(
                    f"The number {shown} is out of range; a filter number must be finite "
                    "(at most about 1.8e308).",
                    tok,
                )
            return (int(tok.text) if re.fullmatch(r"[-+]?\d+", tok.text) else num), True, tok
        raise self.error(f"Expected a value ('text' or a number), found {tok.text or 'the end'!r}.", tok)

    def comparison(self) -> Comparison:
        self.comparisons += 1
        if self.comparisons > MAX_COMPARISONS:
            raise self.error(
                f"The filter has more than {MAX_COMPARISONS} comparisons; narrow it, or use "
                f"'in (...)' lists (up to {MAX_VALUES} values).",
                self.peek(),
            )
        field = self.field()
        tok = self.next()
        if tok.kind == "op":
            op = "=" if tok.text == "==" else "!=" if tok.text == "<>" else tok.text
        elif tok.kind in ("like", "ilike", "in"):
            op = tok.kind
        elif tok.kind == "not" and self.peek().kind == "in":
            self.next()
            op = "not in"
        else:
            raise self.error(
                f"Expected an operator (=, !=, <, <=, >, >=, like, ilike, in, not in) after "
                f"{field.kind}.{field.key}, "
                f"found {tok.text or 'the end'!r}.",
                tok,
            )
        if op in ("in", "not in"):
            open_tok = self.next()
            if open_tok.kind != "lparen":
                raise self.error(
                    f"Expected '(' after '{op}', found {open_tok.text or 'the end'!r}.", open_tok
                )
            values: list[Any] = []
            numeric: list[bool] = []
            while True:
                self.values += 1
                if self.values > MAX_VALUES:
                    raise self.error(
                        f"The filter's 'in (...)' lists hold more than {MAX_VALUES} values together.",
                        self.peek(),
                    )
                v, is_num, _ = self.value()
                values.append(v)
                numeric.append(is_num)
                sep = self.next()
                if sep.kind == "rparen":
                    break
                if sep.kind != "comma":
                    raise self.error(
                        f"Expected ',' or ')' in the list, found {sep.text or 'the end'!r}.", sep
                    )
            return Comparison(field, op, tuple(values), open_tok.pos, tuple(numeric))
        v, is_num, vtok = self.value()
        return Comparison(field, op, v, vtok.pos, is_num)


def parse_filter(text: str) -> Any:
    """Parse a filter string into a small syntax tree (raises FilterSyntaxError)."""
    return _Parser(text).parse()
