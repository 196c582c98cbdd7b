"""The quickstart's evaluation chapter evaluates by slice and shows a refused promotion."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_quickstart_evaluates_and_gates(tmp_path) -> None:
    import modelyard as yard
    from modelyard.quickstart import run_quickstart

    uri = str(tmp_path / "qs")
    said: list[str] = []
    run_quickstart(uri, say=said.append)
    text = "\n".join(said)
    # the rollout chapter (before this one) may have promoted a retrained version
    prod = yard.get_model_version("quickstart-churn@production", uri=uri).version
    lazy = max(v.version for v in yard.registry.list_versions("quickstart-churn", uri=uri))
    assert f"Evaluated quickstart-churn/{prod} on [bold]churn-test@v1[/]" in text
    assert f"Gates on the production model: quickstart-churn/{prod}: all 5 gates passed." in text
    assert f"Promoting a lazy version {lazy} to [cyan]production[/] is [red]refused[/]" in text
    assert yard.get_model_version("quickstart-churn@production", uri=uri).version == prod != lazy
    evs = yard.list_evaluations(f"quickstart-churn/{prod}", uri=uri)
    assert evs and evs[-1].dataset_name == "churn-test" and "plan" in evs[-1].slices
