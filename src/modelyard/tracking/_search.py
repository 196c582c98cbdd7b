"""The run filter compiled to parameterized SQL (never string concatenation), orders and pages.

The language itself (grammar, limits, parser) is :mod:`modelyard.tracking._filter`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from modelyard.errors import FilterSyntaxError
from modelyard.store._schema import experiments, latest_metrics, params, runs, tags
from modelyard.tracking._filter import (
    _INT64,
    _TIME_ATTRS,
    ATTRIBUTES,
    MAX_COMPARISONS,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_VALUES,
    BoolOp,
    Comparison,
    Field,
    _Parser,
    parse_filter,
)
from modelyard.tracking._heartbeat import status_expr

__all__ = [
    "ATTRIBUTES",
    "MAX_COMPARISONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_VALUES",
    "build_search",
    "compile_filter",
    "compile_order_by",
    "compile_page",
    "compile_search",
    "next_page_token",
    "parse_filter",
]


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


def _compile(
    node: Any, text: str, top: bool = False, walk: tuple[str, Any] | None = None
) -> ColumnElement[bool]:
    # ``top``: the node is the filter or one of its top-level ``and`` terms; a metric comparison
    # there compiles to ``runs.id IN (SELECT run_id ... WHERE key = ? AND value op ?)``, which the
    # (key, value) index answers and the database can drive the search from (see compile_search).
    # ``walk``: ``(key, column)`` when the search walks that metric's index in order instead (see
    # build_search): a top-level comparison of that metric is a range on the walked column, and the
    # other metric comparisons are per-run checks, never a second place to start from.
    if isinstance(node, BoolOp):
        parts = [_compile(n, text, top and node.op == "and", walk) for n in node.items]
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
        if top and walk is not None and walk[0] == f.key:
            return _apply(walk[1], op, value)
        cond = _apply(lm.c.value, op, value)
        if top and walk is None:
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
    if clauses is None or (not isinstance(clauses, str) and len(clauses) == 0):  # [] = the default order
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
    fields = _order_fields(clauses)
    joins, order, cols = _order_parts(fields, 0)
    order.append(runs.c.id.desc())
    if page_token is None:
        return joins, order, None
    return joins, order, _after(cols, _decode_token(page_token, len(cols)))


def _order_parts(
    fields: list[tuple[Field, bool]], start: int
) -> tuple[list[Any], list[Any], list[tuple[Any, bool]]]:
    """Outer joins, order expressions (nulls last) and ``(column, desc)`` of order fields."""
    joins: list[Any] = []
    order: list[Any] = []
    cols: list[tuple[Any, bool]] = []
    for i, (field, desc) in enumerate(fields, start):
        if field.kind == "attributes":
            col: Any = ATTRIBUTES[field.key]
        else:
            base = {"metrics": latest_metrics, "params": params, "tags": tags}[field.kind]
            alias = base.alias(f"ord{i}")
            joins.append((alias, sa.and_(alias.c.run_id == runs.c.id, alias.c.key == field.key)))
            col = alias.c.value
        order.append(col.desc().nulls_last() if desc else col.asc().nulls_last())
        cols.append((col, desc))
    return joins, order, cols


def _after(cols: list[tuple[Any, bool]], values: list[Any], i: int = 0) -> ColumnElement[bool]:
    """Runs after the one whose order values are ``values`` (the run id last), nulls last."""
    if i == len(cols):
        return runs.c.id < str(values[-1])
    col, desc = cols[i]
    v = values[i]
    if v is None:  # in the tail of runs without a value: the rest of that tail
        return sa.and_(col.is_(None), _after(cols, values, i + 1))
    beyond = col < v if desc else col > v
    return sa.or_(beyond, col.is_(None), sa.and_(col == v, _after(cols, values, i + 1)))


def _walks(terms: Sequence[Any], key: str, parent_id: str | None) -> bool:
    """Whether a search ordered by ``metrics.<key>`` should walk that metric's (key, value) index in
    order and stop at the limit, rather than start from a filter term and sort what it finds.

    Walk unless something else narrows better: a parent run, a run id, or a comparison of another
    metric (whose index range is a better start). A comparison of the order's own metric is a range
    of the walk itself, so it always walks then."""
    if any(isinstance(t, Comparison) and t.field.kind == "metrics" and t.field.key == key for t in terms):
        return True
    if parent_id is not None:
        return False
    for t in terms:
        if not isinstance(t, Comparison):
            continue
        if t.field.kind == "metrics":
            return False
        narrows = t.field.key in ("run_id", "id", "parent_id") and t.op in ("=", "in")
        if t.field.kind == "attributes" and narrows:
            return False
    return True


def build_search(
    filter: str | None,
    *,
    experiment_ids: Sequence[int] | None,
    dialect: str,
    order_by: Sequence[str] | str | None = None,
    page_token: str | None = None,
    include_deleted: bool = False,
    parent_id: str | None = None,
) -> tuple[list[sa.Select[Any]], bool]:
    """``(queries, walks)``: the queries of one ``search_runs`` page (run them in order, each limited to
    what the page still needs, until the page is full), and whether the first walks a metric's index.

    Ordered by a metric (``metrics.acc desc``), the first query walks the ``ix_latest_metrics_key_value``
    index in the order asked (key, then value) from the page's start, checks each run against the
    filter and stops at the limit: 100 of 100,000 runs read a few hundred index entries instead of
    sorting every match. Runs without a value of that metric (never logged, or NaN) come after all the
    others (nulls last); the second query finds them, and is skipped when a top-level comparison of
    that metric already excludes them. Any other order (or a filter that narrows better, see
    :func:`_walks`) is one query that starts from the filter and sorts.
    """
    node = parse_filter(filter) if filter and filter.strip() else None
    text = filter or ""
    terms: tuple[Any, ...] = (
        node.items if isinstance(node, BoolOp) and node.op == "and" else () if node is None else (node,)
    )
    fields = _order_fields(order_by)
    first, desc = fields[0]
    walk = first.kind == "metrics" and _walks(terms, first.key, parent_id)
    driver = any(isinstance(t, Comparison) and t.field.kind == "metrics" for t in terms)

    def common(plain_experiment: bool) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if experiment_ids is not None:
            # With a better place to start (a metric's index), keep SQLite (which has no statistics)
            # from walking every run of the experiment through its index: `+ 0` makes it a plain check.
            col: ColumnElement[Any] = runs.c.experiment_id
            if plain_experiment and dialect == "sqlite":
                col = col + 0
            where.append(col.in_(list(experiment_ids)))
        if not include_deleted:
            where.append(runs.c.deleted.is_(False))
        if parent_id is not None:
            where.append(runs.c.parent_id == parent_id)
        return where

    def select(from_: Any, where: list[Any], order: list[Any]) -> sa.Select[Any]:
        return (
            sa.select(runs, experiments.c.name.label("experiment_name"))
            .select_from(from_)
            .where(*where)
            .order_by(*order)
        )

    if not walk:
        joins, order, after = compile_page(order_by, page_token)
        where = common(driver)
        if node is not None:
            where.append(_compile(node, text, top=True))
        if after is not None:
            where.append(after)
        from_ = runs.join(experiments, experiments.c.id == runs.c.experiment_id)
        for alias, on in joins:
            from_ = from_.outerjoin(alias, on)
        return [select(from_, where, order)], False

    values = _decode_token(page_token, len(fields)) if page_token is not None else None
    rest_joins, rest_order, rest_cols = _order_parts(fields[1:], 1)
    queries: list[sa.Select[Any]] = []
    ord0 = latest_metrics.alias("ord0")
    if values is None or values[0] is not None:  # the runs with a value, in the index's order
        val = ord0.c.value
        where = [ord0.c.key == first.key, val.is_not(None), *common(True)]
        if node is not None:
            where.append(_compile(node, text, top=True, walk=(first.key, val)))
        if values is not None:
            v0 = values[0]
            where.append(val <= v0 if desc else val >= v0)  # the range the index walk starts from
            beyond = val < v0 if desc else val > v0
            where.append(sa.or_(beyond, sa.and_(val == v0, _after(rest_cols, values[1:], 0))))
        from_ = ord0.join(runs, runs.c.id == ord0.c.run_id).join(
            experiments, experiments.c.id == runs.c.experiment_id
        )
        for alias, on in rest_joins:
            from_ = from_.outerjoin(alias, on)
        # no NULLS LAST here (there are no nulls): PostgreSQL's index order is NULLS FIRST for DESC
        order = [val.desc() if desc else val.asc(), *rest_order, runs.c.id.desc()]
        queries.append(select(from_, where, order))
    excluded = any(
        isinstance(t, Comparison) and t.field.kind == "metrics" and t.field.key == first.key for t in terms
    )
    if not excluded:  # then the runs without a value (nulls last)
        where = [ord0.c.value.is_(None), *common(driver)]
        if node is not None:
            where.append(_compile(node, text, top=True))
        if values is not None and values[0] is None:
            where.append(_after(rest_cols, values[1:], 0))
        from_ = runs.join(experiments, experiments.c.id == runs.c.experiment_id).outerjoin(
            ord0, sa.and_(ord0.c.run_id == runs.c.id, ord0.c.key == first.key)
        )
        for alias, on in rest_joins:
            from_ = from_.outerjoin(alias, on)
        queries.append(select(from_, where, [*rest_order, runs.c.id.desc()]))
    return queries, True


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
