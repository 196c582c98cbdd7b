"""automations.yaml: what apply accepts, and each mistake named with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.automation import AutomationError, AutomationService, apply_file, parse_automations

from .conftest import add_data, write

GOOD = """
- name: retrain
  model: clf
  timezone: Europe/Paris
  on:
    - schedule: "0 3 * * 1"
    - dataset: train
  run: pipelines/train.py:train_pipeline
  then:
    gate: gates.yaml
    rollout: {strategy: canary, steps: [10, 50, 100], interval: 10m, server: "http://127.0.0.1:9"}
"""


def _error(path: Path, uri: str | None = None) -> str:
    with pytest.raises(AutomationError) as exc:
        apply_file(str(path), uri=uri)
    return str(exc.value)


def test_a_good_file_applies_and_lists(project: Path, store_uri: str) -> None:
    add_data(store_uri)
    path = write(project, GOOD)
    assert apply_file(str(path), uri=store_uri) == [{"name": "retrain", "created": True}]
    assert apply_file(str(path), uri=store_uri) == [{"name": "retrain", "created": False}]
    (a,) = AutomationService(store_uri).list_automations()
    assert a["triggers"] == ["schedule 0 3 * * 1 (Europe/Paris)", "dataset train"]
    assert a["steps"] == ["pipeline", "gate", "rollout"]
    assert a["next_tick"] is not None and a["last_run"] is None
    spec = AutomationService(store_uri).get("retrain")
    assert spec["run"]["pipeline"] == f"{project / 'pipelines' / 'train.py'}:train_pipeline"
    assert spec["rollout"]["options"] == {
        "strategy": "canary",
        "steps": [10.0, 50.0, 100.0],
        "interval_s": 600.0,
    }


@pytest.mark.parametrize(
    ("replace", "by", "line", "message"),
    [
        ('"0 3 * * 1"', '"0 3 * *"', 5, "cron expression '0 3 * *' has 4 fields; it needs 5"),
        ('"0 3 * * 1"', '"61 3 * * 1"', 5, "invalid cron expression '61 3 * * 1'"),
        ("Europe/Paris", "Mars/Olympus", 5, "unknown time zone 'Mars/Olympus'"),
        ("dataset: train", "dataset: trian", 6, "unknown dataset 'trian'. Did you mean 'train'?"),
        ("train.py:train_pipeline", "train.py:trian_pipeline", 7, "unknown pipeline"),
        (
            "pipelines/train.py",
            "pipelines/missing.py",
            7,
            "pipeline file 'pipelines/missing.py' does not exist",
        ),
        ("gate: gates.yaml", "gate: nope.yaml", 9, "gate policy 'nope.yaml' does not exist"),
        ("steps: [10, 50, 100]", "steps: [10, 500]", 10, "The rollout is not valid"),
        ("  model: clf", "  modle: clf", 2, "unknown key 'modle'. Did you mean 'model'?"),
        (
            "    - dataset: train",
            "    - datset: train",
            6,
            "unknown trigger 'datset'. Did you mean 'dataset'?",
        ),
    ],
)
def test_each_mistake_is_named_at_its_line(
    project: Path, store_uri: str, replace: str, by: str, line: int, message: str
) -> None:
    add_data(store_uri)
    assert replace in GOOD
    path = write(project, GOOD.replace(replace, by))
    text = _error(path, store_uri)
    assert text.startswith(f"{path}:{line}: automation 'retrain': "), text
    assert message in text


def test_unknown_alert_rule_and_bad_yaml(project: Path, store_uri: str) -> None:
    add_data(store_uri)
    path = write(project, GOOD.replace("- dataset: train", "- alert: clf/drift"))
    assert _error(path, store_uri).startswith(
        f"{path}:6: automation 'retrain': unknown alert rule 'drift' of model 'clf'"
    )
    path = write(project, '- name: x\n  on: [schedule: "0 3 * * *"\n  run: a.py:b\n')
    assert _error(path, store_uri).startswith(f"{path}:3: not valid YAML")


def test_cycles_are_refused_at_the_trigger_line(project: Path, store_uri: str) -> None:
    add_data(store_uri)
    add_data(store_uri, name="features")
    self_loop = GOOD.replace("- dataset: train", "- dataset: features") + "  produces: [features]\n"
    path = write(project, self_loop)
    text = _error(path, store_uri)
    assert text.startswith(f"{path}:6: automation 'retrain': cycle: retrain → retrain"), text
    two = """
    - name: a
      on: [dataset: train]
      run: pipelines/train.py:train_pipeline
      produces: [features]
    - name: b
      on:
        - dataset: features
      run: pipelines/train.py:train_pipeline
      produces: [train]
    """
    path = write(project, two)
    text = _error(path, store_uri)
    assert text.startswith(f"{path}:2: automation 'a': cycle: a → b → a"), text
    assert AutomationService(store_uri).list_automations() == []  # nothing applied


def test_approval_group_must_exist_and_hold_the_role(project: Path, store_uri: str) -> None:
    from modelyard.server._users import AuthService

    add_data(store_uri)
    approval = GOOD.replace("    gate: gates.yaml\n", "    gate: gates.yaml\n    approval: release-team\n")
    path = write(project, approval)
    assert "unknown approval group 'release-team'" in _error(path, store_uri)
    assert _error(path, store_uri).startswith(f"{path}:10: automation 'retrain'")
    users = AuthService(store_uri)
    users.add_user("ann", "reader")
    users.add_group_member("release-team", "ann")
    text = _error(path, store_uri)
    assert "no member of group 'release-team' has role maintainer on model 'clf'" in text
    assert "yard grants add group:release-team --model clf --role maintainer" in text
    users.grant("group:release-team", "model", "clf", "maintainer")
    assert apply_file(str(path), uri=store_uri) == [{"name": "retrain", "created": True}]


def test_concurrency_and_webhook_secret_rules(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(project, GOOD.replace("  timezone", "  concurrency: 2\n  timezone"))
    with pytest.raises(
        AutomationError, match=r"automations.yaml:3: automation 'retrain': concurrency must be 1"
    ):
        parse_automations(path)
    path = write(project, GOOD.replace("- dataset: train", "- webhook: s3cret"))
    with pytest.raises(AutomationError, match=r":6: automation 'retrain': webhook names where its secret is"):
        parse_automations(path)
    monkeypatch.delenv("HOOK_SECRET", raising=False)
    path = write(project, GOOD.replace("- dataset: train", "- webhook: env:HOOK_SECRET"))
    with pytest.raises(AutomationError, match=r":6: automation 'retrain': .*HOOK_SECRET"):
        apply_file(str(path))


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"name": "x", "triggers": ["schedule"]},
        {"name": "x", "triggers": [{"kind": "schedule", "cron": "99 * * * *", "timezone": "UTC"}]},
        {"name": "x", "triggers": [{"kind": "dataset", "dataset": "d"}], "run": "a.py:b"},
        {
            "name": "x",
            "triggers": [{"kind": "dataset", "dataset": "d"}],
            "run": {"pipeline": "a.py:b"},
            "rollout": {"options": {"steps": "many"}},
        },
        {
            "name": "x",
            "triggers": [{"kind": "dataset", "dataset": "d"}],
            "run": {"pipeline": "a:b"},
            "notify": ["http://x"],
        },
    ],
)
def test_apply_refuses_specs_no_file_could_give(spec: dict) -> None:
    """The apply operation takes JSON from any client: shapes the parser never makes are refused."""
    with pytest.raises(AutomationError, match="is not a checked spec"):
        AutomationService().apply([spec])
