"""The quickstart registers its model and points production at it."""

from __future__ import annotations

import pytest

import modelyard as yard


@pytest.mark.slow
def test_quickstart_registers_the_model(tmp_path) -> None:
    from modelyard.quickstart import run_quickstart

    said: list[str] = []
    uri = str(tmp_path / "qs")
    ctx = run_quickstart(uri, say=said.append)
    mv = yard.get_model_version(
        "quickstart-churn/1", uri=uri
    )  # the rollout chapter promotes a version 2 later
    assert mv.version == ctx.state["model_version"] == 1 and mv.run_id == ctx.state["run_id"]
    assert [c.name for c in mv.signature.inputs] == ["tenure", "monthly_charges", "plan", "support_calls"]
    assert mv.metrics["roc_auc"] == pytest.approx(ctx.state["metrics"]["roc_auc"])
    model = yard.load_model("quickstart-churn/1", uri=uri)
    features = ctx.state["features"]
    assert (model.predict(features) == ctx.state["model"].predict(features)).all()
    text = "\n".join(said)
    assert "pointed [cyan]production[/] at it" in text and "missing column 'monthly_charges'" in text
    assert (
        "an untrusted model is refused before any of it runs: Refusing to load model "
        "untrusted-upload: it is a "
        "pyfunc model, and loading it unpickles it, which runs code from the store."
    ) in text
