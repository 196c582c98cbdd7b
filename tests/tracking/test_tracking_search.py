"""The filter language: operators, precedence, keys, time attributes, order_by, errors, injection."""

from __future__ import annotations

import pytest

import modelyard as yard
from modelyard.errors import FilterSyntaxError, NotFoundError
from modelyard.tracking import TrackingService, parse_filter

INJECTION = "x'); DROP TABLE runs; --"


@pytest.fixture
def runs(workspace):  # type: ignore[no-untyped-def]
    """Four runs with varied params, metrics, tags and statuses; returns name → RunRecord."""
    specs = [
        (
            "alpha",
            {"lr": "0.1", "model": "tree", "depth": 6},
            {"acc": 0.95, "val loss": 0.2},
            {"team": "risk"},
            "finished",
        ),
        (
            "beta",
            {"lr": "0.01", "model": "Linear", "cmd": INJECTION},
            {"acc": 0.85},
            {"team": "ml", "note": INJECTION},
            "finished",
        ),
        ("gamma", {"lr": "0.001", "model": "tree"}, {"acc": 0.75, "val loss": 0.5}, {}, "failed"),
        ("delta", {"model": 'it\'s "quoted"'}, {}, {"team": "risk"}, "killed"),
    ]
    for name, p, m, t, status in specs:
        run = yard.start_run(experiment="exp", name=name, params=p, tags=t, capture_env=False)
        run.log_metrics(m)
        run.end(status)
    with yard.start_run(experiment="other", name="omega", capture_env=False) as r:
        r.log_metric("acc", 0.99)
    return {r.name: r for r in yard.search_runs(limit=100)}


def names(filter: str | None = None, order_by=None, experiment="exp") -> list[str]:
    return [r.name for r in yard.search_runs(experiment, filter=filter, order_by=order_by)]


def sset(filter: str, experiment="exp") -> set[str]:
    return set(names(filter, experiment=experiment))


def test_comparison_operators_on_metrics(runs) -> None:
    assert sset("metrics.acc = 0.85") == {"beta"}
    assert sset("metrics.acc == 0.85") == {"beta"}
    assert sset("metrics.acc != 0.85") == {"alpha", "gamma"}
    assert sset("metrics.acc <> 0.85") == {"alpha", "gamma"}
    assert sset("metrics.acc < 0.85") == {"gamma"}
    assert sset("metrics.acc <= 0.85") == {"beta", "gamma"}
    assert sset("metrics.acc > 0.85") == {"alpha"}
    assert sset("metrics.acc >= 0.85") == {"alpha", "beta"}
    assert sset("metrics.acc>=.85") == {"alpha", "beta"}
    assert sset("metrics.acc > -1e3") == {"alpha", "beta", "gamma"}
    assert sset("metrics.acc in (0.95, 0.75)") == {"alpha", "gamma"}
    assert sset("metrics.acc not in (0.95, 0.75)") == {"beta"}
    assert sset("metric.acc > 0.9") == {"alpha"}  # singular prefix alias


def test_text_operators_on_params_and_tags(runs) -> None:
    assert sset("params.lr = '0.01'") == {"beta"}
    assert sset('params.lr = "0.01"') == {"beta"}
    assert sset("params.lr = 0.01") == {"beta"}  # a number compares as its text
    assert sset("params.depth = 6") == {"alpha"}
    assert sset("params.lr != '0.01'") == {"alpha", "gamma", "delta"}  # runs without the param too
    assert sset("params.lr in ('0.1', '0.001')") == {"alpha", "gamma"}
    assert sset("params.lr not in ('0.1', '0.001')") == {"beta", "delta"}
    assert sset("params.model like 'tr%'") == {"alpha", "gamma"}
    assert sset("params.model like 'lin%'") == set()  # like is case-sensitive on every backend
    assert sset("params.model ilike 'lin%'") == {"beta"}
    assert sset("params.model LIKE 'L_near'") == {"beta"}
    assert sset("tags.team = 'risk'") == {"alpha", "delta"}
    assert sset("tags.team != 'risk'") == {"beta", "gamma"}
    assert sset("params.model = 'it''s \"quoted\"'") == {"delta"}
    assert sset(r"params.model = 'it\'s \"quoted\"'") == {"delta"}


def test_attributes(runs) -> None:
    assert sset("status = 'failed'") == {"gamma"}
    assert sset("status = 'FAILED'") == {"gamma"}
    assert sset("attributes.status in ('killed', 'failed')") == {"gamma", "delta"}
    assert sset("name like 'al%'") == {"alpha"}
    assert sset("run_name = 'beta'") == {"beta"}
    assert sset(f"run_id = '{runs['beta'].id}'") == {"beta"}
    assert sset(f"id = '{runs['beta'].id}'") == {"beta"}
    assert sset("experiment = 'other'", experiment=None) == {"omega"}
    assert sset("user != 'nobody-at-all'") == {"alpha", "beta", "gamma", "delta"}
    assert sset("parent_id = 'none'") == set()


def test_time_attributes_with_iso_dates(runs) -> None:
    assert sset("start_time > '2000-01-01'") == {"alpha", "beta", "gamma", "delta"}
    assert sset("start_time < '2000-01-01T00:00:00+00:00'") == set()
    assert sset("start_time > 946684800000") == {"alpha", "beta", "gamma", "delta"}
    beta = runs["beta"]
    assert sset(f"start_time >= {beta.start_time} and start_time <= {beta.start_time}") >= {"beta"}
    assert sset("end_time > '2000-01-01 12:30'") == {"alpha", "beta", "gamma", "delta"}
    with pytest.raises(FilterSyntaxError, match="'yesterday' is not a time") as info:
        yard.search_runs("exp", filter="start_time > 'yesterday'")
    assert info.value.position == len("start_time > ")


def test_and_binds_tighter_than_or_and_parentheses(runs) -> None:
    # a or (b and c)
    assert sset("tags.team = 'ml' or metrics.acc > 0.9 and params.model = 'Linear'") == {"beta"}
    assert sset("(tags.team = 'ml' or metrics.acc > 0.9) and params.model = 'tree'") == {"alpha"}
    assert sset("metrics.acc > 0.8 and params.lr = '0.01' or tags.team = 'risk'") == {
        "alpha",
        "beta",
        "delta",
    }
    assert sset("metrics.acc > 0.8 and (params.lr = '0.01' or tags.team = 'risk')") == {"alpha", "beta"}
    assert sset("((status = 'killed'))") == {"delta"}
    assert sset("status = 'finished' AND tags.team = 'ml' OR status = 'killed'") == {"beta", "delta"}


def test_backtick_keys(runs) -> None:
    assert sset("metrics.`val loss` < 0.3") == {"alpha"}
    assert sset("metrics.`val loss` >= 0.3 or metrics.`val loss` < 0.3") == {"alpha", "gamma"}
    assert names(order_by="metrics.`val loss` desc") == ["gamma", "alpha", "delta", "beta"]


def test_order_by_with_nulls_last(runs) -> None:
    # runs without the metric/param sort last in both directions; ties broken by id (newest first)
    assert names(order_by=["metrics.acc desc"]) == ["alpha", "beta", "gamma", "delta"]
    assert names(order_by=["metrics.acc"]) == ["gamma", "beta", "alpha", "delta"]
    assert names(order_by=["metrics.acc ASC"]) == ["gamma", "beta", "alpha", "delta"]
    assert names(order_by=["params.lr desc"]) == ["alpha", "beta", "gamma", "delta"]
    assert names(order_by=["params.lr"]) == ["gamma", "beta", "alpha", "delta"]
    assert names(order_by=["tags.team", "name"]) == ["beta", "alpha", "delta", "gamma"]
    assert names(order_by="name desc") == ["gamma", "delta", "beta", "alpha"]
    # runs started in the same millisecond tie on start_time; ties go newest id first
    assert names(order_by=["attributes.start_time desc"]) == ["delta", "gamma", "beta", "alpha"]
    assert names() == ["delta", "gamma", "beta", "alpha"]  # default: newest first
    assert names(order_by=[]) == ["delta", "gamma", "beta", "alpha"]  # [] = the default
    assert names(filter="metrics.acc > 0", order_by=["metrics.acc desc"]) == ["alpha", "beta", "gamma"]


def _syntax_error(text: str) -> FilterSyntaxError:
    with pytest.raises(FilterSyntaxError) as info:
        parse_filter(text)
    err = info.value
    lines = str(err).splitlines()
    assert lines[-2] == f"  {text}"
    assert lines[-1] == "  " + " " * err.position + "^"
    return err


@pytest.mark.parametrize(
    ("text", "token", "message"),
    [
        ("metrics.acc >", "", r"Expected a value \('text' or a number\), found 'the end'"),
        ("metrics.acc > 0.9 and", "", "Expected a field"),
        ("metrics.acc ~ 0.9", "~", r"Unexpected character '~' at position 12"),
        ("metrics.acc 0.9", "0.9", r"Expected an operator .* after metrics.acc, found '0.9'"),
        ("metircs.acc > 1", "metircs.acc", r"Unknown field prefix 'metircs'.*Did you mean 'metrics'\?"),
        ("stauts = 'x'", "stauts", r"Unknown run attribute 'stauts'.*Did you mean 'status'\?"),
        ("(status = 'x'", "", r"Expected '\)' to close the '\(' at position 0"),
        ("status = 'x')", ")", r"Expected 'and', 'or' or the end of the filter, found '\)'"),
        ("status = 'x' status = 'y'", "status = 'y'", "Expected 'and', 'or'"),
        ("params.lr in '0.1'", "'0.1'", r"Expected '\(' after 'in'"),
        ("params.lr in ('a' 'b')", "'b'", r"Expected ',' or '\)' in the list"),
        ("params.lr = 'unterminated", "'unterminated", "Unexpected character"),
        ("params. = 'x'", ". =", r"Unexpected character '\.'"),
    ],
)
def test_errors_point_at_the_offending_token(text: str, token: str, message: str) -> None:
    err = _syntax_error(text)
    import re

    assert re.search(message, str(err)), str(err)
    expected = len(text) if token == "" else text.rindex(token)
    assert err.position == expected


@pytest.mark.parametrize(
    ("text", "token", "message"),
    [
        ("metrics.acc = 'high'", "'high'", r"metrics.acc is a number; compare it with a number, not 'high'"),
        ("metrics.acc like '0.9%'", "'0.9%'", r"'like' only works on text"),
        ("params.lr > 0.01", "0.01", r"params.lr is stored as text, so '>' would compare text"),
        ("status = 3", "3", r"status is text; quote the value, for example status = '3'"),
        ("start_time like '2026%'", "'2026%'", r"start_time is a time; 'like' does not apply"),
    ],
)
def test_type_errors_point_at_the_value(text: str, token: str, message: str) -> None:
    from modelyard.tracking._search import compile_filter

    with pytest.raises(FilterSyntaxError, match=message) as info:
        compile_filter(text)
    assert info.value.position == text.index(token)
    assert str(info.value).endswith("  " + " " * info.value.position + "^")


def test_order_by_errors(runs) -> None:
    with pytest.raises(FilterSyntaxError, match=r"Unknown run attribute 'bogus'"):
        yard.search_runs("exp", order_by=["bogus desc"])
    with pytest.raises(
        FilterSyntaxError, match=r"Expected 'asc' or 'desc' after the field, found 'sideways'"
    ):
        yard.search_runs("exp", order_by=["metrics.acc sideways"])


def test_unknown_experiment_in_search(runs) -> None:
    with pytest.raises(NotFoundError, match="Did you mean 'exp'"):
        yard.search_runs("exq")


def test_injection_attempts_stay_parameterized(runs, workspace) -> None:
    # the value is matched literally...
    assert sset("params.cmd = 'x''); DROP TABLE runs; --'") == {"beta"}
    assert sset("params.cmd like '%DROP TABLE%'") == {"beta"}
    assert sset("tags.note = 'x''); DROP TABLE runs; --'") == {"beta"}
    assert sset('tags.note = "x\'); DROP TABLE runs; --"') == {"beta"}
    with pytest.raises(FilterSyntaxError, match="Unexpected character '-'"):
        yard.search_runs("exp", filter="params.model = '' or metrics.acc = 1 --'")
    assert sset("tags.`note` in ('a', 'x''); DROP TABLE runs; --')") == {"beta"}
    # ...keys are values too, never SQL
    assert sset("params.`lr' OR '1'='1` = 'x'") == set()
    with pytest.raises(FilterSyntaxError):
        yard.search_runs("exp", filter="status = 'x'; DROP TABLE runs")
    with pytest.raises(FilterSyntaxError):
        yard.search_runs("exp", order_by=["name; DROP TABLE runs"])
    # ...and the table survives
    assert len(yard.search_runs("exp")) == 4
    svc = TrackingService(workspace)
    assert svc.get_run(runs["beta"].id).tags["note"] == INJECTION
    assert svc.get_run(runs["beta"].id).params["cmd"] == INJECTION


def test_compiled_sql_holds_no_literal_values() -> None:
    from modelyard.tracking._search import compile_filter

    sql = str(compile_filter("tags.note = 'DROP' and metrics.acc > 0.5 and name in ('a', 'b')"))
    assert "DROP" not in sql and "0.5" not in sql and "'a'" not in sql


# -- limits: each is one FilterSyntaxError pointing at the token, on SQLite and PostgreSQL ------------

_NESTED = "(" * 2000 + "metrics.acc > 0" + ")" * 2000
_MANY = " or ".join(f"metrics.acc = {i}" for i in range(1500))


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        (
            "start_time > 99999999999999999999",
            "start_time 99999999999999999999 is out of range; times are milliseconds since the epoch",
            13,
        ),
        ("end_time in (1, -99999999999999999999)", "end_time -99999999999999999999 is out of range", 12),
        ("metrics.acc > 1e309", r"The number 1e309 is out of range; a filter number must be finite", 14),
        ("params.lr = -1e999", r"The number -1e999 is out of range", 12),
        ("metrics.acc < " + "9" * 400, r"The number 99999999999999999999\.\.\. is out of range", 14),
        (_NESTED, "The filter nests parentheses more than 50 levels deep.", 50),
        (
            _MANY,
            r"The filter has more than 200 comparisons; narrow it, or use 'in \(\.\.\.\)' lists",
            _MANY.index("metrics.acc = 200 "),
        ),
        (
            "params.lr in (" + ",".join(f"'{i}'" for i in range(1001)) + ")",
            r"The filter's 'in \(\.\.\.\)' lists hold more than 1000 values together\.",
            14 + 4 * 10 + 5 * 90 + 6 * 900,
        ),
        (
            "params.lr = '" + "x" * 200_000 + "'",
            r"The filter is 200,014 characters long; the limit is 100,000\.",
            100_000,
        ),
    ],
    ids=[
        "int-above-2^63",
        "int-below-2^63-in-list",
        "1e309",
        "-1e999",
        "400-digits",
        "2000-parens",
        "1500-terms",
        "1001-values",
        "200k-chars",
    ],
)
def test_filter_limits_are_syntax_errors(runs, text: str, message: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError, match=message) as info:
        yard.search_runs("exp", filter=text)
    err = info.value
    assert err.position == position
    lines = str(err).splitlines()
    assert len(lines) == 3 and "SELECT" not in str(err)  # the problem, an excerpt of the filter, a caret
    shown, caret = lines[1][2:], lines[2].index("^") - 2
    assert len(shown) <= 3 + 120 + 3  # a window around the token, not the whole generated filter
    assert shown[caret : caret + 8] == text[position : position + 8]


def test_filter_limits_leave_room_for_real_filters(runs) -> None:
    from modelyard.tracking._search import MAX_COMPARISONS, MAX_DEPTH, MAX_VALUES

    # metrics are doubles: an integer beyond 64 bits compares with them as a double (SQLite cannot bind it)
    assert sset("metrics.acc < 99999999999999999999") == {"alpha", "beta", "gamma"}
    assert sset("metrics.acc in (0.95, 99999999999999999999)") == {"alpha"}
    assert sset("params.lr = 99999999999999999999") == set()  # params are text
    assert sset("metrics.acc < 1.7e308 and metrics.acc > -1.7e308") == {"alpha", "beta", "gamma"}
    terms = [
        f"metrics.acc = {i}" if i % 3 == 0 else f"params.lr = '{i}'" if i % 3 == 1 else f"start_time < {i}"
        for i in range(MAX_COMPARISONS - 2)
    ]
    widest = (
        "(" * MAX_DEPTH
        + " or ".join(terms)
        + ")" * MAX_DEPTH
        + " and params.lr in ("
        + ",".join(f"'{i}'" for i in range(MAX_VALUES - 1))
        + ", '0.1')"
        + " or metrics.acc = 0.85"
    )
    assert sset(widest) == {"beta"}
    deepest = (
        "".join(f"metrics.acc = {i} or (params.lr = '{i}' and " for i in range(MAX_DEPTH)) + "status = 'x'"
    )
    assert sset(deepest + ")" * MAX_DEPTH) == set()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.acc > 1e309", "Error: The number 1e309 is out of range"),
        (_NESTED, "Error: The filter nests parentheses more than 50 levels deep."),
        (_MANY, "Error: The filter has more than 200 comparisons"),
        ("start_time > 99999999999999999999", "Error: start_time 99999999999999999999 is out of range"),
    ],
    ids=["1e309", "2000-parens", "1500-terms", "int-above-2^63"],
)
def test_cli_filter_limits(runs, store_uri, text: str, message: str) -> None:
    import os
    import subprocess
    import sys

    res = subprocess.run(
        [sys.executable, "-m", "modelyard", "runs", "list", "--filter", text],
        capture_output=True,
        text=True,
        env={**os.environ, "YARD_URI": store_uri},
        timeout=120,
    )
    assert res.returncode == 1, res.stderr
    assert res.stderr.startswith(message), res.stderr
    assert "Traceback" not in res.stderr and "SELECT" not in res.stderr
    assert len(res.stderr.splitlines()) == 3
