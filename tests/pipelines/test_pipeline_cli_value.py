"""``yard pipeline run`` prints what the pipeline returned: in text (a short repr) and in --json (all of
it)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from modelyard.cli import app

PIPE = """
import modelyard as yard


@yard.step
def numbers(n: int) -> list:
    return list(range(n))


@yard.step
def summary(xs: list) -> dict:
    return {"n": len(xs), "total": sum(xs), "note": "[bold]not markup[/]"}


@yard.pipeline(experiment="cli")
def pipe(n: int = 5):
    xs = numbers(n)
    return {"summary": summary(xs), "xs": xs}


@yard.step
def text(n: int) -> str:
    return "x" * n


@yard.pipeline(experiment="cli")
def big():
    return text(50_000)


@yard.pipeline(experiment="cli")
def nothing():
    numbers(2)
"""


def test_pipeline_run_prints_the_return_value(modules) -> None:
    modules.write("value", PIPE)
    runner = CliRunner()
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value"), "-x", "local", "-p", "n=3"])
    assert res.exit_code == 0, res.output
    assert (
        "  returned (dict): {'summary': {'n': 3, 'note': '[bold]not markup[/]', 'total': 3}, 'xs': [0, 1, 2]}"
        in res.output.splitlines()
    )
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value"), "-x", "local", "-p", "n=3", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["value"] == {"summary": {"n": 3, "total": 3, "note": "[bold]not markup[/]"}, "xs": [0, 1, 2]}
    assert out["value_type"] == "dict" and len(out["steps"]) == 2

    # a long list: abbreviated in text mode, whole in JSON (served from the cache this time)
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value"), "-x", "local", "-p", "n=5000"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("  returned (dict): "))
    assert "'xs': [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, ...]" in line
    assert "'total': 12497500" in line and len(line) < 300
    res = runner.invoke(
        app, ["pipeline", "run", modules.ref("value"), "-x", "local", "-p", "n=5000", "--json"]
    )
    assert json.loads(res.stdout)["value"]["xs"] == list(range(5000))


def test_a_big_repr_is_cut_in_text_mode_only_and_none_is_not_printed(modules) -> None:
    modules.write("value", PIPE)
    runner = CliRunner()
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value", "big"), "-x", "local"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("  returned ("))
    assert line.startswith("  returned (str): 'xxx") and line.endswith("xxx'")
    assert "..." in line and len(line) < 500
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value", "big"), "-x", "local", "--json"])
    out = json.loads(res.stdout)
    assert out["value"] == "x" * 50_000 and out["value_type"] == "str"
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value", "nothing"), "-x", "local"])
    assert res.exit_code == 0 and "returned" not in res.output and "1 of 1 steps ran" in res.output
    res = runner.invoke(app, ["pipeline", "run", modules.ref("value", "nothing"), "-x", "local", "--json"])
    out = json.loads(res.stdout)
    assert out["value"] is None and out["value_type"] == "NoneType"


def test_short_repr_bounds_any_object() -> None:
    from modelyard.cli._pipelines import REPR_CHARS, short_repr

    class Big:
        def __repr__(self) -> str:
            return "Big(" + "x" * 50_000 + ")"

    text = short_repr(Big())
    assert text.startswith("Big(xxx") and text.endswith("xxx)") and "..." in text and len(text) <= REPR_CHARS
    many = {f"k{i}": "y" * 1000 for i in range(30)}
    text = short_repr(many)
    assert text.startswith("{'k0': 'yyy") and len(text) < REPR_CHARS + 80
    assert text.endswith(" more characters; --json shows all]")
    assert short_repr([1, 2]) == "[1, 2]"
