"""Compare's curves in process, on SQLite or PostgreSQL: stored curve copies against every point read.

    python bench/ui_curves.py [--pg postgresql://postgres@127.0.0.1:5432/test] [--runs 10] [--metrics 20]
        [--steps 1000] [--samples 5]

Fills a fresh store (a temporary SQLite folder, or a fresh schema of ``--pg`` dropped at the end) with
``--runs`` runs of ``--metrics`` × ``--steps`` points, ended with ``end_run`` (which stores their copies),
then times the page's curve reader (``webui._pages._curves``, 80 drawn points per curve as a compare of
10 runs × 20 metrics draws) the median of ``--samples`` times each, interleaved: with no stored copy
(every point read, the copies stored), with the copies stored and nothing kept in the process (a
restarted server), and kept in the process; plus the old one-query read of every point
(``metric_series``) and ``end_run``'s time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (a fresh schema is made and dropped)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=5)
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    tmp = tempfile.mkdtemp(prefix="yard-curves-")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    if a.pg:
        import psycopg

        with psycopg.connect(a.pg, autocommit=True) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
        uri = f"{a.pg}?options=-csearch_path%3D{schema}&blob_uri={tmp}/blobs"
    else:
        uri = f"{tmp}/store"
    try:
        run(uri, a)
    finally:
        if a.pg:
            import psycopg

            with psycopg.connect(a.pg, autocommit=True) as c:
                c.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(uri: str, a: argparse.Namespace) -> None:
    from modelyard._workspace import Workspace
    from modelyard.store._schema import metric_curves
    from modelyard.tracking._history import metric_series
    from modelyard.tracking._service import TrackingService
    from modelyard.webui import _pages

    ws = Workspace(uri).open()
    svc = TrackingService(ws)
    store = ws.store
    ids, ends = [], []
    keys = [f"m{k}" for k in range(a.metrics)]
    for i in range(a.runs):
        r = svc.create_run(experiment="curves", name=f"r{i}")
        rows = [
            (r.id, k, s, (s * 7919 % 1000) / 1000, False, 1_780_000_000_000 + s)
            for k in keys
            for s in range(a.steps)
        ]
        svc.write_metrics(rows, [(r.id, k, a.steps - 1, 0.5, False, 1) for k in keys])
        t0 = time.perf_counter()
        svc.end_run(r.id)
        ends.append(time.perf_counter() - t0)
        ids.append(r.id)
    res: dict[str, list[float]] = {"no copies": [], "copies stored": [], "kept": [], "metric_series": []}

    def timed(name: str, fn: object) -> None:
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        res[name].append(time.perf_counter() - t0)

    def curves() -> object:
        return _pages._curves(store, ids, keys, False, 0.0, 80)

    for _ in range(a.samples):
        store.write(lambda conn: conn.execute(metric_curves.delete()))
        _pages._CURVES.clear()
        timed("no copies", curves)
        _pages._CURVES.clear()
        timed("copies stored", curves)
        timed("kept", curves)
        timed("metric_series", lambda: metric_series(store, ids, keys))
    ws.close()
    kind = "PostgreSQL" if a.pg else "SQLite"
    ms = {k: statistics.median(v) * 1000 for k, v in res.items()}
    print(
        f"{kind}, {a.runs} runs × {a.metrics} metrics × {a.steps} steps, median of {a.samples}: "
        f"end_run {statistics.median(ends) * 1000:.0f} ms; curves with no stored copies "
        f"{ms['no copies']:.0f} ms, copies stored {ms['copies stored']:.0f} ms, kept {ms['kept']:.0f} ms"
        f" | the old read of every point alone (metric_series) {ms['metric_series']:.0f} ms"
    )
    with open("/proc/loadavg") as f:
        print(f"  load average {f.read().split()[:3]}")


if __name__ == "__main__":
    main()
