"""CPU cost per request of `yard serve`'s app and of the bare echo app, in process (no sockets).

The ASGI apps are called straight from 32 concurrent asyncio callers (uvloop), as uvicorn would
call them, with the bench model of bench/serving.py (LogisticRegression, 20 float features). Two
load-independent measures, since the machine is shared:

* ``time.process_time()`` per request (CPU seconds of this process: another process's load does
  not count, cache and frequency effects still do), interleaved yard / echo rounds;
* ``--callgrind``: instruction counts per request under ``valgrind --tool=callgrind``, counted
  only while the measured requests run (instrumentation toggled by ``callgrind_control``), the
  same total for the same code whatever else the machine does.

    python -W ignore bench/serving_cpu.py [--rounds 5] [--requests 4000]
    python -W ignore bench/serving_cpu.py --callgrind [--requests 1000]
    python -W ignore bench/serving_cpu.py --opcodes [--requests 1000]  # bytecodes per request
    python -W ignore bench/serving_cpu.py --profile   # cProfile of yard's 1-row path, top functions
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, os.environ.get("YARD_BENCH_SRC") or str(ROOT / "src"))  # another tree: a before/after
sys.path.insert(0, str(HERE))

from serving import TRAIN, rows  # noqa: E402  (bench/serving.py: the same model and bodies)

CONCURRENCY = 32


def bodies() -> dict[str, tuple[str, bytes, list[tuple[bytes, bytes]]]]:
    """Each case: path, body and its content headers (the same 100 rows in every 100-row format)."""
    from serving import v2_bodies

    cols = [f"f{i}" for i in range(20)]
    r100 = rows(100)
    js = [(b"content-type", b"application/json")]
    v2_json, (v2_bin, header_len) = v2_bodies(r100)
    return {
        "1 row": ("/v1/models/bench-clf/predict", json.dumps({"records": rows(1)}).encode(), js),
        "100 rows records": ("/v1/models/bench-clf/predict", json.dumps({"records": r100}).encode(), js),
        "100 rows columns": (
            "/v1/models/bench-clf/predict",
            json.dumps({"inputs": {c: [r[c] for r in r100] for c in cols}}).encode(),
            js,
        ),
        "100 rows split": (
            "/v1/models/bench-clf/predict",
            json.dumps({"columns": cols, "data": [list(r.values()) for r in r100]}).encode(),
            js,
        ),
        "100 rows invocations": (
            "/invocations",
            json.dumps(
                {"dataframe_split": {"columns": cols, "data": [list(r.values()) for r in r100]}}
            ).encode(),
            js,
        ),
        "100 rows v2 json": ("/v2/models/bench-clf/infer", v2_json.encode(), js),
        "100 rows v2 binary": (
            "/v2/models/bench-clf/infer",
            v2_bin,
            [
                (b"content-type", b"application/octet-stream"),
                (b"inference-header-content-length", str(header_len).encode()),
            ],
        ),
    }


def echo_app() -> Any:
    from serving_echo import app

    return app


def registered_store() -> str:
    """A store with the bench model registered as bench-clf@production (YARD_BENCH_STORE reuses one)."""
    uri = os.environ.get("YARD_BENCH_STORE")
    if uri:
        return uri
    uri = str(Path(tempfile.mkdtemp(prefix="yard-cpu-")) / "store")
    ns: dict[str, Any] = {}
    exec(TRAIN, ns)
    from modelyard.registry import register_model, set_alias

    mv = register_model(ns["model"], "bench-clf", input_example=ns["X"].head(5), uri=uri)
    set_alias("bench-clf", "production", mv.version, uri=uri)
    return uri


def yard_app(uri: str) -> Any:
    from modelyard.serving import build_app
    from modelyard.serving._server import _freeze_heap

    # a long timeout: under callgrind a request takes 50x longer (the deadline timer is armed all the same)
    app = build_app({"models": {"primary": "bench-clf@production"}, "timeout_ms": 600_000}, uri=uri)
    _freeze_heap()  # as `yard serve` does once the model is loaded
    return app


async def drive(
    app: Any, path: str, body: bytes, n: int, content: list[tuple[bytes, bytes]] | None = None
) -> float:
    """Answer ``n`` requests through ``app`` from CONCURRENCY callers; returns CPU seconds."""
    headers = [
        (b"host", b"127.0.0.1"),
        *(content or [(b"content-type", b"application/json")]),
        (b"content-length", str(len(body)).encode()),
    ]
    message = {"type": "http.request", "body": body, "more_body": False}
    left = [n]
    bad = [0]

    async def caller() -> None:
        while left[0] > 0:
            left[0] -= 1
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 5000),
                "server": ("127.0.0.1", 8080),
            }

            async def receive() -> dict[str, Any]:
                return message

            async def send(msg: dict[str, Any]) -> None:
                if msg["type"] == "http.response.start" and msg["status"] != 200:
                    bad[0] += 1

            await app(scope, receive, send)

    c0 = time.process_time()
    await asyncio.gather(*(caller() for _ in range(CONCURRENCY)))
    cpu = time.process_time() - c0
    if bad[0]:
        raise RuntimeError(f"{bad[0]} answers were not 200")
    return cpu


def run(which: str, names: list[str], n: int, rounds: int, instr: bool = False) -> dict[str, list[float]]:
    import uvloop

    apps: dict[str, Any] = {}
    if which in ("both", "echo"):
        apps["echo"] = echo_app()
    if which in ("both", "yard"):
        apps["yard"] = yard_app(registered_store())
    cases = bodies()
    out: dict[str, list[float]] = {}

    async def main() -> None:
        for app_name, app in apps.items():  # warm-up: the batcher's cost model, caches
            await drive(app, "/echo" if app_name == "echo" else cases["1 row"][0], cases["1 row"][1], 500)
        for _ in range(rounds):
            for app_name, app in apps.items():
                for case in names:
                    if app_name == "echo" and case != "1 row":
                        continue
                    path, body, content = cases[case]
                    if instr:
                        toggle(True)
                    cpu = await drive(app, "/echo" if app_name == "echo" else path, body, n, content)
                    if instr:
                        toggle(False)
                    out.setdefault(f"{app_name} {case}", []).append(cpu / n * 1e6)

    uvloop.run(main())
    return out


def callgrind(n: int, names: list[str]) -> None:
    """Instructions per request under callgrind, counted only while the measured requests run
    (``--instr-atstart=no``; the child turns instrumentation on and off with callgrind_control)."""
    uri = registered_store()
    src = os.environ.get("YARD_BENCH_SRC") or str(ROOT / "src")
    env = {**os.environ, "YARD_BENCH_STORE": uri, "PYTHONHASHSEED": "0", "PYTHONPATH": src}
    print(f"callgrind: {n} requests per case, instructions counted over those requests only", flush=True)
    for app in ("echo", "yard"):
        for case in names:
            if app == "echo" and case != "1 row":
                continue
            with tempfile.TemporaryDirectory() as tmp:
                proc = subprocess.run(
                    [
                        *("valgrind", "--tool=callgrind", "--instr-atstart=no"),
                        f"--callgrind-out-file={tmp}/cg.out",
                        *(sys.executable, "-W", "ignore", __file__, "--only", app, "--case", case),
                        *("--requests", str(n), "--rounds", "1", "--quiet", "--toggle"),
                    ],
                    env=env,
                    capture_output=True,
                    text=True,
                )
                m = re.search(r"Collected : (\d+)", proc.stderr)
                if proc.returncode or not m:
                    raise RuntimeError(proc.stderr[-2000:])
            print(f"  {app} {case:22} {int(m.group(1)) / n:12,.0f} instructions/request", flush=True)


def toggle(on: bool) -> None:
    """Callgrind's instrumentation of this process on or off (when run under callgrind)."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], capture_output=True, check=True
    )


def opcodes(n: int, names: list[str]) -> None:
    """Python bytecode instructions per request executed on the event loop's thread (where the
    request path runs), by ``sys.settrace`` opcode events: a count the machine's load cannot change.
    The model's own predict (C) and the other threads (predict, prediction-log flush) are not in it."""
    import uvloop

    apps = {"echo": echo_app(), "yard": yard_app(registered_store())}
    cases = bodies()
    count = [0]

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            count[0] += 1
        return tracer

    async def main() -> None:
        for app_name, app in apps.items():
            for case in names:
                if app_name == "echo" and case != "1 row":
                    continue
                path, body, content = cases[case]
                path = "/echo" if app_name == "echo" else path
                await drive(app, path, body, 500, content)  # warm
                count[0] = 0
                sys.settrace(tracer)
                await drive(app, path, body, n, content)
                sys.settrace(None)
                print(f"  {app_name} {case:22} {count[0] / n:10,.0f} bytecodes/request", flush=True)

    uvloop.run(main())


def profile(n: int) -> None:
    import cProfile
    import pstats

    import uvloop

    app = yard_app(registered_store())
    path, body, _ = bodies()["1 row"]

    async def main() -> None:
        await drive(app, path, body, 500)
        pr = cProfile.Profile()
        pr.enable()
        await drive(app, path, body, n)
        pr.disable()
        pstats.Stats(pr).sort_stats("tottime").print_stats(35)

    uvloop.run(main())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--callgrind", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--opcodes", action="store_true", help="Python bytecodes per request (settrace)")
    ap.add_argument("--only", choices=["echo", "yard"], default=None)
    ap.add_argument("--case", action="append", default=None)
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument(
        "--toggle", action="store_true", help="(under callgrind) count the measured requests only"
    )
    args = ap.parse_args()
    names = args.case or list(bodies())
    if args.profile:
        profile(args.requests)
        return
    if args.opcodes:
        opcodes(args.requests, names)
        return
    if args.callgrind:
        callgrind(args.requests, names)
        return
    if not args.quiet:
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    out = run(args.only or "both", names, args.requests, args.rounds, args.toggle)
    if args.quiet:
        return
    for name, per in out.items():
        per.sort()
        rounds = ", ".join(f"{x:.1f}" for x in per)
        print(f"  {name:28} CPU µs/request: median {per[len(per) // 2]:7.1f}  (rounds {rounds})")
    if "echo 1 row" in out and "yard 1 row" in out:
        e, y = out["echo 1 row"], out["yard 1 row"]
        print(f"yard - echo (1 row), CPU µs/request: {y[len(y) // 2] - e[len(e) // 2]:.1f}")
    print(f"load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
