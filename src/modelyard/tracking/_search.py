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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from modelyard.errors import FilterSyntaxError, did_you_mean
from modelyard.store._schema import experiments, latest_metrics, params, runs, tags
from modelyard.tracking._heartbeat import status_expr

__all__ = [
    "ATTRIBUTES",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_VALUES",
    "compile_filter",
    "compile_order_by",
    "compile_page",
    "compile_search",
    "next_page_token",
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


def _to_ms(value: Any, text: str, pos: int, what: str) -> int:
    if isinstance(value, (int, float)):
        if not _INT64[0] <= value <= _INT64[1]:
            raise FilterSyntaxError(
                f"{what} {_num_text(value)} is out of range; times are milliseconds since the epoch "
                "(a 64-bit integer) or an ISO date like '2026-01-31'.",
                text=text,
                position=pos,
            )
        return int(value)
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise FilterSyntaxError(
            f"{value!r} is not a time; use milliseconds since the epoch or an ISO date like '2026-01-31'.",
            text=text,
            position=pos,
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _apply(col: ColumnElement[Any], op: str, value: Any) -> ColumnElement[bool]:
    cond: ColumnElement[bool]  # SQLAlchemy types the comparison operators as Any
    if op == "=":
        cond = col == value
    elif op == "!=":
        cond = col != value
    elif op == "<":
        cond = col < value
    elif op == "<=":
        cond = col <= value
    elif op == ">":
        cond = col > value
    elif op == ">=":
        cond = col >= value
    elif op == "like":
        cond = col.like(value)
    elif op == "ilike":
        cond = col.ilike(value)
    elif op == "in":
        cond = col.in_(list(value))
    elif op == "not in":
        cond = col.not_in(list(value))
    else:
        raise AssertionError(op)  # pragma: no cover
    return cond


def _compile(node: Any, text: str, top: bool = False) -> ColumnElement[bool]:
    # ``top``: the node is the filter or one of its top-level ``and`` terms; a metric comparison
    # there compiles to ``runs.id IN (SELECT run_id ... WHERE key = ? AND value op ?)``, which the
    # (key, value) index answers and the database can drive the search from (see compile_search).
    if isinstance(node, BoolOp):
        parts = [_compile(n, text, top and node.op == "and") for n in node.items]
        return sa.and_(*parts) if node.op == "and" else sa.or_(*parts)
    assert isinstance(node, Comparison)
    f, op, value = node.field, node.op, node.value
    numbers = node.value_is_number if isinstance(node.value_is_number, tuple) else (node.value_is_number,)
    if f.kind == "metrics":
        if op in ("like", "ilike"):
            raise FilterSyntaxError(
                f"metrics.{f.key} is a number; '{op}' only works on text. Use =, !=, <, <=, >, >= or in.",
                text=text,
                position=node.value_pos,
            )
        if not all(numbers):
            raise FilterSyntaxError(
                f"metrics.{f.key} is a number; compare it with a number, not {value!r}.",
                text=text,
                position=node.value_pos,
            )
        # metric values are doubles: an integer beyond 64 bits (which SQLite cannot bind) compares as one
        value = tuple(_as_double(v) for v in value) if isinstance(value, tuple) else _as_double(value)
        lm = latest_metrics
        cond = _apply(lm.c.value, op, value)
        if top:
            return runs.c.id.in_(sa.select(lm.c.run_id).where(lm.c.key == f.key, cond))
        return sa.exists(sa.select(sa.literal(1)).where(lm.c.run_id == runs.c.id, lm.c.key == f.key, cond))
    if f.kind in ("params", "tags"):
        table = params if f.kind == "params" else tags
        if any(numbers) and op in ("<", "<=", ">", ">="):
            raise FilterSyntaxError(
                f"{f.kind}.{f.key} is stored as text, so '{op}' would compare text, not numbers. "
                f"Quote the value to compare text, or log the number as a metric.",
                text=text,
                position=node.value_pos,
            )
        sval = tuple(_num_text(v) for v in value) if isinstance(value, tuple) else _num_text(value)
        if op in ("!=", "not in"):
            positive = "=" if op == "!=" else "in"
            inner = _apply(table.c.value, positive, sval)
            return ~sa.exists(
                sa.select(sa.literal(1)).where(table.c.run_id == runs.c.id, table.c.key == f.key, inner)
            )
        cond = _apply(table.c.value, op, sval)
        return sa.exists(
            sa.select(sa.literal(1)).where(table.c.run_id == runs.c.id, table.c.key == f.key, cond)
        )
    col = ATTRIBUTES[f.key]
    if f.key in _TIME_ATTRS:
        if op in ("like", "ilike"):
            raise FilterSyntaxError(
                f"{f.key} is a time; '{op}' does not apply.", text=text, position=node.value_pos
            )
        value = (
            tuple(_to_ms(v, text, node.value_pos, f.key) for v in value)
            if isinstance(value, tuple)
            else _to_ms(value, text, node.value_pos, f.key)
        )
    else:
        if any(numbers):
            raise FilterSyntaxError(
                f"{f.key} is text; quote the value, for example {f.key} = "
                f"'{value if not isinstance(value, tuple) else value[0]}'.",
                text=text,
                position=node.value_pos,
            )
        if f.key == "status":
            value = tuple(v.lower() for v in value) if isinstance(value, tuple) else value.lower()
            col = status_expr()  # a running run without a recent heartbeat matches 'lost', not 'running'
    return _apply(col, op, value)


def _as_double(v: Any) -> Any:
    return float(v) if isinstance(v, int) and not _INT64[0] <= v <= _INT64[1] else v


def _num_text(v: Any) -> str:
    return v if isinstance(v, str) else repr(v) if isinstance(v, float) else str(v)


def compile_filter(text: str) -> ColumnElement[bool]:
    """Compile a filter string into a SQLAlchemy boolean expression over ``runs``."""
    return compile_search(text)[0]


def compile_search(text: str) -> tuple[ColumnElement[bool], bool]:
    """Compile a filter; also say whether a top-level ``and`` term is a metric comparison.

    Such a term is a good place to start the search from (an index range on the metric's
    values), better than scanning every run of the experiment; :meth:`TrackingService.search_runs`
    then keeps SQLite from choosing the experiment index instead.
    """
    node = parse_filter(text)
    terms = node.items if isinstance(node, BoolOp) and node.op == "and" else (node,)
    driver = any(isinstance(t, Comparison) and t.field.kind == "metrics" for t in terms)
    return _compile(node, text, top=True), driver


_ORDER = re.compile(r"^\s*(?P<field>.+?)(?:\s+(?P<dir>asc|desc))?\s*$", re.I)


def compile_order_by(clauses: Sequence[str] | str | None) -> tuple[list[Any], list[Any]]:
    """Return ``(joins, order expressions)`` for ``order_by`` clauses like ``"metrics.acc desc"``.

    ``joins`` are ``(alias, onclause)`` pairs to outer-join onto ``runs``.
    """
    joins, order, _ = compile_page(clauses, None)
    return joins, order


def _order_fields(clauses: Sequence[str] | str | None) -> list[tuple[Field, bool]]:
    if clauses is None:
        return [(Field("attributes", "start_time", 0), True)]
    if isinstance(clauses, str):
        clauses = [clauses]
    out: list[tuple[Field, bool]] = []
    for clause in clauses:
        m = _ORDER.match(clause or "")
        if not m:
            raise FilterSyntaxError(
                f"The order_by clause {clause!r} is empty.", text=clause or "", position=0
            )
        parser = _Parser(m.group("field"))
        field = parser.field()
        if parser.peek().kind != "end":
            raise parser.error(
                f"Expected 'asc' or 'desc' after the field, found {parser.peek().text!r}.", parser.peek()
            )
        out.append((field, (m.group("dir") or "asc").lower() == "desc"))
    return out


def compile_page(
    clauses: Sequence[str] | str | None, page_token: str | None
) -> tuple[list[Any], list[Any], ColumnElement[bool] | None]:
    """``(joins, order expressions, condition)``: the order of ``order_by`` and, with a ``page_token``
    from :func:`next_page_token`, the keyset condition that starts the page after that token's run
    (``None`` without a token). Nulls sort last either way; the run id breaks ties, so every run is on
    exactly one page however many share a value, and a page costs the same at run 10 or 10,000."""
    joins: list[Any] = []
    order: list[Any] = []
    cols: list[tuple[Any, bool]] = []
    for i, (field, desc) in enumerate(_order_fields(clauses)):
        if field.kind == "attributes":
            col: Any = ATTRIBUTES[field.key]
        else:
            base = {"metrics": latest_metrics, "params": params, "tags": tags}[field.kind]
            alias = base.alias(f"ord{i}")
            joins.append((alias, sa.and_(alias.c.run_id == runs.c.id, alias.c.key == field.key)))
            col = alias.c.value
        order.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
        cols.append((col, desc))
    order.append(runs.c.id.desc())
    if page_token is None:
        return joins, order, None
    values = _decode_token(page_token, len(cols))

    def after(i: int) -> ColumnElement[bool]:
        if i == len(cols):
            return runs.c.id < str(values[-1])
        col, desc = cols[i]
        v = values[i]
        if v is None:  # in the tail of runs without a value: the rest of that tail
            return sa.and_(col.is_(None), after(i + 1))
        beyond = col < v if desc else col > v
        return sa.or_(beyond, col.is_(None), sa.and_(col == v, after(i + 1)))

    return joins, order, after(0)


def next_page_token(clauses: Sequence[str] | str | None, last: Any) -> str:
    """The token of the page after ``last`` (a :class:`RunRecord`, the last run of a page) in the order
    of ``clauses``; pass it to ``search_runs(page_token=...)`` with the same filter and order."""
    import base64
    import json

    values: list[Any] = []
    for field, _ in _order_fields(clauses):
        if field.kind == "attributes":
            key = {"run_id": "id", "run_name": "name"}.get(field.key, field.key)
            v = getattr(last, key, None)
            v = getattr(v, "value", v)  # the status enum
        else:
            v = getattr(last, field.kind).get(field.key)
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        values.append(v)
    values.append(last.id)
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, n: int) -> list[Any]:
    import base64
    import binascii
    import json

    from modelyard.errors import InvalidArgumentError

    bad = InvalidArgumentError(
        f"page_token {token[:40]!r} is not a page token of this order; pass the token search_runs "
        "gave with the same filter and order_by, or none for the first page."
    )
    try:
        values = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad from None
    if (
        not isinstance(values, list)
        or len(values) != n + 1
        or not isinstance(values[-1], str)
        or not all(v is None or isinstance(v, str | int | float) for v in values)
        or any(isinstance(v, bool) for v in values)
        or any(isinstance(v, int) and not _INT64[0] <= v <= _INT64[1] for v in values)
    ):
        raise bad
    return values
