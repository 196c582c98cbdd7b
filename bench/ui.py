"""Web UI benchmark: server time and bytes per page on a store of many runs.

    python bench/ui.py [--runs 10000] [--metrics 5] [--steps 20] [--store DIR]

Fills a SQLite store (``--store``, reused when it already holds the runs) with ``--runs`` finished runs
of ``--metrics`` metrics × ``--steps`` steps and two params, then times each page through the real app
in this process (FastAPI TestClient, ``--auth none``; the median of 7 requests): the runs table's first
page, its 41st page reached by keyset tokens, sorted by a metric, filtered on a metric; a run page; a
compare of 10 runs; a dataset version of ``--columns`` profiled columns; a monitored model's page with
``--windows`` windows of as many features; the diff of two versions of that dataset and a version
validated against the other; a model page of ``--versions`` versions' lineage. Prints milliseconds
and kilobytes per page. (The MLflow side of the issue's benchmark is not written yet.)
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def fill(store: str, runs: int, metrics: int, steps: int) -> None:
    from modelyard._workspace import Workspace
    from modelyard.tracking._service import TrackingService

    ws = Workspace(store).open()
    svc = TrackingService(ws)
    have = {e["name"]: e["runs"] for e in svc.list_experiments()}.get("big", 0)
    rng = random.Random(0)
    t0 = time.perf_counter()
    for i in range(have, runs):
        r = svc.create_run(
            experiment="big",
            name=f"run-{i}",
            params_={"lr": str(rng.choice([0.1, 0.01, 0.001])), "depth": str(i % 9)},
        )
        now = int(time.time() * 1000)
        rows = [(r.id, f"m{k}", s, rng.random(), False, now) for k in range(metrics) for s in range(steps)]
        latest = [(r.id, f"m{k}", steps - 1, rng.random(), False, now) for k in range(metrics)]
        svc.write_metrics(rows, latest)
        svc.end_run(r.id)
    if runs > have:
        print(f"filled {runs - have} runs in {time.perf_counter() - t0:.0f} s")
    ws.close()


def fill_wide(store: str, columns: int, windows: int) -> None:
    """Dataset ``wide`` (20,000 rows × ``columns`` numeric columns and one categorical) and model
    ``wide-model`` with ``windows`` monitoring windows, each with a drift score per column and a report."""
    import numpy as np
    import pandas as pd

    from modelyard._workspace import Workspace
    from modelyard.data._service import DataService
    from modelyard.monitoring._drift import drift
    from modelyard.monitoring._store import MonitoringService, MonitorRun, WindowValue

    ws = Workspace(store).open()
    if any(m["model_name"] == "wide-model" for m in MonitoringService(ws).monitored_models()):
        ws.close()
        return
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({f"f{k}": rng.normal(k, 1 + k % 3, 20_000) for k in range(columns)})
    frame["kind"] = rng.choice(["a", "b", "c", "d"], 20_000)
    folder = Path(tempfile.mkdtemp(prefix="yard-ui-bench-wide-"))
    frame.to_parquet(folder / "part-0.parquet")
    if not any(d["name"] == "wide" for d in DataService(ws).list_datasets()):
        DataService(ws).add(folder, "wide")
    report = drift(frame.sample(2_000, random_state=1), frame.sample(2_000, random_state=2))
    digest = ws.blobs.put_bytes(report.to_json(indent=None).encode())
    svc = MonitoringService(ws)
    t0 = 1_780_000_000_000
    for i in range(windows):
        values = [WindowValue("rows", "", 2000.0), WindowValue("share_drifted", "", 0.1)]
        values += [WindowValue("drift_score", f"f{k}", float(rng.random())) for k in range(columns)]
        end = t0 + i * 3_600_000
        svc.record_run(MonitorRun("wide-model", "1", end - 3_600_000, end, 2000, "dataset:wide@v1", 0.1,
                                  False, digest), values)  # fmt: skip
    ws.close()


def fill_versions(store: str, versions: int) -> None:
    """``wide@v2`` (v1 shifted, a column dropped and one added) and model ``wide-clf`` with ``versions``
    versions, each logged by a run that read ``wide@v1`` (the model page's per-version lineage)."""
    from modelyard._workspace import Workspace
    from modelyard.data._service import DataService
    from modelyard.registry._service import RegistryService

    ws = Workspace(store).open()
    data = DataService(ws)
    if len(data.versions("wide")) < 2:
        frame = data.load("wide@v1")
        frame = frame.drop(columns=["f0"]).assign(f1=frame["f1"] * 1.1 + 0.2, extra=1.0)
        folder = Path(tempfile.mkdtemp(prefix="yard-ui-bench-wide2-"))
        frame.head(15_000).to_parquet(folder / "part-0.parquet")
        data.add(folder, "wide")
    have = 0
    if any(m.name == "wide-clf" for m in RegistryService(ws).list_models()):
        have = RegistryService(ws).get_model("wide-clf").versions
    ws.close()
    if have >= versions:
        return
    from sklearn.linear_model import LinearRegression

    import modelyard as yard

    with _env(store):
        for i in range(have, versions):
            with yard.start_run(experiment="wide-train", name=f"fit-{i}") as run:
                df = run.use_dataset("wide@v1").head(500)
                model = LinearRegression().fit(df[["f1", "f2"]], df["f3"])
                run.log_model(model, "wide-clf", input_example=df[["f1", "f2"]].head(2))


class _env:
    """``YARD_URI`` set to ``store`` inside the block."""

    def __init__(self, store: str) -> None:
        self.store, self.old = store, None

    def __enter__(self) -> None:
        import os

        self.old = os.environ.get("YARD_URI")
        os.environ["YARD_URI"] = self.store

    def __exit__(self, *exc: object) -> None:
        import os

        if self.old is None:
            os.environ.pop("YARD_URI", None)
        else:
            os.environ["YARD_URI"] = self.old


def compare_reads(store: str, runs: int = 10) -> None:
    """CPU of compare's curve reads, side by side: a ``metric_history`` call per run and metric (the
    old path) against one ``metric_series`` query; the median of 5 each, interleaved."""
    from modelyard._workspace import Workspace
    from modelyard.tracking._history import metric_series
    from modelyard.tracking._service import TrackingService
    from modelyard.webui._pages import DRAWN_POINTS, _xy

    ws = Workspace(store).open()
    svc = TrackingService(ws)
    ids = [r.id for r in svc.search_runs(experiment="big", limit=runs)]
    keys = sorted({k for i in ids for k in svc.get_run(i).metrics})

    def per_call() -> object:
        return [
            _xy([(p.step, p.value, p.timestamp) for p in svc.metric_history(i, k)], False, 0.0, DRAWN_POINTS)
            for i in ids
            for k in keys
        ]

    def one_query() -> object:
        h = metric_series(ws.store, ids, keys)
        return [_xy(h.get((i, k), []), False, 0.0, DRAWN_POINTS) for i in ids for k in keys]

    assert per_call() == one_query()
    cpu: dict[str, list[float]] = {"per call": [], "one query": []}
    for _ in range(5):
        for name, fn in (("per call", per_call), ("one query", one_query)):
            t0 = time.process_time()
            fn()
            cpu[name].append(time.process_time() - t0)
    a, b = statistics.median(cpu["per call"]), statistics.median(cpu["one query"])
    print(f"  compare's curve reads, {len(ids)} runs × {len(keys)} metrics: CPU per call {a:.3f} s, "
          f"one query {b:.3f} s ({a / b:.2f}x)")  # fmt: skip
    ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--store", default=None)
    ap.add_argument("--columns", type=int, default=50, help="columns of the dataset and monitored model")
    ap.add_argument("--windows", type=int, default=200, help="monitoring windows of the model")
    ap.add_argument("--versions", type=int, default=30, help="versions of model wide-clf")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    store = a.store or tempfile.mkdtemp(prefix="yard-ui-bench-")
    fill(store, a.runs, a.metrics, a.steps)
    fill_wide(store, a.columns, a.windows)
    fill_versions(store, a.versions)

    from fastapi.testclient import TestClient

    from modelyard.server import ServerSettings, create_app

    c = TestClient(create_app(ServerSettings(uri=store, auth="none")))

    def timed(url: str) -> tuple[float, int, str]:
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            r = c.get(url)
            ts.append(time.perf_counter() - t0)
        assert r.status_code == 200, (url, r.status_code)
        return statistics.median(ts) * 1000, len(r.content), r.text

    print(f"{a.runs} runs × {a.metrics} metrics × {a.steps} steps; ms = median server time of 7")
    for label, url in (
        ("runs table, first 50", "/ui/experiments/big"),
        ("runs table sorted by metrics.m1", "/ui/experiments/big?sort=metrics.m1&dir=desc"),
        ("runs table filtered metrics.m0 > 0.5", "/ui/experiments/big?q=metrics.m0+%3E+0.5"),
    ):
        ms, size, _ = timed(url)
        nxt, page = url, 1
        for _ in range(40):  # page 41, or the last page of a smaller store
            m = re.search(r'href="\?([^"]+)" rel="next"', c.get(nxt).text)
            if not m:
                break
            nxt, page = url.split("?")[0] + "?" + m.group(1).replace("&amp;", "&"), page + 1
        deep, _, _ = timed(nxt)
        print(f"  {label:40s} {ms:7.1f} ms  {size / 1024:6.0f} KB   page {page}: {deep:6.1f} ms")
    ids = re.findall(r'name="run" value="([^"]+)"', c.get("/ui/experiments/big").text)
    for label, url in (
        ("a run (every metric charted)", f"/ui/runs/{ids[0]}"),
        ("compare 10 runs", "/ui/compare?" + "&".join(f"run={i}" for i in ids[:10])),
        ("compare 20 runs (+ parallel coords)", "/ui/compare?" + "&".join(f"run={i}" for i in ids[:20])),
        (f"dataset diff v1 → v2, {a.columns + 1} columns", "/ui/datasets/wide/diff?a=1&b=2"),
        ("dataset v2 validated against v1", "/ui/datasets/wide/v2/validate?against=1"),
        (f"model page, {a.versions} versions' lineage", "/ui/models/wide-clf"),
        (f"dataset version, {a.columns + 1} columns profiled", "/ui/datasets/wide/v1"),
        (f"monitoring, {a.windows} windows × {a.columns} features", "/ui/monitoring/wide-model"),
        ("datasets", "/ui/datasets"),
    ):
        ms, size, _ = timed(url)
        print(f"  {label:40s} {ms:7.1f} ms  {size / 1024:6.0f} KB")
    compare_reads(store)
    print(f"  load average {open('/proc/loadavg').read().split()[:3]}")


if __name__ == "__main__":
    main()
