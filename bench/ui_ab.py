"""Two versions of ``yard ui`` side by side: the runs table of the same store, old code against new.

    git archive <commit> src | tar -x -C /tmp/old
    python bench/ui_ab.py --old /tmp/old/src --store DIR [--new src] [--samples 60] [--metrics 20]

Starts ``yard ui`` twice over ``--store`` (one process per code tree, ``PYTHONPATH`` set to each ``src``)
and times, alternately from this process over HTTP, the experiment ``side`` (``bench/ui.py``'s
side-by-side store) runs table of 100 runs with every metric and three param columns, the same table with
its default columns, and ``/health/ready`` (the HTTP floor). Prints medians and old/new. Both servers
read the store; neither writes runs, but each opens it: point it at a copy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from server import _free_port  # bench/ is the script's folder: first on sys.path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="the old code's src folder")
    ap.add_argument("--new", default=str(Path(__file__).resolve().parent.parent / "src"))
    ap.add_argument("--store", required=True)
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--metrics", type=int, default=20)
    a = ap.parse_args()
    procs, bases = {}, {}
    try:
        for name, src in (("old", a.old), ("new", a.new)):
            port = _free_port()
            env = {**os.environ, "PYTHONPATH": src}
            cmd = [sys.executable, "-m", "modelyard", "ui", "--uri", a.store, "--port", str(port)]
            cmd.append("--no-browser")
            procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            bases[name] = f"http://127.0.0.1:{port}"
        c = httpx.Client(timeout=60)
        for base in bases.values():
            for _ in range(600):
                try:
                    if c.get(base + "/health/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        cols = "&".join(f"cols=metrics.m{k}" for k in range(a.metrics))
        urls = {
            "table": f"/ui/experiments/side?n=100&{cols}&cols=params.lr&cols=params.depth&cols=params.opt",
            "default": "/ui/experiments/side?n=100",
            "health": "/health/ready",
        }
        res: dict[tuple[str, str], list[float]] = {(k, u): [] for k in bases for u in urls}
        for base in bases.values():
            for path in urls.values():
                assert c.get(base + path).status_code == 200
        for _ in range(a.samples):
            for u, path in urls.items():
                for k, base in bases.items():
                    t0 = time.perf_counter()
                    r = c.get(base + path)
                    res[(k, u)].append(time.perf_counter() - t0)
                    assert r.status_code == 200
        print(f"median of {a.samples}, alternating; load {os.getloadavg()[0]:.1f}")
        for u in urls:
            old, new = (statistics.median(res[(k, u)]) * 1000 for k in bases)
            print(f"  {u:8s} old {old:7.2f} ms  new {new:7.2f} ms  old/new {old / new:5.2f}x")
    finally:
        for p in procs.values():
            p.terminate()
            p.wait()


if __name__ == "__main__":
    main()
