"""Cold-start benchmark: `yard serve` time-to-ready vs the floor and vs `mlflow models serve`.

The floor is what any server for the model must do: start Python, import the model's libraries
and read the model (``python -c "import sklearn.linear_model, pickle; pickle.load(...)"``, until
it exits). Measured, interleaved in rotated order each round (so a neighbour's burst hits all):

* floor: that command, launch to exit;
* yard, 1 worker: ``yard serve tiny@production``, launch to the first 200 of ``/health/ready``;
* yard, N workers: ``--workers N``, launch to the first 200, and until N different workers
  answered (each worker has its own request-id prefix; polled with bursts of connections);
* MLflow: ``mlflow models serve -m DIR --env-manager local``, launch to the first 200 of ``/ping``.

Before the rounds, one `yard serve` starts with an empty trusted-type cache (``YARD_CACHE_DIR``
in the scratch folder): a machine's first start, reported apart. Every command runs once before
the rounds (unrecorded) so the OS file cache is warm for all.

    bash bench/peers/mlflow.sh          # MLflow 3.17.2 in bench/.scratch/peers/mlflow (optional)
    python bench/coldstart.py [--rounds 5] [--workers 2] [--skip-mlflow]

Prints medians and ratios (median of the per-round ratios) and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".scratch" / "coldstart"
MLFLOW_VENV = Path(os.environ.get("YARD_BENCH_MLFLOW_VENV", HERE / ".scratch" / "peers" / "mlflow"))
TIMEOUT = 180.0

TRAIN = """
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = pd.DataFrame(rng.normal(size=(200, 4)), columns=["a", "b", "c", "d"])
y = (X["a"] + rng.normal(size=200) * 0.1 > 0).astype(int)
model = LogisticRegression().fit(X, y)
"""
BODY = b'{"records": [{"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(port: int, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str]]:
    """(status, headers) of one request on a fresh connection; (0, {}) when nothing answers."""
    req = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return 0, {}
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not head or not head[0].startswith("HTTP/"):
        return 0, {}
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    return int(head[0].split()[1]), headers


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def launch(cmd: list[str], env: dict[str, str], log: Path) -> tuple[subprocess.Popen, float]:
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    return p, t0


def time_floor(py: str, pkl: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [py, "-c", f"import sklearn.linear_model, pickle; pickle.load(open({str(pkl)!r}, 'rb'))"],
        env=env,
        check=True,
    )
    return time.perf_counter() - t0


def time_ready(cmd: list[str], env: dict[str, str], port: int, path: str, log: Path) -> float:
    p, t0 = launch(cmd, env, log)
    try:
        while time.perf_counter() - t0 < TIMEOUT:
            if p.poll() is not None:
                raise RuntimeError(f"{cmd[:4]} exited with {p.returncode}; see {log}")
            if http(port, "GET", path)[0] == 200:
                return time.perf_counter() - t0
            time.sleep(0.01)
        raise RuntimeError(f"{cmd[:4]} was not ready in {TIMEOUT} s")
    finally:
        stop(p)


def time_workers(cmd: list[str], env: dict[str, str], port: int, n: int, log: Path) -> tuple[float, float]:
    """(first ready, all n workers answered) for a multi-worker `yard serve`."""
    p, t0 = launch(cmd, env, log)
    first = None
    seen: set[str] = set()
    lock = threading.Lock()

    def hit() -> None:
        status, headers = http(port, "POST", "/v1/models/tiny/predict", BODY)
        if status == 200 and "x-request-id" in headers:
            with lock:
                seen.add(headers["x-request-id"][:16])  # the worker's request-id prefix

    try:
        while time.perf_counter() - t0 < TIMEOUT:
            if p.poll() is not None:
                raise RuntimeError(f"yard serve --workers {n} exited with {p.returncode}; see {log}")
            if first is None:
                if http(port, "GET", "/health/ready")[0] == 200:
                    first = time.perf_counter() - t0
                else:
                    time.sleep(0.01)
                    continue
            threads = [threading.Thread(target=hit) for _ in range(8)]  # a burst: busy workers skip some
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if len(seen) >= n:
                return first, time.perf_counter() - t0
            time.sleep(0.01)
        raise RuntimeError(f"only {len(seen)} of {n} workers answered in {TIMEOUT} s")
    finally:
        stop(p)


def median(xs: list[float]) -> float:
    xs = sorted(xs)
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=SCRATCH))
    cache = work / "cache"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "YARD_URI": str(work / "store"),
        "YARD_CACHE_DIR": str(cache),
    }
    py = sys.executable
    load0 = os.getloadavg()

    # the model: registered in our store, pickled for the floor, saved by MLflow from the same code
    subprocess.run(
        [
            py,
            "-W",
            "ignore",
            "-c",
            TRAIN + "import pickle\nfrom modelyard.registry import register_model, set_alias\n"
            "mv = register_model(model, 'tiny', input_example=X.head(3))\n"
            "set_alias('tiny', 'production', mv.version)\n"
            f"pickle.dump(model, open({str(work / 'model.pkl')!r}, 'wb'))\n",
        ],
        env=env,
        check=True,
    )
    shutil.rmtree(cache, ignore_errors=True)  # registering scanned: the first start below must too
    mlflow = not args.skip_mlflow and (MLFLOW_VENV / "bin" / "mlflow").exists()
    if not args.skip_mlflow and not mlflow:
        print(f"No MLflow venv at {MLFLOW_VENV} (bash bench/peers/mlflow.sh): MLflow skipped")
    mdir = work / "mlflow-model"
    menv = {
        "PATH": f"{MLFLOW_VENV / 'bin'}:{os.environ['PATH']}",
        "HOME": str(work),
        "MLFLOW_TRACKING_URI": f"file://{work}/mlruns",
    }
    if mlflow:
        subprocess.run(
            [
                str(MLFLOW_VENV / "bin" / "python"),
                "-c",
                TRAIN + f"import mlflow.sklearn; mlflow.sklearn.save_model(model, {str(mdir)!r})",
            ],
            check=True,
            capture_output=True,
            env=menv,
        )

    def yard_cmd(port: int, workers: int = 1) -> list[str]:
        cmd = [py, "-m", "modelyard", "serve", "tiny@production", "--port", str(port)]
        return cmd + (["--workers", str(workers)] if workers > 1 else [])

    def mlflow_cmd(port: int) -> list[str]:
        mlf = str(MLFLOW_VENV / "bin" / "mlflow")
        return [mlf, "models", "serve", "-m", str(mdir), "--env-manager", "local", "-p", str(port)]

    results: dict[str, list[float]] = {}

    def run(name: str) -> None:
        port = free_port()
        log = work / f"{name.split()[0]}.log"
        if name == "floor":
            results.setdefault(name, []).append(time_floor(py, work / "model.pkl", env))
        elif name == "yard 1 worker":
            results.setdefault(name, []).append(time_ready(yard_cmd(port), env, port, "/health/ready", log))
        elif name == "yard N workers":
            first, every = time_workers(yard_cmd(port, args.workers), env, port, args.workers, log)
            results.setdefault("yard N workers, first", []).append(first)
            results.setdefault("yard N workers, all", []).append(every)
        elif name == "mlflow":
            menv_run = {**menv, "PYTHONPATH": ""}
            results.setdefault(name, []).append(time_ready(mlflow_cmd(port), menv_run, port, "/ping", log))

    # a machine's first start: no trusted-type cache yet (skops scans scikit-learn once)
    port = free_port()
    first_start = time_ready(yard_cmd(port), env, port, "/health/ready", work / "first.log")
    print(f"yard 1 worker, empty cache (first start on a machine): {first_start:.2f} s", flush=True)
    steps = ["floor", "yard 1 worker", "yard N workers"] + (["mlflow"] if mlflow else [])
    for name in steps:  # warm the OS file cache for every command, unrecorded
        run(name)
    results.clear()
    for k in range(args.rounds):
        order = steps[k % len(steps) :] + steps[: k % len(steps)]
        for name in order:
            run(name)
        print(
            f"round {k + 1}/{args.rounds}: "
            + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in results.items())
            + f"  (load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
    load1 = os.getloadavg()

    def ratio(name: str) -> str:
        per = [a / b for a, b in zip(results[name], results["floor"], strict=True)]
        return f"{median(per):5.2f}  (rounds: {', '.join(f'{x:.2f}' for x in per)})"

    print(f"\nmedians over {args.rounds} interleaved rounds; N = {args.workers}")
    for name, vals in results.items():
        print(f"  {name:28} {median(vals):6.2f} s   / floor {ratio(name) if name != 'floor' else ''}")
    n_vs_1 = [a / b for a, b in zip(results["yard N workers, all"], results["yard 1 worker"], strict=True)]
    print(
        f"target: yard 1 worker <= 1.5x floor: {ratio('yard 1 worker')}\n"
        f"target: N workers (all ready) no worse than 1: {median(n_vs_1):.2f} x the 1-worker time "
        f"(rounds: {', '.join(f'{x:.2f}' for x in n_vs_1)})"
    )
    if mlflow:
        per = [m / y for m, y in zip(results["mlflow"], results["yard 1 worker"], strict=True)]
        print(f"mlflow models serve / yard serve (1 worker): {median(per):.2f}x")
    before, after = (" ".join(f"{x:.2f}" for x in load) for load in (load0, load1))
    print(f"load average before: {before}; after: {after}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
