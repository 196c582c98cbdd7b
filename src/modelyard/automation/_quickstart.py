"""The quickstart's automation chapter: one loop from a drift alert to a promoted version, each
decision printed. Self-contained (its own model ``quickstart-auto``, data and pipeline file, kept in
the store's folder so ``yard automate list`` shows it afterwards); a rerun retrains on new data."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path
from typing import Any

__all__ = ["chapter_automation"]

MODEL = "quickstart-auto"

PIPELINE = f'''
"""The automation quickstart's pipeline: train on the latest data, register, name the version."""
import pandas as pd
import modelyard as yard


@yard.step
def train(table: pd.DataFrame) -> dict:
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import register_model

    X, y = table[["x1", "x2"]], table["label"]
    mv = register_model(LogisticRegression().fit(X, y), "{MODEL}", input_example=X.head(3))
    return {{"model": mv.name, "version": mv.version}}


@yard.pipeline(experiment="quickstart-automation")
def retrain(data: str = "{MODEL}-train@latest"):
    return train(yard.pipelines.dataset(data))
'''

AUTOMATIONS = f"""
- name: retrain-on-drift
  model: {MODEL}
  on:
    - alert: {MODEL}/x1-drift
    - schedule: {{cron: "0 3 * * 1", timezone: Europe/Paris}}
  run: pipeline.py:retrain
  then:
    gate: gates.yaml
    rollout: {{strategy: canary, steps: [50, 100], interval: 300ms, min_requests: 20, tick: 50ms}}
"""


def _frame(seed: int, n: int = 400, shift: float = 0.0) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(shift, 1, n), rng.normal(0, 1, n)
    label = ((x1 - shift) + 0.5 * x2 + rng.normal(0, 0.3, n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "label": label})


def chapter_automation(ctx: Any) -> None:
    """Drift fires an alert; the automation retrains, gates and canaries the new version."""
    from modelyard import _workspace

    ws = _workspace.get_workspace(ctx.uri)
    folder = Path(ws.location.root or ".") / "quickstart-automation"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    (folder / "gates.yaml").write_text(
        f"data: {{dataset: {MODEL}-test@latest, label: label}}\nmetrics:\n  accuracy: {{min: 0.7}}\n"
    )
    (folder / "automations.yaml").write_text(textwrap.dedent(AUTOMATIONS).lstrip())
    previous = _workspace._default_uri
    _workspace.set_uri(ctx.uri)  # the pipeline's step registers in this store
    try:
        _loop(ctx, ws, folder)
    finally:
        _workspace.set_uri(previous)


def _loop(ctx: Any, ws: Any, folder: Path) -> None:
    from scipy.stats import ks_2samp

    from modelyard.automation import apply_file
    from modelyard.automation._live import LiveLoop
    from modelyard.data import add
    from modelyard.monitoring._alerts import AlertRule, evaluate_rules, store_rules
    from modelyard.pipelines import load_pipeline
    from modelyard.registry import get_model, set_alias

    say = ctx.say
    seed = time.time_ns() % 10_000  # a rerun trains on new data (a cached retrain would change nothing)
    try:
        stable = get_model(MODEL, uri=ctx.uri).aliases.get("production")
    except Exception:
        stable = None
    if stable is None:
        add(_frame(seed), name=f"{MODEL}-train", uri=ctx.uri)
        first = load_pipeline(f"{folder / 'pipeline.py'}:retrain").run(
            uri=ctx.uri, executor="local", progress=False
        )
        stable = first.value["version"]
        set_alias(MODEL, "production", stable, uri=ctx.uri)
    rule = AlertRule(name="x1-drift", metric="drift_score", column="x1", threshold=0.2)
    store_rules(ws, MODEL, [rule], int(time.time() * 1000))
    evaluate_rules(ws, MODEL, [rule], {"x1-drift": 0.0}, int(time.time() * 1000))  # a rerun: resolved first
    applied = apply_file(str(folder / "automations.yaml"), uri=ctx.uri)
    say(
        f"Applied {folder / 'automations.yaml'} ({'created' if applied[0]['created'] else 'updated'}): "
        f"on alert {MODEL}/x1-drift → pipeline → gates → canary 50%, 100%. "
        f"{MODEL} v{stable} is in production."
    )
    rows = _frame(seed + 1, n=100)[["x1", "x2"]].to_dict("records")
    with LiveLoop(ctx.uri, MODEL, stable, rows, say=lambda m: say("  " + m)) as loop:
        drifted = _frame(seed + 2, shift=1.5)
        add(drifted, name=f"{MODEL}-train", uri=ctx.uri)  # the new labelled data, drifted
        add(_frame(seed + 3, shift=1.5), name=f"{MODEL}-test", uri=ctx.uri)
        value = float(ks_2samp(_frame(seed)["x1"], drifted["x1"]).statistic)
        (event,) = evaluate_rules(ws, MODEL, [rule], {"x1-drift": value}, int(time.time() * 1000))
        say(f"  drift injected: live x1 moved 1.5 sd; {event.text()}")
        run = loop.wait_for_run("retrain-on-drift", timeout_s=300)
    if run is None:
        say("  the alert fired no run (see `yard automate history retrain-on-drift`)")
        return
    prod = get_model(MODEL, uri=ctx.uri).aliases.get("production")
    say(
        f"Run {run['id']} {run['state']}: "
        + " → ".join(f"{s['kind']} {s['state']}" for s in run["steps"])
        + f"; production is now {MODEL} v{prod}."
    )
    say(f"  look:  yard automate history retrain-on-drift ; yard automate show {run['id']}")
