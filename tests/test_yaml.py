"""The one YAML loader: YAML bombs, huge and deep files are refused by every reader, with the limit named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelyard._yaml import MAX_ALIAS_NODES, MAX_BYTES, MAX_DEPTH, compose_yaml, load_yaml
from modelyard.errors import InvalidArgumentError

# "billion laughs": 9 levels of 9 aliases, 10^9 strings once expanded, under 1 KB of YAML
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)
BOMB_TEXT = (
    "uses YAML aliases (*e on line 6) that expand to more than 100,000 values; write the values out "
    "instead of repeating aliases."
)
BOMB_MSG = re.escape(BOMB_TEXT)
CYCLE = "rules: &r [*r]\n"
DEEP = "rules: " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"


def _huge(path: Path) -> Path:
    """A valid 20 MB YAML file (one long comment line after a small document)."""
    with path.open("w") as fh:
        fh.write("rules: []\n")
        for _ in range(20):
            fh.write("# " + "x" * (1024 * 1024) + "\n")
    return path


def test_bomb_is_refused_before_expanding() -> None:
    with pytest.raises(InvalidArgumentError, match="^The gate policy 'g.yaml' " + BOMB_MSG):
        load_yaml(LAUGHS, what="gate policy", name="g.yaml")
    with pytest.raises(InvalidArgumentError, match="^The gate policy " + BOMB_MSG):
        compose_yaml(LAUGHS, what="gate policy")


def test_cycle_depth_and_size_limits(tmp_path: Path) -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"^The alert rules file uses the alias \*r inside its own anchor &r "
        r"\(line 1\), a structure that contains itself\.$",
    ):
        compose_yaml(CYCLE, what="alert rules file")
    with pytest.raises(
        InvalidArgumentError,
        match=f"^The suite 'deep.yaml' nests mappings and lists more than "
        f"{MAX_DEPTH} levels deep \\(line 1\\)\\.$",
    ):
        load_yaml(DEEP, what="suite", name="deep.yaml")
    big = _huge(tmp_path / "big.yaml")
    with pytest.raises(
        InvalidArgumentError,
        match=r"^The suite '.*big.yaml' is 20.0 MiB; YAML files are limited to 8.0 MiB\.$",
    ):
        load_yaml(big, what="suite")
    with pytest.raises(
        InvalidArgumentError, match=r"^The suite is 20.0 MiB; YAML documents are limited to 8.0 MiB\.$"
    ):
        load_yaml(big.read_text(), what="suite")
    with pytest.raises(
        InvalidArgumentError,
        match=r"^The suite '/dev/zero' holds more than 8.0 MiB, the limit for YAML files\.$",
    ):
        load_yaml(Path("/dev/zero"), what="suite")  # an endless file is read only up to the limit
    with pytest.raises(InvalidArgumentError, match=r"^The suite '.*' cannot be read: Is a directory\.$"):
        load_yaml(tmp_path, what="suite")


def test_ordinary_documents_load_with_safe_types_only() -> None:
    # anchors for shared defaults are fine, and expand as YAML says
    doc = load_yaml("base: &b {min: 0, max: 1}\ncols: {x: *b, y: *b}\n", what="suite")
    assert doc == {
        "base": {"min": 0, "max": 1},
        "cols": {"x": {"min": 0, "max": 1}, "y": {"min": 0, "max": 1}},
    }
    # exactly at the limits is still read
    level = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert load_yaml(level, what="suite") is not None
    wide = "a: &a [" + ", ".join(["1"] * (MAX_ALIAS_NODES - 1)) + "]\nb: *a\n"
    assert len(load_yaml(wide, what="suite")["b"]) == MAX_ALIAS_NODES - 1
    assert load_yaml(b"k: 1", what="suite") == {"k": 1}
    # no Python objects
    with pytest.raises(yaml.YAMLError, match="could not determine a constructor"):
        load_yaml("!!python/object/apply:os.system ['echo hi']", what="suite")
    # syntax errors stay PyYAML's, with the line, for the caller's message
    with pytest.raises(yaml.MarkedYAMLError) as info:
        compose_yaml("a: [1, 2\nb: 3\n", what="suite")
    assert info.value.problem_mark is not None


# -- every reader of YAML in the product uses it ------------------------------------------------------------


def _suite(path: Path) -> Any:
    from modelyard.data._expectations import load_suite

    return load_suite(path)


def _policy(path: Path) -> Any:
    from modelyard.evaluation import load_policy

    return load_policy(path)


def _policy_text(path: Path) -> Any:
    from modelyard.evaluation import parse_policy

    return parse_policy(path.read_text(), source=str(path))


def _rules(path: Path) -> Any:
    from modelyard.monitoring._alerts import load_rules

    return load_rules(path)


def _spec(path: Path) -> Any:
    from modelyard.serving._spec import load_spec

    return load_spec(str(path))


READERS: dict[str, tuple[Callable[[Path], Any], str]] = {
    "expectation suite": (_suite, "The expectation suite '{path}'"),
    "gate policy": (_policy, "The gate policy '{path}'"),
    "gate policy text": (_policy_text, "The gate policy '{path}'"),
    "alert rules": (_rules, "The alert rules file '{path}'"),
    "deployment spec": (_spec, "The deployment spec (in )?'{path}'"),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_every_reader_refuses_bombs_cycles_depth_and_size(reader: str, tmp_path: Path) -> None:
    load, label = READERS[reader]
    path = tmp_path / "file.yaml"
    prefix = label.format(path=path)
    path.write_text(LAUGHS)
    with pytest.raises(InvalidArgumentError, match="^" + prefix + " " + BOMB_MSG):
        load(path)
    path.write_text(CYCLE)
    with pytest.raises(
        InvalidArgumentError, match="^" + prefix + r" uses the alias \*r inside its own anchor"
    ):
        load(path)
    path.write_text(DEEP)
    with pytest.raises(
        InvalidArgumentError, match="^" + prefix + f" nests mappings and lists more than {MAX_DEPTH}"
    ):
        load(path)
    if reader != "gate policy text":  # parse_policy is given text the caller read (load_policy, attach)
        _huge(path)
        with pytest.raises(
            InvalidArgumentError, match="^" + prefix + r" is 20.0 MiB; YAML files are limited to 8.0 MiB"
        ):
            load(path)
    assert MAX_BYTES == 8 * 1024 * 1024


def test_cli_refuses_a_bomb_in_one_line(tmp_path: Path) -> None:
    bomb = tmp_path / "gates.yaml"
    bomb.write_text(LAUGHS)
    res = subprocess.run(
        [sys.executable, "-m", "modelyard", "policy", "check", str(bomb)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "YARD_URI": str(tmp_path / "store")},
    )
    assert res.returncode == 1, res.stderr
    assert res.stderr == f"Error: The gate policy '{bomb}' {BOMB_TEXT}\n"
