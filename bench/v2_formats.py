"""Body formats of a 100-row request: rows/s of `yard serve` per wire format, with wrk.

Same model and method as bench/serving.py (LogisticRegression on 20 float features, one
uvicorn worker, loopback, wrk 2 threads / 32 connections, 2 s unrecorded warm-up). One server
answers every format; in each round the formats run in a rotated order, so a neighbour's load
burst hits them about equally. Figures are medians over rounds; each ratio (to V2 JSON) is the
median of the per-round ratios.

Formats (100 rows each):
  native records      {"records": [{"f0": ..}, ..]}                    /v1/models/../predict
  native columns      {"columns": [..], "data": [[..], ..]}            /v1/models/../predict
  v2 json             one FP64 [100, 20] tensor, JSON data             /v2/models/../infer
  v2 binary in        the same tensor as 16,000 raw bytes (binary_tensor_data)
  v2 binary in+out    binary input, and the output asked as binary (binary_data_output)

    apt-get install -y wrk
    python bench/v2_formats.py [--duration 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = HERE / ".scratch" / "v2_formats"
sys.path.insert(0, str(HERE))

from serving import N_FEATURES, TRAIN, WARMUP, free_port, median, start, stop, wait_http  # noqa: E402

ROWS = 100


def lua_string(data: bytes) -> str:
    """``data`` as a Lua string literal (every byte escaped: binary bodies survive)."""
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def wrk(url: str, body: bytes, headers: dict[str, str], *, duration: int) -> dict[str, float]:
    script = SCRATCH / "post.lua"
    lines = ['wrk.method = "POST"']
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    lines.append(f"wrk.body = {lua_string(body)}")
    script.write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", str(script), url],
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

    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(found.group(1)) if found else float("nan"),
        "p50": ms("50%"),
        "p99": ms("99%"),
        "non2xx": int(errors.group(1)) if errors else 0,
    }


def bodies(x: list[list[float]]) -> dict[str, tuple[str, bytes, dict[str, str]]]:
    """Each format: (path, body, headers)."""
    import numpy as np

    cols = [f"f{i}" for i in range(N_FEATURES)]
    js = {"content-type": "application/json"}
    tensor = {"name": "input-0", "shape": [ROWS, N_FEATURES], "datatype": "FP64"}
    raw = np.asarray(x, dtype="<f8").tobytes()

    def binary(request: dict) -> tuple[bytes, dict[str, str]]:
        head = json.dumps(request).encode()
        return head + raw, {
            "content-type": "application/octet-stream",
            "inference-header-content-length": str(len(head)),
        }

    bin_in = binary({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]})
    bin_out = binary(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
            "parameters": {"binary_data_output": True},
        }
    )
    return {
        "native records": (
            "/v1/models/bench-clf/predict",
            json.dumps({"records": [dict(zip(cols, r, strict=True)) for r in x]}).encode(),
            js,
        ),
        "native columns": (
            "/v1/models/bench-clf/predict",
            json.dumps({"columns": cols, "data": x}).encode(),
            js,
        ),
        "v2 json": (
            "/v2/models/bench-clf/infer",
            json.dumps({"inputs": [{**tensor, "data": x}]}).encode(),
            js,
        ),
        "v2 binary in": ("/v2/models/bench-clf/infer", *bin_in),
        "v2 binary in+out": ("/v2/models/bench-clf/infer", *bin_out),
    }


def decode_cost(formats: dict[str, tuple[str, bytes, dict[str, str]]], cols: list[str]) -> dict[str, float]:
    """In process, CPU µs to turn each body into the checked payload the model gets (best of 5):
    decode, then the same input checks the server runs before batching."""
    import timeit

    from modelyard.serving._codec import decode_native, loads
    from modelyard.serving._inputs import value_problem
    from modelyard.serving._v2_request import decode_v2

    def one(path: str, body: bytes, headers: dict[str, str]) -> None:
        if path.startswith("/v2"):
            payload, _ = decode_v2(body, headers, cols)
        else:
            payload, _ = decode_native(loads(body), cols)
        for c, v in payload.columns.items():
            if c not in payload.checked:  # as the server's input checks do
                value_problem(c, v)

    out = {}
    n = 200
    for name, args in formats.items():
        out[name] = min(timeit.repeat(lambda a=args: one(*a), number=n, repeat=5)) / n * 1e6  # type: ignore[misc]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=SCRATCH))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "YARD_URI": str(work / "store")}
    ns: dict = {}
    exec(TRAIN, ns)
    sys.path.insert(0, str(ROOT / "src"))
    import httpx
    import numpy as np

    from modelyard.registry import register_model, set_alias

    mv = register_model(ns["model"], "bench-clf", input_example=ns["X"].head(5), uri=env["YARD_URI"])
    set_alias("bench-clf", "production", mv.version, uri=env["YARD_URI"])
    x = np.random.default_rng(1).normal(size=(ROWS, N_FEATURES)).round(6).tolist()
    formats = bodies(x)
    names = list(formats)
    runs: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    port = free_port()
    p = start(
        [sys.executable, "-m", "modelyard", "serve", "bench-clf@production", "--port", str(port)],
        env,
        work / "yard.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/health/ready", p)
        want = None
        for name, (path, body, headers) in formats.items():  # every format answers, the same
            r = httpx.post(base + path, content=body, headers=headers)
            assert r.status_code == 200, (name, r.text)
            if r.headers["content-type"] == "application/octet-stream":
                n = int(r.headers["inference-header-content-length"])
                got = np.frombuffer(r.content[n:], "<i8").tolist()
            else:
                out = r.json()
                got = out["predictions"] if "predictions" in out else out["outputs"][0]["data"]
            want = want or got
            assert got == want, name
        for path, body, headers in formats.values():
            wrk(base + path, body, headers, duration=WARMUP)
        for rnd in range(args.rounds):
            order = names[rnd % len(names) :] + names[: rnd % len(names)]
            print(f"round {rnd + 1}/{args.rounds}", flush=True)
            for name in order:
                path, body, headers = formats[name]
                res = wrk(base + path, body, headers, duration=args.duration)
                runs[name].append(res)
                print(
                    f"  {name:18} {res['rps'] * ROWS:9.0f} rows/s  p50 {res['p50']:6.2f} ms  "
                    f"p99 {res['p99']:6.2f} ms" + (f"  non-2xx {res['non2xx']}" if res["non2xx"] else ""),
                    flush=True,
                )
    finally:
        stop(p)
    cost = decode_cost(formats, [f"f{i}" for i in range(N_FEATURES)])
    load = os.getloadavg()
    print(f"\nmedians over {args.rounds} rounds of {args.duration} s, 100 rows/request; load {load[0]:.2f}")
    base_runs = runs["v2 json"]
    for name in names:
        rs = runs[name]
        ratio = median([r["rps"] / b["rps"] for r, b in zip(rs, base_runs, strict=True)])
        print(
            f"  {name:18} {median([r['rps'] for r in rs]) * ROWS:9.0f} rows/s  "
            f"p99 {median([r['p99'] for r in rs]):6.2f} ms  x{ratio:.2f} of v2 json  "
            f"body {len(formats[name][1])} bytes  decode+check {cost[name]:5.0f} µs in process"
        )


if __name__ == "__main__":
    main()
