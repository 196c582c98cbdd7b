"""The runs of the UI benchmark's side-by-side section, the same for modelyard and MLflow.

Plain Python (``random``, no third-party import): ``bench/ui.py`` imports it for modelyard's store, and
MLflow's virtualenv runs it as a script to fill MLflow's store through ``MlflowClient.log_batch``:

    bench/.scratch/peers/mlflow/bin/python bench/ui_data.py sqlite:///DIR/mlflow.db RUNS METRICS STEPS DEEP
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Iterator

EXPERIMENT = "side"
T0 = 1_780_000_000_000


def runs(n: int, metrics: int, steps: int, deep: int) -> Iterator[tuple[str, dict[str, str], list[tuple]]]:
    """``(name, params, [(key, step, value, timestamp_ms)])`` per run: the first ``deep`` runs log
    ``steps`` steps of each metric (the curves a compare draws), the rest their last step only (what a
    runs table shows: the latest value of each metric)."""
    rng = random.Random(0)
    for i in range(n):
        params = {"lr": str(rng.choice([0.1, 0.01, 0.001])), "depth": str(i % 9), "opt": rng.choice("ab")}
        todo = range(steps) if i < deep else range(steps - 1, steps)
        points = [
            (f"m{k}", s, rng.random() / (1 + s / 100), T0 + i * 1000 + s)
            for k in range(metrics)
            for s in todo
        ]
        yield f"run-{i}", params, points


def fill_mlflow(uri: str, n: int, metrics: int, steps: int, deep: int) -> dict[str, object]:
    """MLflow's store at ``uri`` filled with :func:`runs` (log_batch: at most 1,000 metrics a call)."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    c = MlflowClient(tracking_uri=uri)
    exp = c.get_experiment_by_name(EXPERIMENT)
    if exp is not None and len(c.search_runs([exp.experiment_id], max_results=n)) >= n:
        return {"experiment_id": exp.experiment_id, "filled": 0, "seconds": 0.0}
    if exp is not None:
        raise SystemExit(f"{uri} holds a partial experiment {EXPERIMENT!r}: remove the store and run again")
    eid = c.create_experiment(EXPERIMENT)
    t0 = time.perf_counter()
    for name, params, points in runs(n, metrics, steps, deep):
        r = c.create_run(eid, run_name=name, start_time=points[0][3])
        ms = [Metric(k, v, ts, s) for k, s, v, ts in points]
        ps = [Param(k, v) for k, v in params.items()]
        for i in range(0, max(len(ms), 1), 1000):
            first = i == 0
            tags = [RunTag("team", "a")] if first else []
            c.log_batch(r.info.run_id, metrics=ms[i : i + 1000], params=ps if first else [], tags=tags)
        c.set_terminated(r.info.run_id)
    return {"experiment_id": eid, "filled": n, "seconds": time.perf_counter() - t0}


if __name__ == "__main__":
    uri, n, metrics, steps, deep = sys.argv[1], *map(int, sys.argv[2:6])
    print(json.dumps(fill_mlflow(uri, n, metrics, steps, deep)))
