"""Web UI benchmark: server time and bytes per page on a store of many runs, side by side with MLflow.

    python bench/ui.py [--runs 10000] [--metrics 5] [--steps 20] [--store DIR]
        [--side-runs 10000 --side-metrics 20 --side-steps 1000 --deep 10 --side-store DIR] [--only-side]

Side by side (first; ``--no-side`` skips it): ``bench/ui_data.py`` fills a modelyard store and an MLflow
SQLite store (``MlflowClient.log_batch``, MLflow 3.17.2 from bench/.scratch/peers/mlflow) with the same
``--side-runs`` runs of ``--side-metrics`` metrics: ``--deep`` of them with ``--side-steps`` steps (the
runs a compare draws), the rest their last step (what a runs table shows). ``yard ui`` and ``mlflow
server`` then run as one process each and are timed alternately over HTTP from this process: our runs
table of 100 runs with every metric and param column against the call MLflow's UI makes to fill its
table (``POST runs/search``, max_results=100), and our compare of the deep runs against MLflow's
``GET metrics/get-history`` per run × metric. Prints medians, bytes and ratios.

Then the in-process section: fills a SQLite store (``--store``, reused when it already holds the runs)
with ``--runs`` finished runs of ``--metrics`` metrics × ``--steps`` steps and two params, and times each
page through the real app in this process (FastAPI TestClient, ``--auth none``; the median of 7
requests): the runs table's first page, its 41st page reached by keyset tokens, sorted by a metric,
filtered on a metric; a run page; a compare of 10 runs; a dataset version of ``--columns`` profiled
columns; a monitored model's page with ``--windows`` windows of as many features; the diff of two
versions of that dataset and a version validated against the other; a model page of ``--versions``
versions' lineage. Prints milliseconds and kilobytes per page.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))


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


def fill_side(store: str, n: int, metrics: int, steps: int, deep: int) -> float:
    """Experiment ``side`` of ``bench/ui_data.py``'s runs in our store; the seconds it took (0 if there)."""
    from ui_data import EXPERIMENT, runs

    from modelyard._workspace import Workspace
    from modelyard.tracking._service import TrackingService

    ws = Workspace(store).open()
    svc = TrackingService(ws)
    if {e["name"]: e["runs"] for e in svc.list_experiments()}.get(EXPERIMENT, 0) >= n:
        ws.close()
        return 0.0
    t0 = time.perf_counter()
    for name, params, points in runs(n, metrics, steps, deep):
        r = svc.create_run(experiment=EXPERIMENT, name=name, params_=params, tags_={"team": "a"})
        rows = [(r.id, k, st, v, False, ts) for k, st, v, ts in points]
        last = {k: (r.id, k, st, v, False, ts) for k, st, v, ts in points}
        svc.write_metrics(rows, list(last.values()))
        svc.end_run(r.id)
    ws.close()
    return time.perf_counter() - t0


def side_by_side(a: argparse.Namespace) -> None:
    """``yard ui`` and ``mlflow server`` (one process each, SQLite) on the same runs, timed alternately
    from this process over HTTP: the runs table of 100 runs with every metric and param column against
    MLflow's ``runs/search`` (max_results=100: every metric, param and tag of each run), and a compare
    of ``--deep`` runs' curves against one ``metrics/get-history`` per run × metric (sequential)."""
    import os
    import subprocess

    import httpx

    from server import MLFLOW_PY, MLFLOW_VENV, SCRATCH, _free_port, _process

    root = Path(a.side_store or tempfile.mkdtemp(prefix="yard-ui-side-"))
    root.mkdir(parents=True, exist_ok=True)
    SCRATCH.mkdir(parents=True, exist_ok=True)
    store, mdb = str(root / "yard"), f"sqlite:///{root / 'mlflow.db'}"
    shape = (a.side_runs, a.side_metrics, a.side_steps, a.deep)
    ours_fill = fill_side(store, *shape)
    env = {k: v for k, v in os.environ.items() if k not in ("YARD_URI", "MLFLOW_TRACKING_URI")}
    env["PYTHONPATH"] = str(ROOT / "src")
    out = subprocess.run(
        [str(MLFLOW_PY), str(Path(__file__).with_name("ui_data.py")), mdb, *map(str, shape)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    m_fill = json.loads(out.stdout.strip().splitlines()[-1])
    print(
        f"side by side: {a.side_runs} runs × {a.side_metrics} metrics ({a.deep} of them × {a.side_steps} "
        f"steps, the rest their last step); filled ours in {ours_fill:.0f} s, MLflow in "
        f"{m_fill['seconds']:.0f} s (0: reused); load {os.getloadavg()[0]:.1f}"
    )
    deep_ids = _our_ids(store, [f"run-{i}" for i in range(a.deep)])
    _drop_copies(store, deep_ids)  # the first view below is a true one: no stored copy of its curves
    yport, mport = _free_port(), _free_port()
    yurl, murl = f"http://127.0.0.1:{yport}", f"http://127.0.0.1:{mport}"
    ycmd = [sys.executable, "-m", "modelyard", "ui", "--uri", store, "--port", str(yport), "--no-browser"]
    mcmd = [str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(mport)]
    mcmd += ["--backend-store-uri", mdb, "--workers", "1", "--default-artifact-root", str(root / "art")]
    mcmd += ["--uvicorn-opts", "--timeout-worker-healthcheck 120"]
    with (
        _process(ycmd, f"{yurl}/health/ready", root / "yard.log", env),
        _process(mcmd, f"{murl}/health", root / "mlflow.log", env),
        httpx.Client(timeout=600) as c,
    ):
        eid = str(m_fill["experiment_id"])
        cols = "&".join(f"cols=metrics.m{k}" for k in range(a.side_metrics))
        table = f"{yurl}/ui/experiments/side?n=100&{cols}&cols=params.lr&cols=params.depth&cols=params.opt"
        body = {
            "experiment_ids": [eid], "filter": "", "run_view_type": "ACTIVE_ONLY", "max_results": 100,
            "order_by": ["attributes.start_time DESC"],
        }  # fmt: skip
        first = c.get(table)
        assert first.status_code == 200 and first.text.count('name="run" value=') == 100, first.status_code
        mruns = c.post(f"{murl}/api/2.0/mlflow/runs/search", json=body).json()["runs"]
        assert len(mruns) == 100 and len(mruns[0]["data"]["metrics"]) == a.side_metrics
        deep = [f"run-{i}" for i in range(a.deep)]
        mids = _mlflow_ids(c, murl, eid, deep)
        compare = f"{yurl}/ui/compare?" + "&".join(f"run={i}" for i in deep_ids)

        def history() -> int:
            size = 0
            for rid in mids:
                for k in range(a.side_metrics):
                    q = {"run_id": rid, "metric_key": f"m{k}"}
                    r = c.get(f"{murl}/api/2.0/mlflow/metrics/get-history", params=q)
                    assert r.status_code == 200 and len(r.json()["metrics"]) == a.side_steps
                    size += len(r.content)
            return size

        res: dict[str, list[float]] = {k: [] for k in ("table", "search", "compare", "history")}
        sizes: dict[str, int] = {}
        for _ in range(a.samples):
            for key, fn in (
                ("table", lambda: len(_ok(c.get(table)).content)),
                ("search", lambda: len(_ok(c.post(f"{murl}/api/2.0/mlflow/runs/search", json=body)).content)),
                ("compare", lambda: len(_ok(c.get(compare)).content)),
                ("history", history),
            ):
                t0 = time.perf_counter()
                sizes[key] = fn()
                res[key].append(time.perf_counter() - t0)
    first_compare = res["compare"][0] * 1000  # the first view draws every curve; later ones reuse them
    p50 = {k: statistics.median(v) * 1000 for k, v in res.items()}
    print(f"  median of {a.samples}, alternating; load {os.getloadavg()[0]:.1f}")
    print(
        f"  runs table, 100 runs × all columns   ours {p50['table']:7.1f} ms {sizes['table'] / 1024:6.0f} KB"
        f" | MLflow runs/search {p50['search']:7.1f} ms {sizes['search'] / 1024:6.0f} KB"
        f" | MLflow/ours {p50['search'] / p50['table']:5.1f}x (target >= 10x, ours < 150 ms)"
    )
    print(
        f"  compare {a.deep} runs' curves           ours {p50['compare']:7.1f} ms "
        f"{sizes['compare'] / 1024:6.0f} KB"
        f" | MLflow {a.deep * a.side_metrics} × get-history {p50['history']:7.1f} ms"
        f" {sizes['history'] / 1024:6.0f} KB | MLflow/ours {p50['history'] / p50['compare']:5.1f}x"
        " (target ours < 300 ms)"
    )
    print(
        f"  compare, first view (every curve read and drawn): ours {first_compare:7.1f} ms | MLflow/ours "
        f"{p50['history'] / first_compare:5.1f}x"
    )
    restarts(a, ycmd, yurl, root, env, compare, table, deep_ids, store)


def restarts(
    a: argparse.Namespace,
    ycmd: list[str],
    yurl: str,
    root: Path,
    env: dict[str, str],
    compare: str,
    table: str,
    deep_ids: list[str],
    store: str,
) -> None:
    """The compare's first view in a fresh ``yard ui`` process (nothing drawn in it yet), ``--restarts``
    times each: with no stored copy of the curves (every point read), and with the copies the previous
    view stored (what a user gets after a run ended, or after a server restart); then the kept view."""
    import os

    import httpx

    from server import _process

    others = _our_ids(store, [f"run-{i}" for i in range(a.deep, a.deep + 2)])
    warm = f"{yurl}/ui/compare?" + "&".join(f"run={i}" for i in others)  # two other runs' compare page
    res: dict[str, list[float]] = {"no copies": [], "copies": [], "kept": []}
    for _ in range(a.restarts):
        for case in ("no copies", "copies"):
            if case == "no copies":
                _drop_copies(store, deep_ids)
            with (
                _process(ycmd, f"{yurl}/health/ready", root / "yard.log", env),
                httpx.Client(timeout=600) as c,
            ):
                _ok(c.get(table))  # the process is warm (imports, templates, the session), its curves are not
                _ok(c.get(warm))
                t0 = time.perf_counter()
                _ok(c.get(compare))
                res[case].append(time.perf_counter() - t0)
                if case == "copies":
                    t0 = time.perf_counter()
                    _ok(c.get(compare))
                    res["kept"].append(time.perf_counter() - t0)
    p50 = {k: statistics.median(v) * 1000 for k, v in res.items()}
    print(
        f"  compare first view in a fresh process, median of {a.restarts}: no stored copies "
        f"{p50['no copies']:7.1f} ms | copies stored {p50['copies']:7.1f} ms | kept {p50['kept']:7.1f} ms "
        f"(target < 300 ms); load {os.getloadavg()[0]:.1f}"
    )


def _drop_copies(store: str, run_ids: list[str]) -> None:
    """Delete the stored curve copies of ``run_ids`` (tracking/_curves.py), as a store made before them."""
    from modelyard._workspace import Workspace
    from modelyard.store._schema import metric_curves

    ws = Workspace(store).open()
    gone = metric_curves.delete().where(metric_curves.c.run_id.in_(run_ids))
    ws.store.write(lambda conn: conn.execute(gone))
    ws.close()


def _ok(r: Any) -> Any:
    assert r.status_code == 200, (r.status_code, r.text[:300])
    return r


def _our_ids(store: str, names: list[str]) -> list[str]:
    from modelyard._workspace import Workspace
    from modelyard.tracking._service import TrackingService

    ws = Workspace(store).open()
    found = TrackingService(ws).search_runs(experiment="side", filter="name LIKE 'run-%'", limit=50_000)
    by = {r.name: r.id for r in found}
    ws.close()
    return [by[n] for n in names]


def _mlflow_ids(c: Any, url: str, eid: str, names: list[str]) -> list[str]:
    out = []
    for n in names:
        body = {"experiment_ids": [eid], "filter": f"attributes.run_name = '{n}'", "max_results": 1}
        out.append(c.post(f"{url}/api/2.0/mlflow/runs/search", json=body).json()["runs"][0]["info"]["run_id"])
    return out


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

    from modelyard.webui import _pages

    def kept() -> object:  # the page's reader: curves drawn before are reused while their series stand
        h = _pages._curves(ws.store, ids, keys, False, 0.0, DRAWN_POINTS)
        return [h[(i, k)][1] for i in ids for k in keys if (i, k) in h]

    def kept_cold() -> object:
        _pages._CURVES.clear()
        return kept()

    assert per_call() == one_query() == kept_cold() == kept()
    cpu: dict[str, list[float]] = {"per call": [], "one query": [], "first view": [], "again": []}
    for _ in range(5):
        for name, fn in (
            ("per call", per_call), ("one query", one_query), ("first view", kept_cold), ("again", kept)
        ):  # fmt: skip
            t0 = time.process_time()
            fn()
            cpu[name].append(time.process_time() - t0)
    a, b = statistics.median(cpu["per call"]), statistics.median(cpu["one query"])
    c, d = statistics.median(cpu["first view"]), statistics.median(cpu["again"])
    print(f"  compare's curve reads, {len(ids)} runs × {len(keys)} metrics: CPU per call {a:.3f} s, "
          f"one query {b:.3f} s ({a / b:.2f}x); kept curves: first view {c:.3f} s, again {d:.3f} s "
          f"({b / d:.1f}x less than one query)")  # fmt: skip
    ws.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--store", default=None)
    ap.add_argument("--columns", type=int, default=50, help="columns of the dataset and monitored model")
    ap.add_argument("--windows", type=int, default=200, help="monitoring windows of the model")
    ap.add_argument("--side-runs", type=int, default=10_000, help="side by side with MLflow: runs")
    ap.add_argument("--side-metrics", type=int, default=20)
    ap.add_argument("--side-steps", type=int, default=1_000, help="steps of each metric of the compared runs")
    ap.add_argument("--deep", type=int, default=10, help="runs with every step (the compared ones)")
    ap.add_argument("--side-store", default=None, help="folder of both stores (reused when filled)")
    ap.add_argument("--samples", type=int, default=7)
    ap.add_argument("--restarts", type=int, default=3, help="fresh yard ui processes timing a first compare")
    ap.add_argument("--only-side", action="store_true", help="only the side-by-side section")
    ap.add_argument("--no-side", action="store_true", help="skip the side-by-side section")
    ap.add_argument("--versions", type=int, default=30, help="versions of model wide-clf")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    if not a.no_side:
        side_by_side(a)
    if a.only_side:
        return
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
