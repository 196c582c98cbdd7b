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
    assert "Evaluated quickstart-churn/1 on [bold]churn-test@v1[/]" in text
    assert "Gates on the production model: quickstart-churn/1: all 5 gates passed." in text
    assert "Promoting a lazy version 2 to [cyan]production[/] is [red]refused[/]" in text
    assert yard.get_model_version("quickstart-churn@production", uri=uri).version == 1
    evs = yard.list_evaluations("quickstart-churn/1", uri=uri)
    assert evs and evs[-1].dataset_name == "churn-test" and "plan" in evs[-1].slices
