"""Our profile sketches (data/_sketches.py) against Apache DataSketches on the same 1M-value column.

    bash bench/peers/datasketches.sh                 # once: datasketches 5.2.0 in bench/.scratch/ds-venv
    bench/.scratch/ds-venv/bin/python bench/sketches.py [--n 1000000] [--repeat 5]

Distinct count: our HyperLogLog (p=12, vectorized numpy) vs ``hll_sketch(12, HLL_8)`` (one
``update`` call per value: it has no array update). Quantiles: our DDSketch (1 % relative
accuracy) vs ``kll_doubles_sketch(k=200)`` and ``req_floats_sketch(k=12)``, which take numpy
arrays. Both sides get the column in 262,144-value batches, as ProfileBuilder feeds them. Timings
are the best of ``--repeat`` runs (CPU time of this process); accuracy against exact numpy answers.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelyard.data import _sketches as sk

QS = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
BATCH = 262_144


def _best(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    best, out = math.inf, None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        best = min(best, time.process_time() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    try:
        import datasketches as ds
    except ImportError:
        raise SystemExit(
            "datasketches is not installed here: run `bash bench/peers/datasketches.sh` and use its python"
        ) from None
    rng = np.random.default_rng(0)
    n = args.n
    # one numeric column: 200,000 distinct values, lognormal (a long right tail, like amounts)
    pool = np.round(rng.lognormal(3, 1, 200_000), 4)
    x = pool[rng.integers(0, pool.size, n)]
    batches = [x[i : i + BATCH] for i in range(0, n, BATCH)]
    exact_distinct = np.unique(x).size
    exact_q = {q: float(np.quantile(x, q, method="lower")) for q in QS}

    def ours_hll():  # type: ignore[no-untyped-def]
        reg = sk.hll_new()
        for b in batches:
            sk.hll_floats(reg, b)
        return sk.hll_estimate(reg)

    def theirs_hll():  # type: ignore[no-untyped-def]
        h = ds.hll_sketch(12, ds.tgt_hll_type.HLL_8)
        for b in batches:
            for v in b.tolist():
                h.update(v)
        return h.get_estimate()

    def ours_dd():  # type: ignore[no-untyped-def]
        pos: dict[int, int] = {}
        neg: dict[int, int] = {}
        zero = 0
        for b in batches:
            zero += sk.dd_add(pos, neg, b, float(np.abs(b).max()), has_negative=bool(b.min() < 0))
        return {q: sk.dd_quantile(pos, neg, zero, q) for q in QS}

    def theirs_kll():  # type: ignore[no-untyped-def]
        k = ds.kll_doubles_sketch(200)
        for b in batches:
            k.update(b)
        return {q: k.get_quantile(q) for q in QS}

    def theirs_req():  # type: ignore[no-untyped-def]
        r = ds.req_floats_sketch(12)
        for b in batches:
            r.update(b.astype(np.float32))
        return {q: r.get_quantile(q) for q in QS}

    print(f"column: {n:,} float64 values, {exact_distinct:,} distinct; best of {args.repeat}, CPU seconds")
    rows = []
    t_ours_hll, est = _best(ours_hll, args.repeat)
    t_ds_hll, est_ds = _best(theirs_hll, max(1, args.repeat // 2))
    rows.append(
        ("distinct: HLL p=12 (ours)", t_ours_hll, f"{abs(est - exact_distinct) / exact_distinct:.2%} error")
    )
    rows.append(
        (
            "distinct: datasketches hll_sketch(12, HLL_8)",
            t_ds_hll,
            f"{abs(est_ds - exact_distinct) / exact_distinct:.2%} error",
        )
    )

    def qerr(got: dict) -> str:  # type: ignore[type-arg]
        rel = max(abs(got[q] - exact_q[q]) / abs(exact_q[q]) for q in QS)
        ranks = max(abs(float(np.searchsorted(np.sort(x), got[q], side="left")) / n - q) for q in QS)
        return f"max relative value error {rel:.2%}, max rank error {ranks:.2%}"

    t_dd, got = _best(ours_dd, args.repeat)
    rows.append(("quantiles: DDSketch 1% (ours)", t_dd, qerr(got)))
    t_kll, got_kll = _best(theirs_kll, args.repeat)
    rows.append(("quantiles: datasketches kll_doubles_sketch(200)", t_kll, qerr(got_kll)))
    t_req, got_req = _best(theirs_req, args.repeat)
    rows.append(("quantiles: datasketches req_floats_sketch(12)", t_req, qerr(got_req)))
    for label, t, acc in rows:
        print(f"  {label:48s} {t * 1000:8.1f} ms  ({n / t / 1e6:6.1f} M values/s)  {acc}")
    print(f"  -> HLL: datasketches / ours = {t_ds_hll / t_ours_hll:.1f}x the CPU time")
    print(
        f"  -> quantiles: KLL / DDSketch = {t_kll / t_dd:.2f}x, REQ / DDSketch = "
        f"{t_req / t_dd:.2f}x the CPU time"
    )


if __name__ == "__main__":
    main()
