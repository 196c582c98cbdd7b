"""The whole loop in one test: injected drift fires the alert → the automation retrains (a small
scikit-learn pipeline) → the gates pass → a canary under live traffic → the version is promoted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import add_data, frame, write

LOOP = """
- name: retrain-on-drift
  model: clf
  on:
    - alert: clf/x1-drift
  run: pipelines/train.py:train_pipeline
  params: {c: 0.5}
  then:
    gate: gates.yaml
    rollout: {strategy: canary, steps: [50, 100], interval: 600ms, min_requests: 30, tick: 50ms}
"""


@pytest.mark.slow
def test_drift_alert_to_promoted_version(project: Path, store_uri: str) -> None:
    from scipy.stats import ks_2samp

    from modelyard._workspace import get_workspace, set_uri
    from modelyard.automation import apply_file
    from modelyard.automation._live import LiveLoop
    from modelyard.monitoring._alerts import AlertRule, evaluate_rules, store_rules
    from modelyard.pipelines import load_pipeline
    from modelyard.registry import audit_log, get_model, set_alias

    set_uri(store_uri)  # the pipeline's step registers without uri= (as a user's would)
    add_data(store_uri)
    add_data(store_uri, name="test", seed=2)
    v1 = load_pipeline(f"{project}/pipelines/train.py:train_pipeline").run(
        uri=store_uri, executor="local", progress=False
    )
    assert v1.value == {"model": "clf", "version": 1}
    set_alias("clf", "production", 1, uri=store_uri)
    ws = get_workspace(store_uri)
    rule = AlertRule(name="x1-drift", metric="drift_score", column="x1", threshold=0.2)
    store_rules(ws, "clf", [rule], int(time.time() * 1000))
    apply_file(str(write(project, LOOP)), uri=store_uri)

    said: list[str] = []
    rows = frame(5, n=200)[["x1", "x2"]].to_dict("records")
    serving = {"batching": {"max_latency_ms": 1}, "breaker": {"enabled": False}}
    with LiveLoop(store_uri, "clf", 1, rows, clients=3, serving=serving, say=said.append) as loop:
        assert loop.caught_up["fired"] == []  # no alert yet: nothing runs
        # the drift: live x1 moved by 1.5 standard deviations; the rule sees the KS distance
        drifted = frame(3, shift=1.5)["x1"]
        value = float(ks_2samp(frame(1)["x1"], drifted).statistic)
        events = evaluate_rules(ws, "clf", [rule], {"x1-drift": value}, int(time.time() * 1000))
        assert [e.kind for e in events] == ["firing"]
        run = loop.wait_for_run("retrain-on-drift", timeout_s=600)
    assert run is not None and run["state"] == "succeeded", (run, said[-10:])
    assert run["trigger"] == "alert" and "alert clf/x1-drift fired" in run["reason"]
    assert [(s["kind"], s["state"]) for s in run["steps"]] == [
        ("pipeline", "ok"),
        ("gate", "ok"),
        ("rollout", "ok"),
    ]
    assert run["version"] == 2 and run["rollout_id"] is not None
    assert get_model("clf", uri=store_uri).aliases.get("production") == 2 or (
        "promoted version 2" in run["steps"][2]["message"]
    )
    assert not loop.failures, loop.failures[:5]
    reasons = [e.reason or "" for e in audit_log("clf", uri=store_uri) if e.action.startswith("automation.")]
    assert {"automation.pipeline", "automation.gate", "automation.rollout"} <= {
        e.action for e in audit_log("clf", uri=store_uri)
    }
    assert all("alert clf/x1-drift fired" in r for r in reasons)
    assert any("gate: OK" in m for m in said) and any("SUCCEEDED" in m for m in said)
