"""Drift benchmark: ``yard.drift`` vs Evidently's DataDriftPreset on the same data, side by side.

    bash bench/peers/evidently.sh            # once: Evidently 0.7.23 in bench/.scratch/evidently-venv
    python bench/drift.py                    # 100k and 1M rows x 20 columns, numeric and mixed
    python bench/drift.py --rows 100000 --no-peer

Reference and current have the same row count; 5 of the 20 columns are shifted (in the mixed
variant 15 numeric + 5 categorical columns, 4 numeric and 1 categorical shifted). Both tools read
the same Parquet files. Peak memory is the resident-set high-water mark above the level before
the first timed call (sampled every 5 ms), compared with the in-memory size of the two frames.
Both tools get the same treatment: one warm-up call on 2,000 rows (imports, first-call costs), then
the best of ``--repeats`` timed calls, in the same run on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRATCH = HERE / ".scratch" / "drift"
EVIDENTLY_PY = HERE / ".scratch" / "evidently-venv" / "bin" / "python"

N_COLS = 20


def make_data(rows: int, mixed: bool, seed: int = 42) -> tuple[Path, Path, list[str]]:
    import numpy as np
    import pandas as pd

    SCRATCH.mkdir(parents=True, exist_ok=True)
    tag = f"{rows}_{'mixed' if mixed else 'num'}"
    ref_p, cur_p = SCRATCH / f"ref_{tag}.parquet", SCRATCH / f"cur_{tag}.parquet"
    n_cat = 5 if mixed else 0
    n_num = N_COLS - n_cat
    shifted = [f"num{i}" for i in range(4 if mixed else 5)] + (["cat0"] if mixed else [])
    if not (ref_p.exists() and cur_p.exists()):
        rng = np.random.default_rng(seed)
        cats = np.array([f"c{i}" for i in range(8)])
        base_p = np.linspace(1, 2, 8) / np.linspace(1, 2, 8).sum()
        shift_p = base_p[::-1]
        for path, current in ((ref_p, False), (cur_p, True)):
            data = {}
            for i in range(n_num):
                shift = 0.5 if current and f"num{i}" in shifted else 0.0
                data[f"num{i}"] = rng.normal(shift, 1.0, rows)
            for i in range(n_cat):
                p = shift_p if current and f"cat{i}" in shifted else base_p
                data[f"cat{i}"] = cats[rng.choice(8, rows, p=p)]
            pd.DataFrame(data).to_parquet(path)
    return ref_p, cur_p, shifted


class PeakRSS:
    """Resident-set high-water mark above the level at start, sampled every 5 ms."""

    def __enter__(self) -> PeakRSS:
        self.base = self._rss()
        self.peak = self.base
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._rss())

    @property
    def delta(self) -> int:
        return self.peak - self.base


def run_ours(ref_p: Path, cur_p: Path, repeats: int) -> dict:
    import pandas as pd

    import modelyard as yard

    ref, cur = pd.read_parquet(ref_p), pd.read_parquet(cur_p)
    data_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    yard.drift(
        ref.head(2000), cur.head(2000)
    )  # warm-up (imports, first calls) outside the timing, as for Evidently
    times: list[tuple[float, float]] = []
    with PeakRSS() as mem:  # peak of the first timed call
        t, c = time.perf_counter(), time.process_time()
        report = yard.drift(ref, cur)
        times.append((time.perf_counter() - t, time.process_time() - c))
    for _ in range(repeats - 1):
        t, c = time.perf_counter(), time.process_time()
        yard.drift(ref, cur)
        times.append((time.perf_counter() - t, time.process_time() - c))
    seconds, cpu = min(times)
    # monitoring windows reuse a prepared reference (sorted/counted once): only the window is sorted
    prepared = yard.monitoring.DriftReference(ref)
    yard.drift(prepared, cur)
    t = time.perf_counter()
    warm = yard.drift(prepared, cur)
    warm_seconds = time.perf_counter() - t
    assert warm.drifted_columns == report.drifted_columns
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "warm_seconds": warm_seconds,
        "peak_bytes": mem.delta,
        "data_bytes": data_bytes,
        "drifted": report.drifted_columns,
    }


EVIDENTLY_SCRIPT = r"""
import json, os, sys, threading, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset

def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
repeats = int(sys.argv[3])
Report([DataDriftPreset()]).run(cur.head(2000), ref.head(2000)).dict()  # warm-up, as for modelyard
base = rss(); peak = [base]; stop = threading.Event()
def poll():
    while not stop.wait(0.005):
        peak[0] = max(peak[0], rss())
th = threading.Thread(target=poll, daemon=True); th.start()
times = []
for i in range(repeats):
    t, c = time.perf_counter(), time.process_time()
    snap = Report([DataDriftPreset()]).run(cur, ref)
    res = snap.dict()
    times.append((time.perf_counter() - t, time.process_time() - c))
    if i == 0:
        stop.set(); th.join()  # peak of the first timed call, as for modelyard
seconds, cpu = min(times)
drifted = []
for m in res["metrics"]:
    cfg = m.get("config") or {}
    if not str(cfg.get("type", "")).endswith("ValueDrift"):
        continue
    method, thr, value = str(cfg.get("method", "")), float(cfg["threshold"]), float(m["value"])
    if ("p_value" in method and value < thr) or ("p_value" not in method and value >= thr):
        drifted.append(cfg["column"])
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_bytes": peak[0] - base,
                  "drifted": sorted(drifted)}))
"""


def run_evidently(ref_p: Path, cur_p: Path, repeats: int) -> dict | None:
    if not EVIDENTLY_PY.exists():
        return None
    out = subprocess.run(
        [str(EVIDENTLY_PY), "-c", EVIDENTLY_SCRIPT, str(ref_p), str(cur_p), str(repeats)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        print(out.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--no-peer", action="store_true", help="skip Evidently")
    ap.add_argument("--variants", nargs="*", default=["num", "mixed"], choices=["num", "mixed"])
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed calls per tool after one warm-up (the best is reported; peak memory of the first)",
    )
    args = ap.parse_args()
    print(
        f"both tools: one warm-up call on 2,000 rows, then best of {args.repeats} timed calls; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'data':<22}{'tool':<11}{'seconds':>9}{'cpu s':>8}{'peak MB':>9}{'data MB':>9}{'mem/data':>9} "
        f" same drifted cols"
    )
    for rows in args.rows:
        for variant in args.variants:
            ref_p, cur_p, shifted = make_data(rows, variant == "mixed")
            label = f"{rows:,} x {N_COLS} {variant}"
            ours = run_ours(ref_p, cur_p, args.repeats)
            mb = 1 / 2**20
            print(
                f"{label:<22}{'modelyard':<11}{ours['seconds']:>9.2f}{ours['cpu_seconds']:>8.2f}"
                f"{ours['peak_bytes'] * mb:>9.0f}"
                f"{ours['data_bytes'] * mb:>9.0f}{ours['peak_bytes'] / ours['data_bytes']:>9.2f}  "
                f"{sorted(ours['drifted']) == sorted(shifted)} {ours['drifted']}",
                flush=True,
            )
            print(
                f"{label:<22}{'(prepared reference)':<20}{ours['warm_seconds']:>9.2f} s per window",
                flush=True,
            )
            if args.no_peer:
                continue
            ev = run_evidently(ref_p, cur_p, args.repeats)
            if ev is None:
                print(f"{label:<22}{'evidently':<11} not installed (bash bench/peers/evidently.sh) or failed")
                continue
            print(
                f"{label:<22}{'evidently':<11}{ev['seconds']:>9.2f}{ev['cpu_seconds']:>8.2f}"
                f"{ev['peak_bytes'] * mb:>9.0f}{'':>9}"
                f"{ev['peak_bytes'] / ours['data_bytes']:>9.2f}  "
                f"{sorted(ev['drifted']) == sorted(shifted)} {ev['drifted']}"
            )
            print(
                f"{label:<22}{'ratio':<11}{ev['seconds'] / ours['seconds']:>8.1f}x faster "
                f"({ev['cpu_seconds'] / ours['cpu_seconds']:.1f}x less CPU time), "
                + (
                    f"{ev['peak_bytes'] / ours['peak_bytes']:.1f}x less memory"
                    if ours["peak_bytes"] > 2**20
                    else "memory: ours below 1 MB"
                )
                + "; same drifted columns: "
                f"{sorted(ev['drifted']) == sorted(ours['drifted'])}",
                flush=True,
            )


if __name__ == "__main__":
    main()
