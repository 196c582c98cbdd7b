"""Rollout benchmark: what the traffic policies cost the model server, and the router alone.

One `yard serve --spec` process (one worker, uvicorn + httptools + uvloop) with two versions of
the same scikit-learn model (LogisticRegression, 20 float features); wrk 2 threads / 32
connections, 1-row requests, loopback. The policy is swapped through `PUT /admin/spec` between
runs; rounds alternate the policies so drift of the shared machine hits each alike. Also times
the router's `choose()` per decision in process.

    apt-get install -y wrk
    python bench/rollout.py [--duration 10] [--rounds 2]

Prints requests/s and p99 per policy and the ratio to `single`. The machine is shared: quote ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))  # this checkout, not an installed modelyard

from serving import N_FEATURES, TRAIN, free_port, rows, start, stop, wait_http  # noqa: E402

SCRATCH = HERE / ".scratch" / "rollout"

POLICIES = {
    "single": {"kind": "single", "model": "stable"},
    "single + key": {"kind": "single", "model": "stable"},  # control: wrk sends the key header too
    "canary 50/50": {"kind": "canary", "weights": {"stable": 50, "candidate": 50}},
    "canary sticky": {
        "kind": "canary",
        "weights": {"stable": 50, "candidate": 50},
        "sticky_header": "x-user-id",
    },
    "shadow 100%": {"kind": "shadow", "primary": "stable", "shadow": "candidate"},
    "ab 50/50": {"kind": "ab", "arms": {"stable": 50, "candidate": 50}},
}


def wrk(url: str, body: str, header: str | None, duration: int) -> dict[str, float]:
    import re

    script = SCRATCH / "post.lua"
    lua = (
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        + f"wrk.body = {json.dumps(body)}\n"
    )
    if header:  # a different key per request: counter-based user ids
        lua += (
            'local n = 0\nrequest = function()\n  n = n + 1\n  wrk.headers["' + header + '"] = "user-" .. n\n'
            "  return wrk.format()\nend\n"
        )
    script.write_text(lua)
    out = subprocess.run(
        ["wrk", "-t2", "-c32", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p99": p99, "non2xx": int(bad.group(1)) if bad else 0}


def router_costs(n: int = 200_000) -> dict[str, float]:
    from starlette.datastructures import Headers

    from modelyard.serving import load_spec
    from modelyard.serving._traffic import make_router

    out = {}
    headers = [Headers({"x-user-id": f"user-{i}"}) for i in range(1000)]
    for name, traffic in POLICIES.items():
        if name == "single + key":
            continue
        spec = load_spec({"models": {"stable": "m/1", "candidate": "m/2"}, "traffic": traffic})
        router = make_router(spec.traffic, {"stable": object(), "candidate": object()})
        t0 = time.perf_counter()
        for i in range(n):
            router.choose(None, headers[i % 1000])
        out[name] = (time.perf_counter() - t0) / n * 1e6
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install -y wrk")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    print("router choose() per decision (µs):", {k: round(v, 2) for k, v in router_costs().items()})
    work = Path(tempfile.mkdtemp(prefix="yard-bench-rollout-", dir=SCRATCH))
    store = str(work / "store")
    env = {
        **os.environ,
        "PYTHONPATH": str(HERE.parent / "src"),
        "YARD_URI": store,
        "YARD_SERVE_ADMIN_TOKEN": "bench",
    }
    subprocess.run(
        [
            sys.executable,
            "-c",
            TRAIN
            + f"""
import modelyard as yard
for _ in range(2):
    yard.registry.register_model(model, "bench", input_example=X.head(5), uri={store!r})
""",
        ],
        env=env,
        check=True,
    )
    spec = {
        "models": {"stable": "bench/1", "candidate": "bench/2"},
        "traffic": POLICIES["single"],
        "prediction_log": {"enabled": False},
    }
    (work / "spec.json").write_text(json.dumps(spec))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start(
        [sys.executable, "-m", "modelyard", "serve", "--spec", str(work / "spec.json"), "--port", str(port)],
        env,
        work / "server.log",
    )
    import httpx

    try:
        wait_http(url + "/health/ready", proc)
        body = json.dumps({"records": rows(1)})
        assert len(rows(1)[0]) == N_FEATURES
        results: dict[str, list[dict[str, float]]] = {k: [] for k in POLICIES}
        for _ in range(args.rounds):
            for name, traffic in POLICIES.items():
                r = httpx.put(
                    url + "/admin/spec",
                    headers={"authorization": "Bearer bench"},
                    content=json.dumps({**spec, "traffic": traffic}),
                    timeout=120,
                )
                r.raise_for_status()
                header = "x-user-id" if "sticky" in name or "key" in name or name.startswith("ab") else None
                results[name].append(wrk(url + "/v1/models/bench/predict", body, header, args.duration))
    finally:
        stop(proc)
    base = sum(r["rps"] for r in results["single"]) / len(results["single"])
    print(f"\nwrk -t2 -c32 -d{args.duration}s, 1-row requests, {args.rounds} alternating rounds (mean):")
    print(f"{'policy':<16}{'req/s':>9}{'p99 ms':>9}{'non-2xx':>9}{'vs single':>11}")
    for name, rs in results.items():
        rps = sum(r["rps"] for r in rs) / len(rs)
        p99 = sum(r["p99"] for r in rs) / len(rs)
        print(f"{name:<16}{rps:>9.0f}{p99:>9.1f}{sum(r['non2xx'] for r in rs):>9}{rps / base:>10.2f}x")


if __name__ == "__main__":
    main()
