"""Tracking benchmarks: modelyard side by side with MLflow and with raw SQLite, in one run.

    python bench/tracking.py            # full size (about 2-4 minutes on 2 shared cores)
    python bench/tracking.py --quick    # a small smoke run (seconds), same code paths
    python bench/tracking.py --no-peer  # skip MLflow even when its virtualenv exists

Every measurement runs in its own interpreter (a subprocess of this script), one tool at a
time, on the same machine in the same run, and prints the figure and the ratio to its peer:

1. ingestion to commit, the headline: 1,000,000 points through the run's buffered flushes (from
   the first ``log_metric`` to ``flush()`` returning with the rows committed) vs MLflow
   ``log_batch`` (1,000 points per call, each committed) and vs a raw ``sqlite3.executemany`` of
   the same rows into a WAL database in one transaction, with the same table shape and index
   (rows prepared before the clock starts);
2. what a training loop waits on per ``run.log_metric`` call (an append to a buffer) vs MLflow's
   ``log_metric`` (a synchronous write per call): labelled as not like for like;
3. ``search_runs`` with a two-clause filter and an order over 10,000 runs with 5 params and 5
   metrics each (median of repeats) vs MLflow ``search_runs`` over the same runs;
4. ``yard --help`` wall time vs ``mlflow --version`` and ``mlflow --help``.

MLflow runs from the virtualenv that ``bench/peers/mlflow.sh`` creates under
``bench/.scratch/peers/mlflow``; without it the peer columns are skipped.

This file imports only the standard library at module level: the MLflow workers run it under
the peer's interpreter, the modelyard workers under this one with ``src/`` on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".scratch"
MLFLOW_VENV = SCRATCH / "peers" / "mlflow"
MLFLOW_PY = MLFLOW_VENV / "bin" / "python"

TARGET_LOG_RATE = 200_000
TARGET_INGEST_RATIO = 0.5
TARGET_SEARCH_S = 0.050
TARGET_HELP_S = 0.25

SEARCH_FILTER = "metrics.acc > 0.9 and params.lr = '0.01'"
SEARCH_ORDER = "metrics.acc desc"
SEARCH_LIMIT = 100
METRIC_KEYS = ("loss", "acc", "lr", "grad_norm")  # ingestion cycles through these


# -- shared data ---------------------------------------------------------------------------------
def run_data(i: int) -> tuple[dict[str, str], dict[str, float], dict[str, str]]:
    """Params, metrics and tags of search run ``i`` (identical for every tool)."""
    rng = random.Random(i)
    params = {
        "lr": rng.choice(["0.001", "0.003", "0.01", "0.03", "0.1"]),
        "depth": str(rng.randint(2, 12)),
        "optimizer": rng.choice(["adam", "sgd", "rmsprop"]),
        "batch_size": rng.choice(["32", "64", "128", "256"]),
        "seed": str(i),
    }
    metrics = {
        "acc": rng.random(),
        "loss": rng.random() * 2,
        "f1": rng.random(),
        "auc": rng.random(),
        "rmse": rng.random() * 10,
    }
    tags = {"team": rng.choice(["risk", "growth", "ops"])}
    return params, metrics, tags


def expected_matches(n_runs: int) -> int:
    """How many of the seeded runs the search filter matches (capped by the limit)."""
    hits = 0
    for i in range(n_runs):
        p, m, _ = run_data(i)
        hits += m["acc"] > 0.9 and p["lr"] == "0.01"
    return min(hits, SEARCH_LIMIT)


def ingest_rows(run_id: str, n: int) -> list[tuple[str, str, int, float, bool, int]]:
    """The metric rows of the ingestion benchmark, as stored (run_id, key, step, value, is_nan, ts)."""
    ts = int(time.time() * 1000)
    keys = METRIC_KEYS
    return [(run_id, keys[i % 4], i // 4, i * 1e-6, False, ts) for i in range(n)]


# -- modelyard workers ---------------------------------------------------------------------------
def ours_log_rate(store: str, n: int) -> dict:
    import modelyard as yard

    with yard.start_run(experiment="bench", name="log-rate", capture_env=False, uri=store) as run:
        log = run.log_metric
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(n):
            log("loss", i * 1e-6, step=i)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        t1 = time.perf_counter()
    drain = time.perf_counter() - t1
    return {"points": n, "seconds": elapsed, "cpu": cpu, "rate": n / elapsed, "end_seconds": drain}


def ours_ingest(store: str, n: int) -> dict:
    import modelyard as yard

    keys = METRIC_KEYS
    run = yard.start_run(experiment="bench", name="ingest", capture_env=False, uri=store)
    log = run.log_metric
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        log(keys[i % 4], i * 1e-6, step=i // 4)
    t_logged = time.perf_counter()
    run.flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    run.end()
    with run.workspace.store.read() as conn:
        stored = conn.exec_driver_sql("SELECT count(*) FROM metrics WHERE run_id = ?", (run.id,)).scalar()
    if stored != n:
        raise SystemExit(f"ingestion stored {stored} points of {n}")
    return {"points": n, "seconds": elapsed, "cpu": cpu, "rate": n / elapsed, "log_seconds": t_logged - t0}


def _seed_ours(store: str, n_runs: int) -> tuple[float, str]:
    """Seed ``n_runs`` finished runs in bulk through the store API and the schema's tables."""
    import modelyard as yard
    from modelyard.store._schema import latest_metrics, metrics, params, runs, tags
    from modelyard.tracking import TrackingService
    from modelyard.tracking._ids import new_run_id, now_ms

    t0 = time.perf_counter()
    ws = yard.get_workspace(store)
    svc = TrackingService(ws)
    exp_id = svc.get_or_create_experiment("bench-search")
    now = now_ms()
    batch: dict[str, list[dict]] = {"runs": [], "params": [], "metrics": [], "latest": [], "tags": []}

    def flush(conn) -> None:  # type: ignore[no-untyped-def]
        conn.execute(runs.insert(), batch["runs"])
        conn.execute(params.insert(), batch["params"])
        conn.execute(metrics.insert(), batch["metrics"])
        conn.execute(latest_metrics.insert(), batch["latest"])
        conn.execute(tags.insert(), batch["tags"])

    for i in range(n_runs):
        rid = new_run_id()
        p, m, t = run_data(i)
        start = now - (n_runs - i) * 1000
        batch["runs"].append(
            dict(
                id=rid,
                experiment_id=exp_id,
                name=f"run-{i}",
                status="finished",
                start_time=start,
                end_time=start + 500,
                parent_id=None,
                user="bench",
                deleted=False,
                error=None,
                environment="{}",
            )
        )
        batch["params"] += [dict(run_id=rid, key=k, value=v) for k, v in p.items()]
        for k, v in m.items():
            row = dict(run_id=rid, key=k, step=0, value=v, is_nan=False, timestamp=start + 400)
            batch["metrics"].append(row)
            batch["latest"].append(row)
        batch["tags"] += [dict(run_id=rid, key=k, value=v) for k, v in t.items()]
        if len(batch["runs"]) == 2000 or i == n_runs - 1:
            ws.store.write(flush)
            batch = {k: [] for k in batch}
    return time.perf_counter() - t0, "bench-search"


def ours_search(store: str, n_runs: int, repeats: int) -> dict:
    seed_s, exp = _seed_ours(store, n_runs)
    import modelyard as yard

    times, cpus = [], []
    found = 0
    for _ in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        res = yard.search_runs(
            exp, filter=SEARCH_FILTER, order_by=[SEARCH_ORDER], limit=SEARCH_LIMIT, uri=store
        )
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        found = len(res)
    accs = [r.metrics["acc"] for r in res]
    if accs != sorted(accs, reverse=True) or any(
        r.params["lr"] != "0.01" or r.metrics["acc"] <= 0.9 for r in res
    ):
        raise SystemExit("search_runs returned runs out of order or not matching the filter")
    return {
        "runs": n_runs,
        "seed_seconds": seed_s,
        "first": times[0],
        "median": statistics.median(times[1:]),
        "min": min(times[1:]),
        "cpu": statistics.median(cpus[1:]),
        "found": found,
    }


def ours_create_rate(store: str, n: int) -> dict:
    """Runs created through the public API (start_run with params, log_metrics, end)."""
    import modelyard as yard

    yard.init(store)  # open and migrate outside the clock, as MLflow's set_experiment does
    t0 = time.perf_counter()
    for i in range(n):
        p, m, t = run_data(i)
        with yard.start_run(experiment="bench-create", params=p, tags=t, capture_env=False, uri=store) as run:
            run.log_metrics(m)
    elapsed = time.perf_counter() - t0
    return {"runs": n, "seconds": elapsed, "rate": n / elapsed}


# -- raw SQLite worker -----------------------------------------------------------------------------
RAW_DDL = [
    "CREATE TABLE metrics (run_id VARCHAR(32) NOT NULL, key VARCHAR(250) NOT NULL, step BIGINT NOT NULL, "
    "value FLOAT, is_nan BOOLEAN NOT NULL, timestamp BIGINT NOT NULL)",
    "CREATE INDEX ix_metrics_run_id_key_step ON metrics (run_id, key, step)",
]


def raw_ingest(store: str, n: int) -> dict:
    path = Path(store) / "raw.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")  # what modelyard's store uses
    for ddl in RAW_DDL:
        conn.execute(ddl)
    rows = ingest_rows(uuid.uuid4().hex, n)
    t0, c0 = time.perf_counter(), time.process_time()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO metrics (run_id, key, step, value, is_nan, timestamp) VALUES (?, ?, ?, ?, ?, ?)", rows
    )
    conn.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    conn.close()
    return {"points": n, "seconds": elapsed, "cpu": cpu, "rate": n / elapsed}


# -- MLflow workers (run under the peer's interpreter) ---------------------------------------------
def _mlflow(store: str):  # type: ignore[no-untyped-def]
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{Path(store) / 'mlflow.db'}")
    return mlflow


def mlflow_log_rate(store: str, n: int, budget: float) -> dict:
    mlflow = _mlflow(store)
    mlflow.set_experiment("bench")
    with mlflow.start_run():
        done = 0
        t0 = time.perf_counter()
        while done < n and time.perf_counter() - t0 < budget:
            mlflow.log_metric("loss", done * 1e-6, step=done)
            done += 1
        elapsed = time.perf_counter() - t0
    return {"points": done, "seconds": elapsed, "rate": done / elapsed}


def mlflow_batch_rate(store: str, n: int, budget: float) -> dict:
    mlflow = _mlflow(store)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    mlflow.set_experiment("bench")
    client = MlflowClient()
    with mlflow.start_run() as run:
        rid = run.info.run_id
        done = 0
        t0 = time.perf_counter()
        while done < n and time.perf_counter() - t0 < budget:
            ts = int(time.time() * 1000)
            batch = [
                Metric(METRIC_KEYS[(done + j) % 4], (done + j) * 1e-6, ts, (done + j) // 4)
                for j in range(1000)
            ]
            client.log_batch(rid, metrics=batch)
            done += len(batch)
        elapsed = time.perf_counter() - t0
    return {"points": done, "seconds": elapsed, "rate": done / elapsed}


def mlflow_search(store: str, n_runs: int, repeats: int) -> dict:
    """Seed MLflow with the same runs, then time ``search_runs``.

    Creating 10,000 runs through MLflow's API takes many minutes here, so one run is made
    through the API (with its params, metrics and tags) and cloned row by row in MLflow's own
    SQLite tables with the values of every other run; MLflow then reads them as its own.
    """
    _mlflow(store)
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    t0 = time.perf_counter()
    client = MlflowClient()
    exp_id = client.create_experiment("bench-search")
    p0, m0, t0_tags = run_data(0)
    first = client.create_run(exp_id, run_name="run-0")
    ts = int(time.time() * 1000)
    client.log_batch(
        first.info.run_id,
        metrics=[Metric(k, v, ts, 0) for k, v in m0.items()],
        params=[Param(k, v) for k, v in p0.items()],
        tags=[RunTag(k, v) for k, v in t0_tags.items()],
    )
    client.set_terminated(first.info.run_id)
    tpl = first.info.run_id
    conn = sqlite3.connect(Path(store) / "mlflow.db", isolation_level=None)
    conn.row_factory = sqlite3.Row

    def rows_of(table: str) -> list[dict]:
        return [dict(r) for r in conn.execute(f"SELECT * FROM {table} WHERE run_uuid = ?", (tpl,))]

    template = {t: rows_of(t) for t in ("runs", "params", "metrics", "latest_metrics", "tags")}
    out: dict[str, list[dict]] = {t: [] for t in template}
    start0 = template["runs"][0]["start_time"]
    for i in range(1, n_runs):
        rid = uuid.uuid4().hex
        p, m, t = run_data(i)
        for row in template["runs"]:
            r = dict(row, run_uuid=rid, name=f"run-{i}", start_time=start0 - (n_runs - i) * 1000)
            r["end_time"] = r["start_time"] + 500
            if r.get("artifact_uri"):
                r["artifact_uri"] = r["artifact_uri"].replace(tpl, rid)
            out["runs"].append(r)
        for row in template["params"]:
            out["params"].append(dict(row, run_uuid=rid, value=p[row["key"]]))
        for table in ("metrics", "latest_metrics"):
            for row in template[table]:
                out[table].append(dict(row, run_uuid=rid, value=m[row["key"]]))
        for row in template["tags"]:
            value = t.get(row["key"], row["value"])
            if row["key"] == "mlflow.runName":
                value = f"run-{i}"
            out["tags"].append(dict(row, run_uuid=rid, value=value))
    conn.execute("BEGIN")
    for table, rows in out.items():
        if rows:
            cols = list(rows[0])
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
            conn.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
    conn.execute("COMMIT")
    conn.close()
    seed_s = time.perf_counter() - t0

    times, cpus = [], []
    found = 0
    for _ in range(repeats + 1):
        t1, c1 = time.perf_counter(), time.process_time()
        res = client.search_runs(
            [exp_id], filter_string=SEARCH_FILTER, order_by=["metrics.acc DESC"], max_results=SEARCH_LIMIT
        )
        times.append(time.perf_counter() - t1)
        cpus.append(time.process_time() - c1)
        found = len(res)
    accs = [r.data.metrics["acc"] for r in res]
    if accs != sorted(accs, reverse=True):
        raise SystemExit("MLflow search_runs returned runs out of order")
    return {
        "runs": n_runs,
        "seed_seconds": seed_s,
        "first": times[0],
        "median": statistics.median(times[1:]),
        "min": min(times[1:]),
        "cpu": statistics.median(cpus[1:]),
        "found": found,
    }


def mlflow_create_rate(store: str, n: int) -> dict:
    mlflow = _mlflow(store)
    mlflow.set_experiment("bench-create")
    t0 = time.perf_counter()
    for i in range(n):
        p, m, t = run_data(i)
        with mlflow.start_run():
            mlflow.log_params(p)
            mlflow.set_tags(t)
            mlflow.log_metrics(m)
    elapsed = time.perf_counter() - t0
    return {"runs": n, "seconds": elapsed, "rate": n / elapsed}


WORKERS = {
    "ours_log_rate": ours_log_rate,
    "ours_ingest": ours_ingest,
    "ours_search": ours_search,
    "ours_create_rate": ours_create_rate,
    "raw_ingest": raw_ingest,
    "mlflow_log_rate": mlflow_log_rate,
    "mlflow_batch_rate": mlflow_batch_rate,
    "mlflow_search": mlflow_search,
    "mlflow_create_rate": mlflow_create_rate,
}


# -- the orchestrator ------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env.pop("YARD_URI", None)
    env.pop("YARD_BLOB_URI", None)
    return env


def run_worker(python: str | Path, name: str, *args: object) -> dict:
    """Run one worker in a fresh interpreter with its own scratch store; return its figures."""
    SCRATCH.mkdir(parents=True, exist_ok=True)
    store = tempfile.mkdtemp(prefix=f"{name}-", dir=SCRATCH)
    try:
        cmd = [str(python), str(Path(__file__).resolve()), "--worker", name, store, *map(str, args)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=store)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(store, ignore_errors=True)


def wall_times(cmd: list[str], repeats: int) -> dict:
    """Wall time of a command started fresh ``repeats`` times (after one warm-up)."""
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), check=True)
    times, cpus = [], []
    for _ in range(repeats):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), check=True)
        times.append(time.perf_counter() - t0)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    return {"median": statistics.median(times), "min": min(times), "cpu": statistics.median(cpus)}


def yard_command() -> list[str]:
    """The ``yard`` console script of this interpreter, run on this checkout's sources."""
    script = Path(sys.executable).parent / "yard"
    if script.is_file() and script.read_bytes()[:2] == b"#!":
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "modelyard"]


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ms(x: float) -> str:
    return f"{x * 1000:,.1f} ms"


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every code path")
    ap.add_argument("--no-peer", action="store_true", help="skip MLflow even when its virtualenv exists")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        name, store, *rest = args.worker
        print(json.dumps(WORKERS[name](store, *(float(x) if "." in x else int(x) for x in rest))))
        return 0

    quick = args.quick
    peer = MLFLOW_PY.exists() and not args.no_peer
    n_log = 50_000 if quick else 1_000_000
    n_ingest = 50_000 if quick else 1_000_000
    n_search = 500 if quick else 10_000
    repeats = 3 if quick else 15
    n_create = 20 if quick else 200
    help_repeats = 3 if quick else 11
    rounds = 1 if quick else 3
    py = sys.executable
    out: dict[str, dict] = {}

    print(
        f"modelyard tracking benchmarks{' (--quick: small sizes, figures not comparable)' if quick else ''}"
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f}; "
        f"MLflow peer: {'yes' if peer else 'no (run bench/peers/mlflow.sh)'}"
    )
    print()

    # 1. ingestion to commit: the honest headline (every point durably in the database)
    pairs = []
    for _ in range(rounds):  # alternate, so both see the same neighbours on this shared machine
        pairs.append((run_worker(py, "ours_ingest", n_ingest), run_worker(py, "raw_ingest", n_ingest)))
    ing = min((p[0] for p in pairs), key=lambda r: r["seconds"])
    raw = min((p[1] for p in pairs), key=lambda r: r["seconds"])
    ratio = ing["rate"] / raw["rate"]
    round_ratios = [a["rate"] / b["rate"] for a, b in pairs]
    cpu_ratio = statistics.median(b["cpu"] / a["cpu"] for a, b in pairs)
    out["ingest"] = dict(ing, ratio_to_raw=ratio, round_ratios=round_ratios, cpu_ratio=cpu_ratio)
    out["raw_ingest"] = raw
    print(
        f"[1] ingestion to commit of {n_ingest:,} points (first log_metric to flush() committed), "
        f"best of {rounds} alternating rounds"
    )
    print(
        f"    modelyard log_metric+flush   {_n(ing['rate']):>12} points/s   ({ing['seconds']:.2f} "
        f"s, {ing['cpu']:.2f} s CPU; logging loop {ing['log_seconds']:.2f} s)"
    )
    print(
        f"    raw sqlite3.executemany WAL  {_n(raw['rate']):>12} points/s   ({raw['seconds']:.2f} "
        f"s, {raw['cpu']:.2f} s CPU; one transaction, rows prepared)"
    )
    print(
        f"    ratio modelyard/raw          {ratio:>12.2f}            "
        f"({_verdict(ratio >= TARGET_INGEST_RATIO)} >= {TARGET_INGEST_RATIO}; "
        f"per round {', '.join(f'{r:.2f}' for r in round_ratios)}; CPU-time ratio {cpu_ratio:.2f})"
    )
    if peer:
        mb = out["mlflow_batch_rate"] = run_worker(
            MLFLOW_PY, "mlflow_batch_rate", 5000 if quick else 100_000, 1.0 if quick else 5.0
        )
        print(
            f"    MLflow log_batch (1000/call) {_n(mb['rate']):>12} points/s   ({mb['points']:,} "
            f"points, each call committed)   "
            f"ratio modelyard/MLflow {ing['rate'] / mb['rate']:,.1f}x"
        )
    print()

    # 2. per-call log_metric: appends to an in-memory buffer vs MLflow's synchronous write per call.
    # Not like for like (ours is not yet committed when the call returns): shown for what a training loop
    # waits on.
    ours = out["log_rate"] = run_worker(py, "ours_log_rate", n_log)
    print(
        f"[2] what a training loop waits on per log_metric call, {ours['points']:,} calls "
        "(ours: a buffer append, committed later in batches; MLflow: one synchronous write per "
        "call; not like for like)"
    )
    print(
        f"    modelyard run.log_metric     {_n(ours['rate']):>12} points/s   "
        f"({_verdict(ours['rate'] >= TARGET_LOG_RATE)} "
        f">= {TARGET_LOG_RATE:,}; {_n(ours['points'] / ours['cpu'])} points per CPU-second; "
        f"run end drained the buffer in {_ms(ours['end_seconds'])})"
    )
    if peer:
        ml = out["mlflow_log_rate"] = run_worker(
            MLFLOW_PY, "mlflow_log_rate", 300 if quick else 5000, 1.0 if quick else 5.0
        )
        print(
            f"    MLflow log_metric            {_n(ml['rate']):>12} points/s   ({ml['points']:,} calls)   "
            f"ratio modelyard/MLflow {ours['rate'] / ml['rate']:,.0f}x"
        )
    print()

    # 3. search_runs
    s = out["search"] = run_worker(py, "ours_search", n_search, repeats)
    expect = expected_matches(n_search)
    if s["found"] != expect:
        raise SystemExit(f"modelyard search_runs found {s['found']} runs, expected {expect}")
    print(
        f"[3] search_runs over {n_search:,} runs x 5 params x 5 metrics: filter {SEARCH_FILTER!r}, "
        f"order {SEARCH_ORDER!r}, limit {SEARCH_LIMIT} ({expect} returned)"
    )
    print(
        f"    modelyard search_runs        {_ms(s['median']):>12} median of {repeats}   (min "
        f"{_ms(s['min'])}, CPU {_ms(s['cpu'])}, first {_ms(s['first'])}; "
        f"{_verdict(s['median'] < TARGET_SEARCH_S)} < {_ms(TARGET_SEARCH_S)})"
    )
    if peer:
        ms = out["mlflow_search"] = run_worker(MLFLOW_PY, "mlflow_search", n_search, repeats)
        if ms["found"] != expect:
            raise SystemExit(f"MLflow search_runs found {ms['found']} runs, expected {expect}")
        print(
            f"    MLflow search_runs           {_ms(ms['median']):>12} median of {repeats}   (min "
            f"{_ms(ms['min'])}, CPU {_ms(ms['cpu'])}, first {_ms(ms['first'])})   "
            f"ratio MLflow/modelyard {ms['median'] / s['median']:,.1f}x"
        )
    c = out["create_rate"] = run_worker(py, "ours_create_rate", n_create)
    line = (
        f"    (seeding: bulk inserts through the store API; runs made one by one with start_run: "
        f"{c['rate']:,.0f} runs/s"
    )
    if peer:
        mc = out["mlflow_create_rate"] = run_worker(MLFLOW_PY, "mlflow_create_rate", max(5, n_create // 4))
        line += f", MLflow start_run: {mc['rate']:,.1f} runs/s, ratio {c['rate'] / mc['rate']:,.1f}x"
    print(line + ")")
    print()

    # 4. CLI start-up
    h = out["yard_help"] = wall_times([*yard_command(), "--help"], help_repeats)
    bare = out["python_bare"] = wall_times([py, "-c", "pass"], help_repeats)
    print(f"[4] CLI start-up, wall time of a fresh process, median of {help_repeats}")
    print(
        f"    yard --help                  {_ms(h['median']):>12}   (min {_ms(h['min'])}, CPU "
        f"{_ms(h['cpu'])}; "
        f"{_verdict(h['median'] < TARGET_HELP_S)} < {_ms(TARGET_HELP_S)})"
    )
    print(
        f"    python -c pass               {_ms(bare['median']):>12}   (min {_ms(bare['min'])}, "
        f"CPU {_ms(bare['cpu'])}; the interpreter's own floor here)"
    )
    if peer:
        mlflow_bin = str(MLFLOW_VENV / "bin" / "mlflow")
        mv = out["mlflow_version"] = wall_times([mlflow_bin, "--version"], max(3, help_repeats // 3))
        mh = out["mlflow_help"] = wall_times([mlflow_bin, "--help"], max(3, help_repeats // 3))
        print(
            f"    mlflow --version             {_ms(mv['median']):>12}   (min {_ms(mv['min'])})   "
            f"ratio mlflow/yard {mv['median'] / h['median']:,.1f}x"
        )
        print(
            f"    mlflow --help                {_ms(mh['median']):>12}   (min {_ms(mh['min'])})   "
            f"ratio mlflow/yard {mh['median'] / h['median']:,.1f}x"
        )
    print()
    print(
        f"load average at the end {os.getloadavg()[0]:.2f} (the machine is shared: figures are "
        f"noisy, compare ratios)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
