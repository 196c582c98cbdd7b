"""Gate policies: the issue's example parses; typos and bad values are reported with their line."""

from __future__ import annotations

import pytest

from modelyard.errors import InvalidArgumentError
from modelyard.evaluation import PolicyError, load_policy, parse_policy

EXAMPLE = """\
data:      {suite: expectations.yaml}
metrics:   {roc_auc: {min: 0.80}, f1: {min: 0.70}}
champion:  {alias: production, roc_auc: {max_drop: 0.005}, relative: false}
slices:    {plan: {roc_auc: {min: 0.75}}}
latency:   {p95_ms: {max: 20}, batch: 1}
behavior:  {invariance: [{column: customer_id}], monotonic: [{column: tenure, direction: decreasing}]}
"""


def test_the_issue_example_parses_with_defaults():
    p = parse_policy(EXAMPLE, source="gates.yaml")
    assert p.protected == ["production"]
    assert p.metrics["roc_auc"].min == 0.80
    assert p.champion is not None and p.champion.alias == "production" and p.champion.if_missing == "pass"
    assert p.champion.changes()["roc_auc"].max_drop == 0.005
    assert p.slices["plan"].bounds()["roc_auc"].min == 0.75 and p.slices["plan"].min_rows == 30
    assert p.latency is not None and p.latency.p95_ms is not None and p.latency.p95_ms.max == 20
    assert p.behavior is not None and p.behavior.monotonic[0].direction == "decreasing"
    assert p.metric_names() == ["roc_auc", "f1"]
    assert p.where("slices", "plan", "roc_auc") == "gates.yaml:4: slices.plan.roc_auc"


def test_every_problem_is_listed_with_its_line_and_a_suggestion():
    text = """\
metrics:
  roc_acu: {min: 0.80}
  f1: {mni: 0.7}
champion:
  alias: production
  relatve: true
  roc_auc: {max_drop: -1}
slices:
  plan: {roc_auc: {}}
latncy: {p95_ms: {max: 20}}
behavior:
  monotonic:
    - {column: tenure, direction: down}
"""
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="gates.yaml")
    msg = str(info.value)
    assert msg.startswith("The gate policy gates.yaml has 7 problems:")
    expected = [
        "gates.yaml:2: metrics.roc_acu: unknown metric 'roc_acu'. Did you mean 'roc_auc'?",
        "gates.yaml:3: metrics.f1.mni: unknown key 'mni'. Did you mean 'min'? Allowed keys here: min, max.",
        "gates.yaml:6: champion.relatve: unknown key 'relatve'. Did you mean 'relative'?",
        "gates.yaml:7: champion.roc_auc.max_drop: Input should be greater than or equal to 0 (got -1).",
        "gates.yaml:9: slices.plan.roc_auc: give min, max or both.",
        "gates.yaml:10: latncy: unknown key 'latncy'. Did you mean 'latency'?",
        "gates.yaml:13: behavior.monotonic.0.direction: Input should be 'increasing' or "
        "'decreasing' (got 'down').",
    ]
    for line in expected:
        assert line in msg
    # problems come in file order
    assert [msg.index(e) for e in expected] == sorted(msg.index(e) for e in expected)


def test_yaml_syntax_error_names_the_line():
    with pytest.raises(PolicyError, match=r"gates.yaml:2: not valid YAML"):
        parse_policy("metrics:\n  roc_auc: {min: 0.8\n", source="gates.yaml")
    with pytest.raises(PolicyError, match=r"gates.yaml:1: a gate policy is a mapping"):
        parse_policy("- metrics\n", source="gates.yaml")


def test_declared_task_checks_metric_fit_at_parse_time():
    with pytest.raises(
        InvalidArgumentError,
        match=r"gates.yaml:3: metrics.roc_auc: metric 'roc_auc' does not fit a regression task",
    ):
        parse_policy("task: regression\nmetrics:\n  roc_auc: {min: 0.8}\n", source="gates.yaml")


def test_champion_change_needs_exactly_one_rule():
    with pytest.raises(
        PolicyError, match=r"gates.yaml:1: champion.f1: give exactly one of max_drop or min_gain"
    ):
        parse_policy("champion: {f1: {max_drop: 0.1, min_gain: 0.1}}\n", source="gates.yaml")


def test_load_policy_missing_file(tmp_path):
    with pytest.raises(InvalidArgumentError, match=r"The gate policy file '.*nope.yaml' does not exist"):
        load_policy(tmp_path / "nope.yaml")
