"""The pytest plugin: ``yard_model``/``yard_dataset``/``yard_evaluate`` fixtures in a user's test suite."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from testkit.evaluation import register

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]


def _plugin_args() -> list[str]:
    # Once modelyard is installed the entry point loads the plugin; before that, load it by name.
    installed = any(
        ep.value == "modelyard.evaluation.pytest_plugin" for ep in metadata.entry_points(group="pytest11")
    )
    return [] if installed else ["-p", "modelyard.evaluation.pytest_plugin"]


def test_entry_point_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {"modelyard": "modelyard.evaluation.pytest_plugin"}


def test_user_tests_load_models_and_datasets_from_the_store(
    pytester: pytest.Pytester, tmp_path, churn, good_model, weak_model
):
    import modelyard.data as ydata
    from modelyard.registry import set_alias

    uri = str(tmp_path / "store")
    register(good_model, uri)
    register(weak_model, uri)
    set_alias("churn-clf", "production", 1, uri=uri)
    set_alias("churn-clf", "candidate", 2, uri=uri)
    ydata.add(churn, name="churn-test", uri=uri)
    pytester.makepyfile(
        test_model="""
        def test_candidate_beats_champion(yard_model, yard_dataset, yard_evaluate):
            data = yard_dataset("churn-test@v1")
            assert yard_model("churn-clf@candidate").version == 2
            cand = yard_evaluate("churn-clf@candidate", data, label="churned")
            champ = yard_evaluate("churn-clf@production", data, label="churned")
            assert cand.metrics["roc_auc"] >= champ.metrics["roc_auc"] - 0.005

        def test_champion_is_good_enough(yard_model, yard_dataset, yard_evaluate):
            data = yard_dataset("churn-test@v1")
            ev = yard_evaluate("churn-clf@production", data, label="churned", slices="plan")
            assert ev.metrics["roc_auc"] > 0.6
            assert yard_model("churn-clf@production") is yard_model("churn-clf@production")  # cached

        def test_datasets_are_copies(yard_dataset):
            a = yard_dataset("churn-test@v1")
            a["churned"] = 0
            assert yard_dataset("churn-test@v1")["churned"].sum() > 0
        """
    )
    result = pytester.runpytest_inprocess(
        *_plugin_args(), f"--yard-uri={uri}", "-p", "no:cacheprovider", "-q"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*test_candidate_beats_champion*", "*assert * >= *"])
    # nothing was stored by the fixtures (no --yard-log-evaluations)
    from modelyard.evaluation import list_evaluations

    assert list_evaluations("churn-clf", uri=uri) == []
