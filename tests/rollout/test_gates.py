"""A gate policy attached to the model guards a rollout: a candidate that fails the gates is refused
before anything moves; a refusal at promotion fails the rollout and rolls traffic back (the
server never serves a version that `production` does not name); `yard rollout status` marks each
step with its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.evaluation import GateFailed, attach_policy
from modelyard.registry import audit_log, get_model
from modelyard.rollout import Controller, RolloutService, RolloutState
from modelyard.serving import build_app
from modelyard.serving._server import running

from .conftest import BASE, Load


def _policy(tmp_path: Path, shift: float) -> Path:
    """A policy on a regression set whose label is ``2x + shift`` (versions 1 and 2 predict 2x)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    pd.DataFrame({"x": x, "y": 0.0, "z": 0.0, "target": 2 * x + shift}).to_csv(
        tmp_path / "eval.csv", index=False
    )
    path = tmp_path / f"gates-{shift:g}.yaml"
    path.write_text(
        "task: regression\ndata: {dataset: eval.csv, label: target}\nmetrics: {mae: {max: 0.5}}\n"
        "allow_pickle: true\n"
    )  # the test models are pyfuncs
    return path


@pytest.fixture
def served(store: str):  # type: ignore[no-untyped-def]
    app = build_app(BASE, uri=store)
    with running(app) as h:
        yield app, h.url, store
    app.close()


def test_a_candidate_failing_the_gates_is_refused_before_it_starts(served: Any, tmp_path: Path) -> None:
    app, _, store = served
    attach_policy("m", _policy(tmp_path, shift=0), uri=store)
    svc = RolloutService(store)
    before = app.deployment
    with pytest.raises(GateFailed) as info:
        svc.start("m", 5, target=app, steps=[50, 100])  # version 5 predicts 2x + 40
    msg = str(info.value)
    assert msg.startswith(
        "Refusing to start a rollout of 'm' version 5: 1 of 1 gates of the policy attached to 'm' "
        "fail, so it could never be promoted to production:\n  - metrics.mae: "
    )
    assert msg.endswith("Fix the model (check with `yard gate m/5`) before rolling it out.")
    assert app.deployment is before and svc.list_rollouts("m") == []  # nothing started, nothing swapped
    r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="1h")  # version 2 passes: it starts
    assert r.state is RolloutState.PROGRESSING
    # a promotion by hand that the gates refuse changes nothing: not the alias, not the traffic
    attach_policy("m", _policy(tmp_path, shift=3), uri=store)
    with pytest.raises(
        GateFailed, match=r"Refusing to move alias 'production' of 'm' to version 2: 1 of 1 gates failed"
    ):
        svc.promote("m", target=app)
    assert svc.get(r.id).state is RolloutState.PROGRESSING
    assert app.spec.traffic.kind == "canary" and get_model("m", uri=store).aliases["production"] == 1


def test_gates_refusing_the_promotion_fail_the_rollout_and_roll_traffic_back(
    served: Any, tmp_path: Path
) -> None:
    app, url, store = served
    svc = RolloutService(store)
    with Load(url, clients=2) as load:
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="200ms", min_requests=20, tick_s=0.05)
        # meanwhile the model gets a policy version 2 fails (its labels moved by 3)
        attach_policy("m", _policy(tmp_path, shift=3), uri=store)
        r = Controller(store, target=app).run(r.id, timeout=600)[0]
        load.wait_for(10)  # traffic still flows after the rollback
    assert r.state is RolloutState.FAILED
    assert r.reason.startswith(
        "the analysis passed every step, but the gate policy attached to 'm' refused to make "
        "version 2 production (metrics.mae failed)"
    )
    assert app.spec.traffic.kind == "single" and app.deployment.primary.version == 1
    assert get_model("m", uri=store).aliases["production"] == 1
    assert load.failed == []
    assert "rollout.abort" in [e.action for e in audit_log("m", uri=store)]
    # status: both steps passed (✓ on the last one too), then the rollout failed at promotion
    from modelyard.cli import app as cli

    out = CliRunner().invoke(cli, ["rollout", "status", "m"], env={"YARD_URI": store})
    assert out.exit_code == 0, out.output
    assert "  ✓ step 1/2 canary 50%" in out.output and "  ✓ step 2/2 canary 100%" in out.output
    assert "FAILED" in out.output.splitlines()[0]


def test_status_marks_the_last_passed_step_of_a_promotion(served: Any) -> None:
    app, url, store = served
    svc = RolloutService(store)
    with Load(url, clients=2):
        r = svc.start("m", 2, target=app, steps=[50, 100], interval_s="200ms", min_requests=20, tick_s=0.05)
        r = Controller(store, target=app).run(r.id, timeout=600)[0]
    assert r.state is RolloutState.PROMOTED, r.reason
    from modelyard.cli import app as cli

    out = CliRunner().invoke(cli, ["rollout", "status", "m"], env={"YARD_URI": store})
    lines = out.output.splitlines()
    assert lines[0].endswith("PROMOTED")
    assert lines[1].startswith("  ✓ step 1/2 canary 50%") and lines[2].startswith("  ✓ step 2/2 canary 100%")
    import json

    body = json.loads(
        CliRunner().invoke(cli, ["rollout", "status", "m", "--json"], env={"YARD_URI": store}).output
    )
    assert body["step_results"] == ["successful", "successful"]


def test_gates_load_a_pyfunc_version_only_with_allow_pickle(store: str, tmp_path: Path) -> None:
    from modelyard.errors import SerializationError
    from modelyard.evaluation import run_gates

    path = _policy(tmp_path, shift=0)
    path.write_text(path.read_text().replace("allow_pickle: true\n", ""))
    with pytest.raises(
        SerializationError,
        match=r"^Refusing to load model m/2: it is a pyfunc model, and loading it unpickles it",
    ):
        run_gates("m/2", path, uri=store, log=False)
    assert run_gates("m/2", path, uri=store, log=False, allow_pickle=True).passed
    path.write_text(path.read_text() + "allow_pickle: true\n")
    assert run_gates("m/2", path, uri=store, log=False).passed
