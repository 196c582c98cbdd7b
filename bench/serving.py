"""Serving benchmark: `yard serve` vs `mlflow models serve` vs a bare ASGI echo app, with wrk.

Same scikit-learn model (LogisticRegression, 20 float features), loopback, wrk 2 threads /
32 connections. Each server runs alone (one at a time), one worker, uvicorn + httptools + uvloop.
The servers run interleaved and repeated (``--rounds``, each round in a rotated order: echo,
yard, MLflow, then the in-process limit), so a neighbour's load burst hits all of them about
equally; each server gets 2 s of unrecorded warm-up load; the figures printed are medians over the
rounds, and each ratio is the median of the per-round ratios (both sides measured minutes apart,
not a quarter of an hour).

    bash bench/peers/mlflow.sh          # MLflow 3.17.2 in bench/.scratch/peers/mlflow
    apt-get install -y wrk
    python bench/serving.py [--duration 20] [--rounds 3] [--skip-mlflow]

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
WARMUP = 2  # seconds of unrecorded load on each server before its measurements
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
    return subprocess.Popen(
        cmd, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal (any bytes: decimal escapes)."""
    keep = set(range(32, 127)) - {ord('"'), ord("\\")}
    return '"' + "".join(chr(c) if c in keep else f"\\{c:03d}" for c in data) + '"'


def wrk(
    url: str,
    body: str | bytes,
    *,
    threads: int,
    conns: int,
    duration: int,
    headers: dict[str, str] | None = None,
) -> dict[str, float]:
    script = SCRATCH / "post.lua"
    raw = body.encode() if isinstance(body, str) else body
    lines = ['wrk.method = "POST"']
    for k, v in (headers or {"Content-Type": "application/json"}).items():
        lines.append(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}")
    script.write_text("\n".join([*lines, f"wrk.body = {lua_string(raw)}", ""]))
    out = subprocess.run(
        [
            *("wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--latency", "--timeout", "30s"),
            *("-s", str(script), url),
        ],  # wrk's default 2 s timeout drops a loaded MLflow's slow answers from its req/s
        capture_output=True,
        text=True,
        check=True,
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
    return {
        "rps": rps,
        "p50": ms("50%"),
        "p99": ms("99%"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": sock.group(1) if sock else "",
    }


def rows(n: int) -> list[dict[str, float]]:
    import numpy as np

    rng = np.random.default_rng(1)
    return [{f"f{i}": round(float(v), 4) for i, v in enumerate(r)} for r in rng.normal(size=(n, N_FEATURES))]


def v2_bodies(rows_: list[dict[str, float]]) -> tuple[str, tuple[bytes, int]]:
    """The rows as one V2 ``[rows, features]`` FP64 tensor: a JSON body, and a binary-extension
    body (the JSON header, then the tensor's little-endian bytes) with its header length."""
    import numpy as np

    matrix = np.array([list(r.values()) for r in rows_], dtype="<f8")
    tensor = {"name": "input-0", "shape": list(matrix.shape), "datatype": "FP64"}
    as_json = json.dumps({"inputs": [{**tensor, "data": matrix.ravel().tolist()}]})
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": matrix.nbytes}}]}).encode()
    return as_json, (header + matrix.tobytes(), len(header))


def inprocess(model, sizes: list[int], seconds: float = 1.0) -> dict[int, float]:
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


def batch_sums(text: str) -> tuple[float, float]:
    """(rows, predict calls) so far, from the server's batch-size histogram."""
    s = re.search(r'^yard_serving_batch_rows_sum\{model="bench-clf",version="1"\} ([\d.e+]+)', text, re.M)
    c = re.search(r'^yard_serving_batch_rows_count\{model="bench-clf",version="1"\} ([\d.e+]+)', text, re.M)
    return float(s.group(1)), float(c.group(1))


def mean_batch(before: str, after: str) -> float:
    (s0, c0), (s1, c1) = batch_sums(before), batch_sums(after)
    return (s1 - s0) / (c1 - c0) if c1 > c0 else float("nan")


def median(xs: list[float]) -> float:
    xs = sorted(x for x in xs if x == x)
    if not xs:
        return float("nan")
    k = len(xs) // 2
    return xs[k] if len(xs) % 2 else (xs[k - 1] + xs[k]) / 2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-mlflow", action="store_true")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=SCRATCH))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "YARD_URI": str(work / "store")}
    d = args.duration
    dc1 = max(5, d // 2)

    # the model, registered in our store (and saved by MLflow from the same training code)
    ns: dict = {}
    exec(TRAIN, ns)
    model = ns["model"]
    sys.path.insert(0, str(ROOT / "src"))
    import httpx

    from modelyard.registry import register_model, set_alias

    X = ns["X"]
    mv = register_model(model, "bench-clf", input_example=X.head(5), uri=env["YARD_URI"])
    set_alias("bench-clf", "production", mv.version, uri=env["YARD_URI"])
    one = json.dumps({"records": rows(1)})
    hundred = json.dumps({"records": rows(100)})
    cols = [f"f{i}" for i in range(N_FEATURES)]
    ml_one = json.dumps({"dataframe_split": {"columns": cols, "data": [list(r.values()) for r in rows(1)]}})
    ml_hundred = json.dumps(
        {"dataframe_split": {"columns": cols, "data": [list(r.values()) for r in rows(100)]}}
    )
    # the same 100 rows in the other body formats (measured on yard: rows/s per format)
    r100 = rows(100)
    by_column = {"inputs": {c: [r[c] for r in r100] for c in cols}}
    by_row = {"columns": cols, "data": [list(r.values()) for r in r100]}
    v2_json, (v2_binary, v2_header) = v2_bodies(r100)
    js = {"Content-Type": "application/json"}
    formats: dict[str, tuple[str, str | bytes, dict[str, str]]] = {
        "yard 100 rows, columns": ("predict", json.dumps(by_column), js),
        "yard 100 rows, split": ("predict", json.dumps(by_row), js),
        "yard 100 rows, invocations split": ("invocations", ml_hundred, js),
        "yard 100 rows, v2 json": ("v2", v2_json, js),
        "yard 100 rows, v2 binary": (
            "v2",
            v2_binary,
            {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(v2_header)},
        ),
    }
    mlflow = not args.skip_mlflow
    if mlflow:
        py = MLFLOW_VENV / "bin" / "python"
        if not py.exists():
            sys.exit(f"No MLflow venv at {MLFLOW_VENV}: run bash bench/peers/mlflow.sh")
        mdir = work / "mlflow-model"
        subprocess.run(
            [
                str(py),
                "-c",
                TRAIN + f"import mlflow.sklearn; mlflow.sklearn.save_model(model, {str(mdir)!r}, "
                f"input_example=X.head(5))",
            ],
            check=True,
            capture_output=True,
            env={"PATH": os.environ["PATH"], "HOME": str(work)},
        )

    # one list per figure, one entry per round
    runs: dict[str, list[dict[str, float]]] = {}
    batches: dict[str, list[float]] = {"1 row": [], "100 rows": []}
    limits: list[dict[int, float]] = []

    def record(name: str, r: dict[str, float]) -> None:
        runs.setdefault(name, []).append(r)
        print(
            f"  {name:28} {r['rps']:9.0f} req/s  p50 {r['p50']:7.2f} ms  p99 {r['p99']:7.2f} ms"
            + (f"  non-2xx {r['non2xx']}" if r["non2xx"] else ""),
            flush=True,
        )

    def run_echo() -> None:
        port = free_port()
        p = start([sys.executable, str(HERE / "serving_echo.py"), str(port)], env, work / "echo.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/health", p)
            wrk(f"http://127.0.0.1:{port}/echo", one, threads=2, conns=32, duration=WARMUP)
            record("echo 1 row", wrk(f"http://127.0.0.1:{port}/echo", one, threads=2, conns=32, duration=d))
            record("echo c1", wrk(f"http://127.0.0.1:{port}/echo", one, threads=1, conns=1, duration=dc1))
        finally:
            stop(p)

    def run_yard() -> None:
        port = free_port()
        p = start(
            [sys.executable, "-m", "modelyard", "serve", "bench-clf@production", "--port", str(port)],
            env,
            work / "yard.log",
        )
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/v1/models/bench-clf/predict"
        try:
            wait_http(f"{base}/health/ready", p)
            assert httpx.post(url, content=one).status_code == 200
            wrk(url, one, threads=2, conns=32, duration=WARMUP)
            m0 = httpx.get(f"{base}/metrics").text
            record("yard 1 row", wrk(url, one, threads=2, conns=32, duration=d))
            m1 = httpx.get(f"{base}/metrics").text
            record("yard 100 rows", wrk(url, hundred, threads=2, conns=32, duration=d))
            m2 = httpx.get(f"{base}/metrics").text
            record("yard c1", wrk(url, one, threads=1, conns=1, duration=dc1))
            record(
                "yard invocations 1 row", wrk(f"{base}/invocations", ml_one, threads=2, conns=32, duration=d)
            )
            routes = {
                "predict": url,
                "invocations": f"{base}/invocations",
                "v2": f"{base}/v2/models/bench-clf/infer",
            }
            for name, (route, body, headers) in formats.items():
                check = httpx.post(routes[route], content=body, headers=headers)
                assert check.status_code == 200, (name, check.text[:300])
                record(name, wrk(routes[route], body, threads=2, conns=32, duration=d, headers=headers))
            batches["1 row"].append(mean_batch(m0, m1))
            batches["100 rows"].append(mean_batch(m1, m2))
        finally:
            stop(p)

    def run_mlflow() -> None:
        port = free_port()
        menv = {
            "PATH": f"{MLFLOW_VENV / 'bin'}:{os.environ['PATH']}",
            "HOME": str(work),
            "MLFLOW_TRACKING_URI": f"file://{work}/mlruns",
        }
        p = start(
            [
                str(MLFLOW_VENV / "bin" / "mlflow"),
                "models",
                "serve",
                "-m",
                str(mdir),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            menv,
            work / "mlflow.log",
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/ping", p)
            wrk(f"http://127.0.0.1:{port}/invocations", ml_one, threads=2, conns=32, duration=WARMUP)
            record(
                "mlflow 1 row",
                wrk(f"http://127.0.0.1:{port}/invocations", ml_one, threads=2, conns=32, duration=d),
            )
            record(
                "mlflow 100 rows",
                wrk(f"http://127.0.0.1:{port}/invocations", ml_hundred, threads=2, conns=32, duration=d),
            )
        finally:
            stop(p)

    def run_limit() -> None:
        # the limit: in-process predict at the batch sizes the server formed (its latest round)
        b1 = batches["1 row"][-1] if batches["1 row"] else 1.0
        b100 = batches["100 rows"][-1] if batches["100 rows"] else 100.0
        sizes = sorted({1, max(1, round(b1)), 100, max(1, round(b100))})
        lim = inprocess(model, sizes)
        limits.append(lim)
        print(
            "  in-process predict rows/s: " + ", ".join(f"{n} rows: {v:,.0f}" for n, v in lim.items()),
            flush=True,
        )

    steps = [("echo", run_echo), ("yard", run_yard)] + ([("mlflow", run_mlflow)] if mlflow else [])
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    for k in range(args.rounds):
        order = steps[k % len(steps) :] + steps[: k % len(steps)]
        print(f"round {k + 1}/{args.rounds}: {', '.join(n for n, _ in order)}, in-process", flush=True)
        for _, fn in order:
            fn()
        run_limit()

    def med(name: str, key: str) -> float:
        return median([r[key] for r in runs[name]])

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nmedians over {args.rounds} rounds of {d} s (concurrency 1: {dc1} s); load average now {load}")
    print(f"{'run':28} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name in runs:
        n = 100 if "100" in name else 1
        nonok = sum(r["non2xx"] for r in runs[name])
        print(
            f"{name:28} {med(name, 'rps'):9.0f} {med(name, 'rps') * n:10.0f} "
            f"{med(name, 'p50'):8.2f} {med(name, 'p99'):8.2f} {nonok:8d}"
        )

    def ratio(per_round: list[float]) -> str:
        per_round = [x for x in per_round if x == x]
        return f"{median(per_round):6.2f}  (rounds: {', '.join(f'{x:.2f}' for x in per_round)})"

    y1, y100, e1, yc1 = runs["yard 1 row"], runs["yard 100 rows"], runs["echo 1 row"], runs["yard c1"]
    b1, b100 = batches["1 row"], batches["100 rows"]
    print(
        f"\nmean rows per predict call: {median(b1):.1f} (1-row requests), {median(b100):.1f} "
        f"(100-row requests)"
    )
    print(
        "in-process LogisticRegression.predict on a DataFrame, rows/s (median): "
        + ", ".join(
            f"{n} rows: {median([lim[n] for lim in limits if n in lim]):,.0f}"
            for n in sorted({n for lim in limits for n in lim})
        )
    )
    print(
        f"yard / echo req/s (1 row):                     "
        f"{ratio([y['rps'] / e['rps'] for y, e in zip(y1, e1, strict=True)])}   target >= 0.5"
    )
    print(f"yard p99 (1 row, 32 conns), ms:                {ratio([y['p99'] for y in y1])}   target < 25")
    print(
        f"yard rows/s / in-process at its batch (1 row): "
        f"{ratio([y['rps'] / lim[max(1, round(b))] for y, lim, b in zip(y1, limits, b1, strict=True)])} "
        f"  target >= 0.5"
    )
    r100 = ratio(
        [y["rps"] * 100 / lim[max(1, round(b))] for y, lim, b in zip(y100, limits, b100, strict=True)]
    )
    print(f"yard rows/s / in-process at its batch (100):   {r100}   target >= 0.5")
    over = [y["p50"] - 1000 / lim[1] for y, lim in zip(yc1, limits, strict=True)]
    print(
        f"server overhead at c=1, ms (p50 - predict):    {ratio(over)}   target < 1 "
        f"(echo app p50 at c=1: {med('echo c1', 'p50'):.2f} ms; in-process 1-row predict "
        f"{1000 / median([lim[1] for lim in limits]):.2f} ms)"
    )
    for name in formats:
        per = [f["rps"] / y["rps"] for f, y in zip(runs[name], y100, strict=True)]
        print(f"yard 100 rows {name.split(', ')[-1]:>17} / records, rows/s: {ratio(per)}")
    if "mlflow 1 row" in runs:
        m1r, m100 = runs["mlflow 1 row"], runs["mlflow 100 rows"]
        print(
            f"yard / mlflow req/s (1 row):                   "
            f"{ratio([y['rps'] / m['rps'] for y, m in zip(y1, m1r, strict=True)])}   target >= 20"
        )
        print(
            f"yard / mlflow rows/s (100 rows):               "
            f"{ratio([y['rps'] / m['rps'] for y, m in zip(y100, m100, strict=True)])}   target >= "
            f"20"
        )
        for name in formats:
            per = [f["rps"] / m["rps"] for f, m in zip(runs[name], m100, strict=True)]
            print(f"yard {name.split(', ')[-1]:>17} / mlflow rows/s (100 rows): {ratio(per)}   target >= 20")
        print(
            f"mlflow p50/p99 (1 row), ms:                    {med('mlflow 1 row', 'p50'):.1f} / "
            f"{med('mlflow 1 row', 'p99'):.1f}"
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
