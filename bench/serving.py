"""Serving benchmark: `yard serve` vs `mlflow models serve` vs a bare ASGI echo app, with wrk.

Same scikit-learn model (LogisticRegression, 20 float features), loopback, wrk 2 threads /
32 connections. Each server runs alone (one at a time), one worker, uvicorn + httptools + uvloop.

    bash bench/peers/mlflow.sh          # MLflow 3.17.2 in bench/.scratch/peers/mlflow
    apt-get install -y wrk
    python bench/serving.py [--duration 20] [--skip-mlflow]

Prints requests/s, p50/p99 and the ratios the issue targets. The machine is shared: quote ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".scratch" / "serving"
MLFLOW_VENV = Path(os.environ.get("YARD_BENCH_MLFLOW_VENV", HERE / ".scratch" / "peers" / "mlflow"))
N_FEATURES = 20
SEED = 0

TRAIN = f"""
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng({SEED})
X = pd.DataFrame(rng.normal(size=(2000, {N_FEATURES})), columns=[f"f{{i}}" for i in range({N_FEATURES})])
w = rng.normal(size={N_FEATURES})
y = (X.to_numpy() @ w + rng.normal(size=2000) > 0).astype(int)
model = LogisticRegression(max_iter=500).fit(X, y)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 300) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)


def wrk(url: str, body: str, *, threads: int, conns: int, duration: int) -> dict[str, float]:
    script = SCRATCH / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    ).stdout

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": rps, "p50": ms("50%"), "p99": ms("99%"), "non2xx": int(errors.group(1)) if errors else 0,
            "socket_errors": sock.group(1) if sock else ""}


def rows(n: int) -> list[dict[str, float]]:
    import numpy as np

    rng = np.random.default_rng(1)
    return [{f"f{i}": round(float(v), 4) for i, v in enumerate(r)} for r in rng.normal(size=(n, N_FEATURES))]


def inprocess(model, sizes: list[int], seconds: float = 2.0) -> dict[int, float]:
    """model.predict throughput (rows/s) on DataFrames of each size: the limit."""
    import pandas as pd

    out = {}
    for n in sizes:
        df = pd.DataFrame(rows(n))
        model.predict(df)
        k, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            model.predict(df)
            k += 1
        out[n] = k * n / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=SCRATCH))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "YARD_URI": str(work / "store")}
    d = args.duration
    results: dict[str, dict[str, float]] = {}

    # the model, registered in our store
    ns: dict = {}
    exec(TRAIN, ns)
    model = ns["model"]
    sys.path.insert(0, str(ROOT / "src"))
    from modelyard.registry import register_model, set_alias

    X = ns["X"]
    mv = register_model(model, "bench-clf", input_example=X.head(5), uri=env["YARD_URI"])
    set_alias("bench-clf", "production", mv.version, uri=env["YARD_URI"])
    one = json.dumps({"records": rows(1)})
    hundred = json.dumps({"records": rows(100)})
    cols = [f"f{i}" for i in range(N_FEATURES)]
    ml_one = json.dumps({"dataframe_split": {"columns": cols, "data": [list(r.values()) for r in rows(1)]}})
    ml_hundred = json.dumps({"dataframe_split": {"columns": cols, "data": [list(r.values()) for r in rows(100)]}})

    # 1. bare echo app under the same server
    port = free_port()
    p = start([sys.executable, str(HERE / "serving_echo.py"), str(port)], env, work / "echo.log")
    try:
        wait_http(f"http://127.0.0.1:{port}/health", p)
        results["echo 1 row"] = wrk(f"http://127.0.0.1:{port}/echo", one, threads=2, conns=32, duration=d)
        results["echo c1"] = wrk(f"http://127.0.0.1:{port}/echo", one, threads=1, conns=1, duration=max(5, d // 2))
    finally:
        stop(p)

    # 2. yard serve
    port = free_port()
    p = start([sys.executable, "-m", "modelyard", "serve", "bench-clf@production", "--port", str(port)], env, work / "yard.log")
    url = f"http://127.0.0.1:{port}/v1/models/bench-clf/predict"
    try:
        wait_http(f"http://127.0.0.1:{port}/health/ready", p)
        import httpx

        assert httpx.post(url, content=one).status_code == 200
        results["yard 1 row"] = wrk(url, one, threads=2, conns=32, duration=d)
        m1 = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        results["yard 100 rows"] = wrk(url, hundred, threads=2, conns=32, duration=d)
        m2 = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        results["yard c1"] = wrk(url, one, threads=1, conns=1, duration=max(5, d // 2))
        results["yard invocations 1 row"] = wrk(f"http://127.0.0.1:{port}/invocations", ml_one, threads=2, conns=32, duration=d)
    finally:
        stop(p)

    def batch_mean(text: str, before: str | None = None) -> float:
        def sums(t: str) -> tuple[float, float]:
            s = re.search(r'^yard_serving_batch_rows_sum\{model="bench-clf",version="1"\} ([\d.e+]+)', t, re.M)
            c = re.search(r'^yard_serving_batch_rows_count\{model="bench-clf",version="1"\} ([\d.e+]+)', t, re.M)
            return float(s.group(1)), float(c.group(1))

        s1, c1 = sums(text)
        if before is not None:
            s0, c0 = sums(before)
            s1, c1 = s1 - s0, c1 - c0
        return s1 / c1 if c1 else float("nan")

    mean1 = batch_mean(m1)
    mean100 = batch_mean(m2, m1)

    # 3. mlflow models serve
    if not args.skip_mlflow:
        py = MLFLOW_VENV / "bin" / "python"
        if not py.exists():
            sys.exit(f"No MLflow venv at {MLFLOW_VENV}: run bash bench/peers/mlflow.sh")
        mdir = work / "mlflow-model"
        subprocess.run([str(py), "-c", TRAIN + f"import mlflow.sklearn; mlflow.sklearn.save_model(model, {str(mdir)!r}, input_example=X.head(5))"],
                       check=True, capture_output=True, env={"PATH": os.environ["PATH"], "HOME": str(work)})
        port = free_port()
        menv = {"PATH": f"{MLFLOW_VENV / 'bin'}:{os.environ['PATH']}", "HOME": str(work), "MLFLOW_TRACKING_URI": f"file://{work}/mlruns"}
        p = start([str(MLFLOW_VENV / "bin" / "mlflow"), "models", "serve", "-m", str(mdir), "--env-manager", "local",
                   "-h", "127.0.0.1", "-p", str(port)], menv, work / "mlflow.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", p)
            results["mlflow 1 row"] = wrk(f"http://127.0.0.1:{port}/invocations", ml_one, threads=2, conns=32, duration=d)
            results["mlflow 100 rows"] = wrk(f"http://127.0.0.1:{port}/invocations", ml_hundred, threads=2, conns=32, duration=d)
        finally:
            stop(p)

    # 4. the limit: in-process predict at the batch sizes the server used
    sizes = sorted({1, max(1, round(mean1)), 100, max(1, round(mean100))})
    limit = inprocess(model, sizes)

    print(f"\n{'run':28} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, r in results.items():
        n = 100 if "100" in name else 1
        print(f"{name:28} {r['rps']:9.0f} {r['rps'] * n:10.0f} {r['p50']:8.2f} {r['p99']:8.2f} {r['non2xx']:8d}")
    y1, y100, e1 = results["yard 1 row"], results["yard 100 rows"], results["echo 1 row"]
    print(f"\nmean rows per predict call: {mean1:.1f} (1-row requests), {mean100:.1f} (100-row requests)")
    print("in-process LogisticRegression.predict rows/s: " + ", ".join(f"{n} rows: {v:,.0f}" for n, v in limit.items()))
    print(f"yard / echo req/s (1 row):                  {y1['rps'] / e1['rps']:.2f}   (target >= 0.5)")
    print(f"yard p99 (1 row, 32 conns):                 {y1['p99']:.1f} ms (target < 25 ms)")
    print(f"yard rows/s / in-process at batch {round(mean1)}:      {y1['rps'] / limit[max(1, round(mean1))]:.2f}   (target >= 0.5)")
    print(f"yard rows/s / in-process at batch {round(mean100)} (100-row): {y100['rps'] * 100 / limit[max(1, round(mean100))]:.2f}")
    t1 = 1000 / limit[1]
    print(f"server overhead at c=1: p50 {results['yard c1']['p50']:.2f} ms - predict {t1:.2f} ms = "
          f"{results['yard c1']['p50'] - t1:.2f} ms (echo app p50 at c=1: {results['echo c1']['p50']:.2f} ms)  (target < 1 ms)")
    if "mlflow 1 row" in results:
        m1r, m100 = results["mlflow 1 row"], results["mlflow 100 rows"]
        print(f"yard / mlflow req/s (1 row):                {y1['rps'] / m1r['rps']:.1f}x  (target >= 20x)")
        print(f"yard / mlflow rows/s (100 rows):            {y100['rps'] / m100['rps']:.1f}x  (target >= 20x)")
        print(f"mlflow p50/p99 (1 row):                     {m1r['p50']:.1f} / {m1r['p99']:.1f} ms")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
