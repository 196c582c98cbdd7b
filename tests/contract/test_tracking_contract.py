"""Tracking: the same calls, the same answers on SQLite, PostgreSQL and a server over HTTP."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.errors import ConflictError, NotFoundError
from modelyard.tracking._service import TrackingService


def test_run_round_trip(contract_uri: str, tmp_path: Path) -> None:
    yard.set_uri(contract_uri)
    with yard.start_run(experiment="churn", name="first", params={"lr": 0.1, "depth": 3}) as run:
        for step in range(250):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("odd", float("nan"))
        run.log_metric("big", float("inf"))
        run.set_tag("team", "risk")
        (tmp_path / "notes.txt").write_text("hello")
        folder = tmp_path / "plots"
        (folder / "sub").mkdir(parents=True)
        (folder / "a.csv").write_text("x\n1\n")
        (folder / "sub" / "b.txt").write_text("b")
        run.log_artifact(tmp_path / "notes.txt")
        run.log_artifact(folder, artifact_path="out")
    svc = TrackingService(contract_uri)
    rec = svc.get_run(run.id)
    assert rec.status.value == "finished"
    assert rec.params == {"lr": "0.1", "depth": "3"}
    assert rec.metrics["loss"] == pytest.approx(1 / 250)
    assert math.isnan(rec.metrics["odd"]) and rec.metrics["big"] == math.inf
    assert rec.tags["team"] == "risk"
    assert {a.path for a in rec.artifacts} >= {"notes.txt", "out/plots"}
    history = svc.metric_history(run.id, "loss")
    assert [p.step for p in history] == list(range(250))
    dest = tmp_path / "dl"
    dest.mkdir()
    assert svc.download_artifact(run.id, "notes.txt", dest).read_text() == "hello"
    got = svc.download_artifact(run.id, "out/plots", dest)
    assert (got / "sub" / "b.txt").read_text() == "b"

    found = yard.search_runs("churn", filter="params.depth = '3' and metrics.loss < 0.01")
    assert [r.id for r in found] == [run.id]
    if contract_uri.startswith("http"):  # the authenticated caller, not what the client claims
        assert found[0].user == "tester"
    assert yard.search_runs("churn", filter="params.depth = '4'") == []


def test_errors_are_the_same_type(contract_uri: str) -> None:
    yard.set_uri(contract_uri)
    svc = TrackingService(contract_uri)
    with pytest.raises(NotFoundError):
        svc.get_run("0" * 32)
    with yard.start_run(experiment="e", params={"a": 1}) as run:
        pass
    with pytest.raises(ConflictError):
        svc.log_params(run.id, {"a": 2})


def test_delete_and_restore(contract_uri: str) -> None:
    yard.set_uri(contract_uri)
    with yard.start_run(experiment="e") as run:
        pass
    svc = TrackingService(contract_uri)
    svc.delete_run(run.id)
    assert yard.search_runs("e") == []
    svc.delete_run(run.id, restore=True)
    assert [r.id for r in yard.search_runs("e")] == [run.id]
