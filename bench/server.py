"""Team server benchmarks: `yard server` side by side with `mlflow server`, in one run, same machine.

    python bench/server.py                 # full sizes, SQLite behind both servers
    python bench/server.py --postgres      # both servers on the real PostgreSQL (a fresh database each)
    python bench/server.py --quick         # small sizes: a smoke run of every code path
    python bench/server.py --no-peer       # skip MLflow even when its virtualenv exists

One run starts a real ``yard server`` subprocess (``python -m modelyard server --workers N``) and a
real ``mlflow server`` (``--serve-artifacts``, same worker count) from the peer virtualenv that
``bench/peers/mlflow.sh`` creates, each on its own fresh store of the same kind, and measures,
printing the load average with each figure and the ratio to the peer:

1. remote metric ingestion through the server, points/s: modelyard's run (``start_run(uri=URL)``,
   ``log_metric`` buffered, from the first call to ``flush()`` answered) and the raw operation
   (``TrackingService(URL).write_metric_columns`` in batches, the columns a flush sends) vs MLflow
   ``MlflowClient.log_batch`` with 1,000 metrics per call (its limit);
2. ``search_runs`` (two clauses + order, 100 results) over 100,000 runs through the server, p50/p95.
   Both stores are filled fast and not timed: ours by bulk inserts into the store the server uses,
   MLflow by one run made through its REST API and cloned row by row into its own tables;
3. 50 concurrent clients (5 processes x 10 threads), each looping over a mix of 60 % metric logging
   (100 points per call), 20 % search (over an experiment of 2,000 runs) and 20 % small artifact
   upload (4 KiB of fresh bytes): operations/s and p99 for both servers;
4. a 1 GiB artifact uploaded and downloaded through the server (the user's path: hash, stream,
   verify) vs a raw HTTP stream on loopback (a bare uvicorn app that discards a PUT body and streams
   bytes on GET; the raw client reads and writes the same files), and the server processes' peak RSS
   (VmHWM, reset before the transfer) to show memory stays flat.

This file imports only the standard library at module level: the MLflow workers run it under the
peer's interpreter, the modelyard workers under this one with ``src/`` on the path.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".scratch"
MLFLOW_VENV = SCRATCH / "peers" / "mlflow"
MLFLOW_PY = MLFLOW_VENV / "bin" / "python"
PG_URL = os.environ.get("YARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
ADMIN = "yard_00112233445566aa_" + "b" * 43  # the bootstrap admin token of the benchmark's server

TARGET_INGEST = 100_000
TARGET_INGEST_RATIO = 20.0
TARGET_SEARCH_P50 = 0.100
TARGET_STREAM_RATIO = 0.5


def _load_tracking_bench() -> Any:
    """bench/tracking.py by path (the same seeded runs and query); bench/ is not put on sys.path,
    where its data.py, serving.py... would shadow top-level modules of other packages."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_tracking", HERE / "tracking.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_tb = _load_tracking_bench()
METRIC_KEYS = _tb.METRIC_KEYS
SEARCH_FILTER: str = _tb.SEARCH_FILTER
SEARCH_LIMIT: int = _tb.SEARCH_LIMIT
SEARCH_ORDER: str = _tb.SEARCH_ORDER
expected_matches = _tb.expected_matches
run_data = _tb.run_data
MLFLOW_ORDER = "metrics.acc DESC"


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    if not s:
        return float("nan")
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def _load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


# -- modelyard workers (this interpreter, src/ on the path) -------------------------------------
def ours_ingest_run(url: str, store: str, n: int) -> dict:
    import modelyard as yard

    keys = METRIC_KEYS
    run = yard.start_run(experiment="ingest", name="run-path", capture_env=False, uri=url)
    log = run.log_metric
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        log(keys[i % 4], i * 1e-6, step=i // 4)
    t_logged = time.perf_counter()
    run.flush()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    run.end()
    _check_count(store, run.id, n)
    return {"points": n, "seconds": elapsed, "client_cpu": cpu, "rate": n / elapsed, "log_s": t_logged - t0}


def ours_ingest_raw(url: str, store: str, n: int, batch: int) -> dict:
    from modelyard.tracking._ingest import MetricColumns
    from modelyard.tracking._service import TrackingService

    svc = TrackingService(url)
    rid = svc.create_run(experiment="ingest", name="raw-op").id
    ts = int(time.time() * 1000)
    rows = [(rid, METRIC_KEYS[i % 4], i // 4, i * 1e-6, False, ts) for i in range(n)]
    # the batches as a flush sends them (columns), built before the clock as the rows are
    parts = [
        (MetricColumns.from_rows(rows[i : i + batch]), MetricColumns.from_rows(rows[i : i + batch][-4:]))
        for i in range(0, n, batch)
    ]
    t0, c0 = time.perf_counter(), time.process_time()
    for cols, last in parts:
        svc.write_metric_columns(rid, cols, last)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    svc.end_run(rid)
    _check_count(store, rid, n)
    return {"points": n, "seconds": elapsed, "client_cpu": cpu, "rate": n / elapsed, "batch": batch}


def raw_ingest(path: str, n: int, batch: int) -> dict:
    """The raw limit of section 1 on SQLite: the same rows (run, key, step, value, is_nan, timestamp)
    into a fresh file with our ``metrics`` table (same columns and indexes, same pragmas), by plain
    ``sqlite3.executemany``, one transaction per batch as the server commits one per flush; no HTTP, no
    JSON, no checks. Rows are prepared before the clock, as a client's are."""
    import sqlite3

    import sqlalchemy as sa

    from modelyard.store._schema import metrics

    engine = sa.create_engine(f"sqlite:///{path}")
    metrics.create(engine)
    engine.dispose()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    rid = "0" * 32
    ts = int(time.time() * 1000)
    rows = [(rid, METRIC_KEYS[i % 4], i // 4, i * 1e-6, False, ts) for i in range(n)]
    cols = "run_id, key, step, value, is_nan, timestamp"
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, n, batch):
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO metrics ({cols}) VALUES (?, ?, ?, ?, ?, ?)", rows[i : i + batch])
        con.execute("COMMIT")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    con.close()
    return {"points": n, "seconds": elapsed, "cpu": cpu, "rate": n / elapsed, "batch": batch}


def _check_count(store: str, run_id: str, n: int) -> None:
    import modelyard as yard

    ws = yard.get_workspace(store)
    with ws.store.read() as conn:
        ph = "?" if ws.store.dialect == "sqlite" else "%s"
        got = conn.exec_driver_sql(f"SELECT count(*) FROM metrics WHERE run_id = {ph}", (run_id,)).scalar()
    if got != n:
        raise SystemExit(f"the server stored {got} points of {n}")


def ours_seed(store: str, experiment: str, n_runs: int) -> dict:
    """Bulk-insert ``n_runs`` finished runs into the store the server uses (not timed as a figure)."""
    import modelyard as yard
    from modelyard.store._schema import latest_metrics, metrics, params, runs, tags
    from modelyard.tracking import TrackingService
    from modelyard.tracking._ids import new_run_id, now_ms

    t0 = time.perf_counter()
    ws = yard.get_workspace(store)
    exp_id = TrackingService(ws).get_or_create_experiment(experiment)
    now = now_ms()
    batch: dict[str, list[dict]] = {"runs": [], "params": [], "metrics": [], "latest": [], "tags": []}

    def flush(conn: Any) -> None:
        for table, key in ((runs, "runs"), (params, "params"), (metrics, "metrics")):
            conn.execute(table.insert(), batch[key])
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
        if len(batch["runs"]) == 5000 or i == n_runs - 1:
            ws.store.write(flush)
            batch = {k: [] for k in batch}
    # what `yard gc` and a server start do after a bulk load (PostgreSQL; autovacuum is off here)
    analyzed = ws.store.refresh_statistics()
    ws.close()
    return {"runs": n_runs, "seconds": time.perf_counter() - t0, "analyzed": analyzed}


def ours_search(url: str, experiment: str, repeats: int) -> dict:
    import modelyard as yard

    times: list[float] = []
    cpus: list[float] = []
    res: Any = []
    for _ in range(repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        res = yard.search_runs(
            experiment, filter=SEARCH_FILTER, order_by=[SEARCH_ORDER], limit=SEARCH_LIMIT, uri=url
        )
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    accs = [r.metrics["acc"] for r in res]
    if accs != sorted(accs, reverse=True) or any(
        r.params["lr"] != "0.01" or r.metrics["acc"] <= 0.9 for r in res
    ):
        raise SystemExit("search_runs returned runs out of order or not matching the filter")
    return {"first": times[0], "times": times[1:], "found": len(res), "cpu": statistics.median(cpus[1:])}


def ours_big(url: str, path: str, out_dir: str) -> dict:
    from modelyard.tracking._service import TrackingService

    svc = TrackingService(url)
    rid = svc.create_run(experiment="big", name="big").id
    size = os.path.getsize(path)
    anon = _AnonPeak(os.getpid())
    t0 = time.perf_counter()
    rec = svc.log_artifact(rid, path)
    up = time.perf_counter() - t0
    dest = Path(out_dir) / "ours"
    dest.mkdir()
    t0 = time.perf_counter()
    got = svc.download_artifact(rid, rec.path, dest)
    down = time.perf_counter() - t0
    if got.stat().st_size != size:
        raise SystemExit("the downloaded artifact has the wrong size")
    got.unlink()
    svc.end_run(rid)
    anon.stop()
    from modelyard.blobs._hashing import hash_file

    t0 = time.perf_counter()
    hash_file(Path(path))  # the client's share of the upload: hashing before sending (file now cached)
    hash_s = time.perf_counter() - t0
    return {
        "hash_s": hash_s,
        "client_peak_anon_mb": anon.peak_mb,
        "bytes": size,
        "up_s": up,
        "down_s": down,
        "client_peak_rss_mb": _self_hwm_mb(),
        "digest": rec.digest,
    }


def raw_big(url: str, path: str, out_dir: str) -> dict:
    import httpx

    size = os.path.getsize(path)

    def chunks() -> Iterator[bytes]:
        with open(path, "rb") as fh:
            while data := fh.read(1 << 20):
                yield data

    with httpx.Client(base_url=url, timeout=600) as client:
        t0 = time.perf_counter()
        r = client.put("/sink", content=chunks(), headers={"Content-Length": str(size)})
        up = time.perf_counter() - t0
        if r.status_code != 200 or int(r.text) != size:
            raise SystemExit(f"raw sink answered {r.status_code} {r.text[:200]}")
        t0 = time.perf_counter()
        r = client.put("/file", content=chunks(), headers={"Content-Length": str(size)})
        up_file = time.perf_counter() - t0
        if r.status_code != 200 or int(r.text) != size:
            raise SystemExit(f"raw file sink answered {r.status_code} {r.text[:200]}")
        dest = Path(out_dir) / "raw.bin"
        t0 = time.perf_counter()
        with client.stream("GET", f"/bytes/{size}") as resp, open(dest, "wb") as fh:
            for part in resp.iter_bytes(1 << 20):
                fh.write(part)
        down = time.perf_counter() - t0
    if dest.stat().st_size != size:
        raise SystemExit("the raw download has the wrong size")
    dest.unlink()
    return {"bytes": size, "up_s": up, "up_file_s": up_file, "down_s": down}


def raw_serve(port: int) -> dict:
    """A bare ASGI app on uvicorn: PUT discards the body (answers its length), PUT /file writes it to a
    file in the working directory, fsyncs once and deletes it (the honest limit of an upload that
    stores its bytes, as ours must), GET streams N bytes."""
    import tempfile

    import uvicorn

    block = b"\0" * (1 << 20)

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "PUT":
            n, more = 0, True
            sink = tempfile.NamedTemporaryFile(dir=".", delete=False) if scope["path"] == "/file" else None
            while more:
                msg = await receive()
                data = msg.get("body", b"")
                n += len(data)
                if sink is not None:
                    sink.write(data)
                more = msg.get("more_body", False)
            if sink is not None:
                sink.flush()
                os.fsync(sink.fileno())
                sink.close()
                os.unlink(sink.name)
            body = str(n).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body))],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        size = int(scope["path"].rsplit("/", 1)[-1])
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", b"%d" % size),
                    (b"content-type", b"application/octet-stream"),
                ],
            }
        )
        while size > 0:
            part = block[: min(size, len(block))]
            size -= len(part)
            await send({"type": "http.response.body", "body": part, "more_body": size > 0})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return {}


class _AnonPeak:
    """Samples the largest RssAnon (heap, not mapped files) of a process tree every 20 ms."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kb, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for p in _tree(self.pid):
                try:
                    for line in Path(f"/proc/{p}/status").read_text().splitlines():
                        if line.startswith("RssAnon:"):
                            self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                except OSError:
                    pass
            self._stop.wait(0.02)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mb(self) -> float:
        return self.peak_kb / 1024


def _self_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- MLflow workers (the peer's interpreter) ----------------------------------------------------------
def _mlflow_client(url: str) -> Any:
    import logging

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url)


def _mlflow_exp(client: Any, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    return exp.experiment_id if exp else client.create_experiment(name)


def mlflow_ingest(url: str, n: int, budget: float) -> dict:
    from mlflow.entities import Metric

    client = _mlflow_client(url)
    exp = _mlflow_exp(client, "ingest")
    warm = client.create_run(exp).info.run_id  # first calls outside the clock, as ours does its handshake
    client.log_batch(warm, metrics=[Metric("loss", 0.0, int(time.time() * 1000), 0)])
    rid = client.create_run(exp).info.run_id
    done = 0
    t0 = time.perf_counter()
    while done < n and time.perf_counter() - t0 < budget:
        ts = int(time.time() * 1000)
        batch = [
            Metric(METRIC_KEYS[(done + j) % 4], (done + j) * 1e-6, ts, (done + j) // 4) for j in range(1000)
        ]
        client.log_batch(rid, metrics=batch)
        done += len(batch)
    elapsed = time.perf_counter() - t0
    client.set_terminated(rid)
    return {"points": done, "seconds": elapsed, "rate": done / elapsed}


def mlflow_seed(url: str, backend: str, experiment: str, n_runs: int) -> dict:
    """One run through MLflow's REST API, cloned row by row into its own tables for the others."""
    import sqlalchemy as sa
    from mlflow.entities import Metric, Param, RunTag

    t0 = time.perf_counter()
    client = _mlflow_client(url)
    exp_id = _mlflow_exp(client, experiment)
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
    engine = sa.create_engine(backend)
    md = sa.MetaData()
    names = ("runs", "params", "metrics", "latest_metrics", "tags")
    tables = {t: sa.Table(t, md, autoload_with=engine) for t in names}
    with engine.connect() as conn:
        template = {
            t: [
                dict(r._mapping)
                for r in conn.execute(sa.select(tables[t]).where(tables[t].c.run_uuid == tpl))
            ]
            for t in names
        }
    start0 = template["runs"][0]["start_time"]
    out: dict[str, list[dict]] = {t: [] for t in names}

    def write() -> None:
        with engine.begin() as conn:
            for table in names:  # runs first: the others reference it
                if out[table]:
                    conn.execute(tables[table].insert(), out[table])
                    out[table] = []

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
            value = f"run-{i}" if row["key"] == "mlflow.runName" else t.get(row["key"], row["value"])
            out["tags"].append(dict(row, run_uuid=rid, value=value))
        if len(out["runs"]) == 5000:
            write()
    write()
    engine.dispose()
    return {"runs": n_runs, "seconds": time.perf_counter() - t0, "experiment_id": exp_id}


def mlflow_search(url: str, experiment: str, repeats: int, budget: float) -> dict:
    client = _mlflow_client(url)
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    times: list[float] = []
    res: Any = []
    t_start = time.perf_counter()
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        res = client.search_runs(
            [exp_id], filter_string=SEARCH_FILTER, order_by=[MLFLOW_ORDER], max_results=SEARCH_LIMIT
        )
        times.append(time.perf_counter() - t0)
        if i >= 3 and time.perf_counter() - t_start > budget:
            break
    accs = [r.data.metrics["acc"] for r in res]
    if accs != sorted(accs, reverse=True):
        raise SystemExit("MLflow search_runs returned runs out of order")
    return {"first": times[0], "times": times[1:], "found": len(res)}


def mlflow_big(url: str, path: str, out_dir: str) -> dict:
    client = _mlflow_client(url)
    rid = client.create_run(_mlflow_exp(client, "big")).info.run_id
    size = os.path.getsize(path)
    t0 = time.perf_counter()
    client.log_artifact(rid, path)
    up = time.perf_counter() - t0
    dest = Path(out_dir) / "mlflow"
    dest.mkdir()
    t0 = time.perf_counter()
    got = Path(client.download_artifacts(rid, Path(path).name, str(dest)))
    down = time.perf_counter() - t0
    if got.stat().st_size != size:
        raise SystemExit("MLflow's download has the wrong size")
    got.unlink()
    return {"bytes": size, "up_s": up, "down_s": down}


# -- the mixed-load client (both tools; one process, several threads) -----------------------------
def mix_client(tool: str, url: str, threads: int, search_exp: str, seed: int, tmp: str) -> dict:
    """Set up ``threads`` clients, print READY, read the start time and duration, run the mix."""
    if tool == "ours":
        from modelyard.tracking._service import TrackingService

        def make() -> Any:
            return TrackingService(url)
    else:
        from mlflow.entities import Metric

        def make() -> Any:
            return _mlflow_client(url)

    setups = []
    for k in range(threads):
        c = make()
        if tool == "ours":
            rid = c.create_run(experiment="mix", name=f"client-{seed}-{k}").id
        else:
            rid = c.create_run(_mlflow_exp(c, "mix")).info.run_id
        setups.append((c, rid))
    exp_id = None if tool == "ours" else setups[0][0].get_experiment_by_name(search_exp).experiment_id
    print("READY", flush=True)
    start_at, duration = map(float, sys.stdin.readline().split())
    lat: dict[str, list[float]] = {"log": [], "search": [], "upload": []}
    errors: list[str] = []
    lock = threading.Lock()

    def loop(k: int) -> None:
        c, rid = setups[k]
        rng = random.Random(seed * 1000 + k)
        folder = Path(tmp) / f"c{seed}-{k}"
        folder.mkdir()
        step = 0
        mine: dict[str, list[float]] = {"log": [], "search": [], "upload": []}
        while time.time() < start_at:
            time.sleep(0.005)
        end = start_at + duration
        n = 0
        while time.time() < end:
            r = rng.random()
            kind = "log" if r < 0.6 else "search" if r < 0.8 else "upload"
            if kind == "upload":
                f = folder / f"blob-{n}.bin"
                f.write_bytes(os.urandom(4096))
            ts = int(time.time() * 1000)
            t0 = time.perf_counter()
            try:
                if kind == "log":
                    if tool == "ours":
                        rows = [(rid, "loss", step + j, j * 0.5, False, ts) for j in range(100)]
                        c.store_metric_batch(rid, rows, rows[-1:])  # what a run's flush sends
                    else:
                        c.log_batch(rid, metrics=[Metric("loss", j * 0.5, ts, step + j) for j in range(100)])
                    step += 100
                elif kind == "search":
                    if tool == "ours":
                        c.search_runs(
                            search_exp, filter=SEARCH_FILTER, order_by=[SEARCH_ORDER], limit=SEARCH_LIMIT
                        )
                    else:
                        c.search_runs(
                            [exp_id],
                            filter_string=SEARCH_FILTER,
                            order_by=[MLFLOW_ORDER],
                            max_results=SEARCH_LIMIT,
                        )
                elif tool == "ours":
                    c.log_artifact(rid, f, artifact_path=f"u/{n}")
                else:
                    c.log_artifact(rid, str(f), artifact_path=f"u/{n}")
            except Exception as exc:  # counted and reported: an error is not a fast answer
                with lock:
                    errors.append(f"{kind}: {type(exc).__name__}: {str(exc)[:200]}")
                continue
            mine[kind].append(time.perf_counter() - t0)
            n += 1
        with lock:
            for key, values in mine.items():
                lat[key] += values

    ts_ = [threading.Thread(target=loop, args=(k,)) for k in range(threads)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    return {"lat": lat, "errors": errors}


WORKERS = {
    "ours_ingest_run": ours_ingest_run,
    "ours_ingest_raw": ours_ingest_raw,
    "raw_ingest": raw_ingest,
    "ours_seed": ours_seed,
    "ours_search": ours_search,
    "ours_big": ours_big,
    "raw_big": raw_big,
    "raw_serve": raw_serve,
    "mlflow_ingest": mlflow_ingest,
    "mlflow_seed": mlflow_seed,
    "mlflow_search": mlflow_search,
    "mlflow_big": mlflow_big,
    "mix_client": mix_client,
}


# -- the orchestrator ---------------------------------------------------------------------------------
def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    for k in ("YARD_URI", "YARD_BLOB_URI", "MLFLOW_TRACKING_URI"):
        env.pop(k, None)
    env["YARD_TOKEN"] = ADMIN
    return env


def _cmd(python: str | Path, name: str, *args: object) -> list[str]:
    return [str(python), str(Path(__file__).resolve()), "--worker", name, json.dumps(list(args))]


def run_worker(python: str | Path, name: str, *args: object) -> dict:
    proc = subprocess.run(_cmd(python, name, *args), capture_output=True, text=True, env=_env(), cwd=SCRATCH)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {name} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _process(
    cmd: list[str], ready_url: str, log: Path, env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    import httpx

    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, cwd=SCRATCH
        )
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(ready_url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[:4]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(60)


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
    return out


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a server process and its workers."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def _hwm_mb(pid: int) -> float:
    """The largest VmHWM (peak RSS) among a server process and its workers, in MiB."""
    best = 0
    for p in _tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]))
        except OSError:
            pass
    return best / 1024


def _reset_hwm(pid: int) -> None:
    for p in _tree(pid):
        try:
            Path(f"/proc/{p}/clear_refs").write_text("5")
        except OSError:
            pass


class Backend:
    """Fresh stores of one kind for both servers: two SQLite files, or two new PostgreSQL databases."""

    def __init__(self, kind: str, root: Path) -> None:
        self.kind, self.root, self.dbs = kind, root, []
        if kind == "sqlite":
            self.ours = str(root / "yard")
            self.ours_blobs: str | None = None
            self.mlflow = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
            (root / "mlflow").mkdir(parents=True)
        else:
            import psycopg

            tag = uuid.uuid4().hex[:10]
            self.dbs = [f"yardbench_{tag}", f"mlflowbench_{tag}"]
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for db in self.dbs:
                    conn.execute(f'CREATE DATABASE "{db}"')
            base = PG_URL.rsplit("/", 1)[0]
            self.ours = f"{base}/{self.dbs[0]}"
            self.ours_blobs = str(root / "yard-blobs")
            # the peer venv has psycopg2 (bench/peers/mlflow.sh); SQLAlchemy 2.1's default is psycopg 3
            self.mlflow = f"{base.replace('postgresql://', 'postgresql+psycopg2://')}/{self.dbs[1]}"
        # the store URI a direct writer (seeding, counts) opens: blobs named when they live apart
        self.ours_direct = self.ours + (f"?blob_uri={self.ours_blobs}" if self.ours_blobs else "")

    def analyze(self) -> None:
        """Refresh the peer's PostgreSQL statistics after a bulk fill (autovacuum would, later; it is off
        on this host). Ours are refreshed by the product itself: ``ours_seed`` ends with
        ``MetadataStore.refresh_statistics()``, what `yard gc` and a server start run."""
        if self.dbs:
            import psycopg

            base = PG_URL.rsplit("/", 1)[0]
            for db in self.dbs[1:]:
                with psycopg.connect(f"{base}/{db}", autocommit=True) as conn:
                    conn.execute("ANALYZE")

    def close(self) -> None:
        if self.dbs:
            import psycopg

            with psycopg.connect(PG_URL, autocommit=True) as conn:
                for db in self.dbs:
                    conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _ms(x: float) -> str:
    return f"{x * 1000:,.1f} ms"


def _verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


def _mix(
    tool: str, python: Path | str, url: str, procs: int, threads: int, duration: float, tmp: Path
) -> dict:
    """Start ``procs`` client processes of ``threads`` clients, start them together, merge the figures."""
    ps = [
        subprocess.Popen(
            _cmd(python, "mix_client", tool, url, threads, "mix-search", i, str(tmp)),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=SCRATCH,
        )
        for i in range(procs)
    ]
    for p in ps:
        assert p.stdout is not None
        line = p.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"mix client ({tool}) failed to start:\n{line}{p.communicate()[1][-3000:]}")
    start_at = time.time() + 1.0
    load0 = os.getloadavg()[0]
    results = []
    for p in ps:
        assert p.stdin is not None
        p.stdin.write(f"{start_at} {duration}\n")
        p.stdin.flush()
    for p in ps:
        out, err = p.communicate(timeout=duration + 600)
        if p.returncode != 0:
            raise RuntimeError(f"mix client ({tool}) failed:\n{err[-3000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    lat: dict[str, list[float]] = {"log": [], "search": [], "upload": []}
    errors: list[str] = []
    for r in results:
        for k, v in r["lat"].items():
            lat[k] += v
        errors += r["errors"]
    every = [x for v in lat.values() for x in v]
    return {
        "ops": len(every),
        "rate": len(every) / duration,
        "p50": _pct(every, 50),
        "p99": _pct(every, 99),
        "by_kind": {k: {"n": len(v), "p50": _pct(v, 50), "p99": _pct(v, 99)} for k, v in lat.items()},
        "errors": len(errors),
        "error_samples": errors[:3],
        "load": max(load0, os.getloadavg()[0]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every code path")
    ap.add_argument("--postgres", action="store_true", help=f"both servers on PostgreSQL ({PG_URL})")
    ap.add_argument("--no-peer", action="store_true", help="skip MLflow even when its virtualenv exists")
    ap.add_argument("--workers", type=int, default=2, help="worker processes of each server (default 2)")
    ap.add_argument("--sections", default="1,2,3,4", help="which sections to run (default 1,2,3,4)")
    ap.add_argument("--big-mib", type=int, help="size of section 4's artifact in MiB (default 1024)")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE as JSON")
    ap.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        name, raw = args.worker
        print(json.dumps(WORKERS[name](*json.loads(raw))))
        return 0

    quick = args.quick
    peer = MLFLOW_PY.exists() and not args.no_peer
    sections = {int(s) for s in args.sections.split(",")}
    n_ingest = 50_000 if quick else 1_000_000
    n_search = 2_000 if quick else 100_000
    n_mix_search = 200 if quick else 2_000
    repeats = 5 if quick else 30
    procs, threads = (2, 3) if quick else (5, 10)
    duration = 4.0 if quick else 30.0
    big = (args.big_mib << 20) if args.big_mib else (16 << 20) if quick else (1 << 30)
    out: dict[str, Any] = {}

    SCRATCH.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="server-", dir=SCRATCH))
    backend = Backend("postgresql" if args.postgres else "sqlite", root)
    py = sys.executable
    print(
        "modelyard team server benchmarks"
        + (" (--quick: small sizes, figures not comparable)" if quick else "")
    )
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, {_load()}; backend {backend.kind}; "
        f"{args.workers} server worker(s) each; "
        f"MLflow peer: {'yes' if peer else 'no (run bench/peers/mlflow.sh)'}"
    )
    print()
    try:
        env = _env()
        env["YARD_ADMIN_TOKEN"] = ADMIN
        yport, mport = _free_port(), _free_port()
        ycmd = [py, "-m", "modelyard", "server", "--uri", backend.ours, "--port", str(yport)]
        ycmd += ["--workers", str(args.workers), "--log-level", "warning"]
        if backend.ours_blobs:
            ycmd += ["--blob-uri", backend.ours_blobs]
        yurl, murl = f"http://127.0.0.1:{yport}", f"http://127.0.0.1:{mport}"
        with ExitStack() as stack:
            yproc = stack.enter_context(_process(ycmd, f"{yurl}/health/ready", root / "yard-server.log", env))
            mproc = None
            if peer:
                mcmd = [str(MLFLOW_VENV / "bin" / "mlflow"), "server", "--host", "127.0.0.1"]
                mcmd += ["--port", str(mport), "--backend-store-uri", backend.mlflow, "--serve-artifacts"]
                mcmd += ["--artifacts-destination", str(root / "mlflow" / "artifacts")]
                mcmd += ["--workers", str(args.workers)]
                # uvicorn kills a worker that misses its 5 s health ping: on a busy machine MLflow's
                # workers (seconds of imports) were killed and restarted in a loop; give them time
                mcmd += ["--uvicorn-opts", "--timeout-worker-healthcheck 120"]
                mproc = stack.enter_context(_process(mcmd, f"{murl}/health", root / "mlflow-server.log", env))
            peer_url = murl if peer else None
            if 1 in sections:
                out["ingest"] = section_ingest(py, yurl, peer_url, backend, n_ingest, quick, yproc.pid)
            if 2 in sections:
                out["search"] = section_search(py, yurl, peer_url, backend, n_search, repeats, quick)
            if 3 in sections:
                out["mix"] = section_mix(
                    py, yurl, peer_url, backend, n_mix_search, procs, threads, duration, root
                )
            if 4 in sections:
                out["big"] = section_big(py, yurl, peer_url, yproc, mproc, big, root)
    finally:
        backend.close()
        shutil.rmtree(root, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def section_ingest(
    py: str, yurl: str, murl: str | None, backend: Backend, n: int, quick: bool, server_pid: int
) -> dict:
    res: dict[str, Any] = {}
    print(f"[1] remote metric ingestion through the server: {n:,} points per client (one client at a time)")
    run = res["run"] = run_worker(py, "ours_ingest_run", yurl, backend.ours_direct, n)
    run["load"] = os.getloadavg()[0]
    print(
        f"    modelyard start_run(uri=URL)+log_metric+flush {_n(run['rate']):>10} points/s  "
        f"({run['seconds']:.2f} s, client CPU {run['client_cpu']:.2f} s; "
        f"{_verdict(run['rate'] >= TARGET_INGEST)} >= {TARGET_INGEST:,}; "
        f"{_load()})"
    )
    cpu0 = _cpu_s(server_pid)
    raw = res["raw"] = run_worker(py, "ours_ingest_raw", yurl, backend.ours_direct, n, 50_000)
    raw["load"], raw["server_cpu"] = os.getloadavg()[0], _cpu_s(server_pid) - cpu0
    print(
        f"    modelyard TrackingService.write_metric_columns {_n(raw['rate']):>10} points/s  "
        f"({raw['seconds']:.2f} s, batches of {raw['batch']:,}; server CPU {raw['server_cpu']:.2f} s "
        f"= {_n(n / raw['server_cpu'])} points per server CPU-second, client CPU {raw['client_cpu']:.2f} s; "
        f"{_load()})"
    )
    if backend.kind == "sqlite":  # the honest limit at this load, measured in the same run
        lim = res["raw_limit"] = run_worker(py, "raw_ingest", str(backend.root / "raw-metrics.db"), n, 50_000)
        lim["load"] = os.getloadavg()[0]
        res["of_raw_run"], res["of_raw_op"] = run["rate"] / lim["rate"], raw["rate"] / lim["rate"]
        print(
            f"    raw sqlite3.executemany, same rows+table   {_n(lim['rate']):>10} points/s  "
            f"({lim['seconds']:.2f} s, {lim['cpu']:.2f} s CPU, a transaction per 50,000; {_load()})"
        )
        res["cpu_of_raw"] = lim["cpu"] / raw["server_cpu"]
        print(
            f"    modelyard through the server / raw, wall: {res['of_raw_run']:.2f} (run path), "
            f"{res['of_raw_op']:.2f} (raw op); CPU (raw CPU / server CPU, load-independent): "
            f"{res['cpu_of_raw']:.2f}"
        )
    if murl:
        ml = res["mlflow"] = run_worker(MLFLOW_PY, "mlflow_ingest", murl, n, 3.0 if quick else 20.0)
        ml["load"] = os.getloadavg()[0]
        best = max(run["rate"], raw["rate"])
        res["ratio_run"], res["ratio_raw"] = run["rate"] / ml["rate"], raw["rate"] / ml["rate"]
        print(
            f"    MLflow MlflowClient.log_batch (1,000/call) {_n(ml['rate']):>10} points/s  "
            f"({ml['points']:,} points in {ml['seconds']:.1f} s; {_load()})"
        )
        print(
            f"    ratio modelyard/MLflow: run path {res['ratio_run']:,.1f}x, "
            f"raw op {res['ratio_raw']:,.1f}x  "
            f"({_verdict(best / ml['rate'] >= TARGET_INGEST_RATIO)} >= {TARGET_INGEST_RATIO:.0f}x)"
        )
    print()
    return res


def section_search(
    py: str, yurl: str, murl: str | None, backend: Backend, n_runs: int, repeats: int, quick: bool
) -> dict:
    res: dict[str, Any] = {}
    expect = expected_matches(n_runs)
    seed = res["ours_seed"] = run_worker(py, "ours_seed", backend.ours_direct, "search", n_runs)
    print(
        f"[2] search_runs through the server over {n_runs:,} runs x 5 params x 5 metrics: filter "
        f"{SEARCH_FILTER!r}, order {SEARCH_ORDER!r}, limit {SEARCH_LIMIT} ({expect} returned)"
    )
    if murl:
        ms = res["mlflow_seed"] = run_worker(MLFLOW_PY, "mlflow_seed", murl, backend.mlflow, "search", n_runs)
    backend.analyze()
    s = res["ours"] = run_worker(py, "ours_search", yurl, "search", repeats)
    if s["found"] != expect:
        raise SystemExit(f"modelyard search_runs found {s['found']} runs, expected {expect}")
    s.update(p50=_pct(s["times"], 50), p95=_pct(s["times"], 95), load=os.getloadavg()[0])
    print(
        f"    modelyard search_runs  p50 {_ms(s['p50']):>10}  p95 {_ms(s['p95']):>10}  ({len(s['times'])} "
        f"queries after one warm-up of {_ms(s['first'])}; {_verdict(s['p50'] < TARGET_SEARCH_P50)} p50 < "
        f"{_ms(TARGET_SEARCH_P50)}; seeded directly in {seed['seconds']:.0f} s; {_load()})"
    )
    # where the time goes: the same query in-process on the store the server uses (no HTTP, no JSON)
    d = res["direct"] = run_worker(py, "ours_search", backend.ours_direct, "search", repeats)
    d.update(p50=_pct(d["times"], 50), p95=_pct(d["times"], 95), load=os.getloadavg()[0])
    print(
        f"    (the same query in-process on the store, no server: p50 {_ms(d['p50'])}, p95 {_ms(d['p95'])}, "
        f"{_ms(d['cpu'])} CPU per query; the server adds {_ms(s['p50'] - d['p50'])} at p50; {_load()})"
    )
    if murl:
        m = res["mlflow"] = run_worker(
            MLFLOW_PY, "mlflow_search", murl, "search", repeats, 10.0 if quick else 120.0
        )
        if m["found"] != expect:
            raise SystemExit(f"MLflow search_runs found {m['found']} runs, expected {expect}")
        m.update(p50=_pct(m["times"], 50), p95=_pct(m["times"], 95), load=os.getloadavg()[0])
        res["ratio_p50"] = m["p50"] / s["p50"]
        print(
            f"    MLflow search_runs     p50 {_ms(m['p50']):>10}  p95 {_ms(m['p95']):>10}  "
            f"({len(m['times'])} queries after a warm-up of {_ms(m['first'])}; the same {n_runs:,} runs, "
            f"seeded by cloning one "
            f"API-made run in its tables in {ms['seconds']:.0f} s; {_load()})"
        )
        print(f"    ratio MLflow/modelyard p50 {res['ratio_p50']:,.1f}x")
    print()
    return res


def section_mix(
    py: str,
    yurl: str,
    murl: str | None,
    backend: Backend,
    n_search: int,
    procs: int,
    threads: int,
    duration: float,
    root: Path,
) -> dict:
    res: dict[str, Any] = {}
    clients = procs * threads
    run_worker(py, "ours_seed", backend.ours_direct, "mix-search", n_search)
    if murl:
        run_worker(MLFLOW_PY, "mlflow_seed", murl, backend.mlflow, "mix-search", n_search)
    backend.analyze()
    print(
        f"[3] {clients} concurrent clients ({procs} processes x {threads} threads) "
        f"for {duration:.0f} s each: "
        f"60 % log 100 points, 20 % search over {n_search:,} runs, 20 % upload 4 KiB of fresh bytes"
    )
    tools = [("ours", py, yurl)] + ([("mlflow", MLFLOW_PY, murl)] if murl else [])
    for tool, python, url in tools:
        tmp = root / f"mix-{tool}"
        tmp.mkdir()
        r = res[tool] = _mix(tool, python, str(url), procs, threads, duration, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        kinds = ", ".join(f"{k} {v['n']:,} p99 {_ms(v['p99'])}" for k, v in r["by_kind"].items())
        label = "modelyard" if tool == "ours" else "MLflow   "
        print(
            f"    {label} {r['rate']:>8,.1f} ops/s  p50 {_ms(r['p50']):>9}  p99 {_ms(r['p99']):>10}  "
            f"({kinds}; errors {r['errors']}; load {r['load']:.1f})"
        )
        if r["errors"]:
            print(f"      errors, e.g.: {r['error_samples']}")
    if murl:
        o, m = res["ours"], res["mlflow"]
        res["ratio_rate"], res["ratio_p99"] = o["rate"] / m["rate"], m["p99"] / o["p99"]
        print(
            f"    ratio modelyard/MLflow throughput {res['ratio_rate']:,.1f}x; MLflow/modelyard p99 "
            f"{res['ratio_p99']:,.1f}x"
        )
    print()
    return res


def section_big(
    py: str,
    yurl: str,
    murl: str | None,
    yproc: subprocess.Popen[bytes],
    mproc: subprocess.Popen[bytes] | None,
    size: int,
    root: Path,
) -> dict:
    res: dict[str, Any] = {}
    free = shutil.disk_usage(root).free
    if free < 3.5 * size:  # the source, the server's copy and a download exist at once
        raise SystemExit(
            f"section 4 needs about {3.5 * size / 2**30:.1f} GiB of free disk under {root}, "
            f"{free / 2**30:.1f} GiB free: pass --big-mib with a smaller size (and say so)"
        )
    src = root / "big.bin"
    with open(src, "wb") as fh:
        left = size
        while left > 0:
            part = os.urandom(min(left, 16 << 20))
            fh.write(part)
            left -= len(part)
    out_dir = root / "down"
    out_dir.mkdir()
    mib = size / (1 << 20)
    print(f"[4] one {mib:,.0f} MiB artifact up and down through the server vs a raw HTTP stream on loopback")
    rport = _free_port()
    with _process(
        _cmd(py, "raw_serve", rport), f"http://127.0.0.1:{rport}/bytes/0", root / "raw.log", _env()
    ) as rproc:
        raw = res["raw"] = run_worker(py, "raw_big", f"http://127.0.0.1:{rport}", str(src), str(out_dir))
        raw["server_peak_rss_mb"] = _hwm_mb(rproc.pid)
    raw["load"] = os.getloadavg()[0]
    before = _hwm_mb(yproc.pid)
    _reset_hwm(yproc.pid)
    server_anon = _AnonPeak(yproc.pid)
    ours = res["ours"] = run_worker(py, "ours_big", yurl, str(src), str(out_dir))
    server_anon.stop()
    ours["server_peak_anon_mb"] = server_anon.peak_mb
    ours["server_peak_rss_mb"], ours["server_peak_rss_before_mb"] = _hwm_mb(yproc.pid), before
    ours["load"] = os.getloadavg()[0]
    for stored in root.glob(f"yard*/**/{ours['digest'][2:]}*"):  # the scratch store's copy: disk is short
        stored.unlink()
    res["ratio_up"], res["ratio_down"] = raw["up_s"] / ours["up_s"], raw["down_s"] / ours["down_s"]
    res["ratio_up_file"] = raw["up_file_s"] / ours["up_s"]
    for label, r in (("raw uvicorn stream", raw), ("modelyard server", ours)):
        print(
            f"    {label:<19} up {mib / r['up_s']:>7,.0f} MiB/s  down {mib / r['down_s']:>7,.0f} MiB/s  "
            f"(server peak RSS {r['server_peak_rss_mb']:,.0f} MiB; load {r['load']:.1f})"
        )
    print(
        f"    ratio modelyard/raw: upload {res['ratio_up']:.2f}, download {res['ratio_down']:.2f} "
        f"({_verdict(min(res['ratio_up'], res['ratio_down']) >= TARGET_STREAM_RATIO)} "
        f">= {TARGET_STREAM_RATIO}); "
        f"modelyard upload = hash + stream + server-side verify; download = stream + verify + write"
    )
    print(
        f"    the honest upload limit, a raw sink that writes the bytes to a file and fsyncs once: "
        f"{mib / raw['up_file_s']:,.0f} MiB/s; modelyard upload = {res['ratio_up_file']:.2f} of it "
        "(ours also hashes, verifies the digest and renames the blob into place)"
    )
    print(
        f"    modelyard server peak RSS during the transfer {ours['server_peak_rss_mb']:,.0f} MiB "
        f"(VmHWM reset "
        f"before; {ours['server_peak_rss_before_mb']:,.0f} MiB peak over sections before it), client peak "
        f"{ours['client_peak_rss_mb']:,.0f} MiB (VmHWM counts the file's pages blake3 maps to hash it), "
        f"for a {mib:,.0f} MiB file; largest heap (RssAnon) of a server process "
        f"{ours['server_peak_anon_mb']:,.0f} MiB, of the client {ours['client_peak_anon_mb']:,.0f} MiB; "
        f"client hashing alone {ours['hash_s']:.2f} s of the {ours['up_s']:.2f} s upload"
    )
    if murl and mproc is not None:
        _reset_hwm(mproc.pid)
        m = res["mlflow"] = run_worker(MLFLOW_PY, "mlflow_big", murl, str(src), str(out_dir))
        m["server_peak_rss_mb"], m["load"] = _hwm_mb(mproc.pid), os.getloadavg()[0]
        print(
            f"    MLflow server       up {mib / m['up_s']:>7,.0f} MiB/s  "
            f"down {mib / m['down_s']:>7,.0f} MiB/s  "
            f"(server peak RSS {m['server_peak_rss_mb']:,.0f} MiB; load {m['load']:.1f}); "
            f"ratio modelyard/MLflow up {m['up_s'] / ours['up_s']:.2f}, "
            f"down {m['down_s'] / ours['down_s']:.2f}"
        )
    src.unlink()
    print()
    return res


if __name__ == "__main__":
    sys.exit(main())
