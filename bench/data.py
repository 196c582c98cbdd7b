"""Benchmark `yard data` against DVC and raw limits, in one process run, printing ratios.

    bash bench/peers/dvc.sh                 # once: DVC 3.67.1 in bench/.scratch/dvc-venv
    python bench/data.py                    # everything (1 GiB file, 10,000 x 4 KiB, 10M x 20 profile)
    python bench/data.py --rows 1000000 --big-mib 256 --small 2000   # quicker

1. `yard data add` of one 1 GiB file and of a folder of 10,000 x 4 KiB files, then a no-change
   re-add, side by side with `dvc add` / `dvc status` / `dvc add` again (both as command lines,
   interpreter start included; ours also in-process). Each tool's first add runs twice from
   scratch (order yard, DVC, DVC, yard) and the best counts.
2. Hashing throughput: `modelyard.blobs.hash_file` and the whole `add` ingest vs a raw blake3
   single pass (memory-mapped, all cores) of the same file.
3. Profile N rows x 20 columns (14 numeric, 6 categorical) read from Parquet, then validate a batch
   of N rows in one pass that also yields the batch's full profile: time, CPU time, rows/s and
   peak memory (VmHWM of a child process) against the table's in-memory size.

The machine is shared: numbers move by +-30 % between runs; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SRC = ROOT / "src"
SCRATCH = HERE / ".scratch" / "data-bench"
DVC = HERE / ".scratch" / "dvc-venv" / "bin" / "dvc"
sys.path.insert(0, str(SRC))


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return dt


def _settle(max_wait: float = 30.0) -> float:
    """Flush, then wait until creating files is cheap again, before a timed add; return the wait.

    Right after the previous case's gigabytes are written and deleted, creating files on this
    machine's ext4 (mounted with ``discard``) costs several times more kernel time, for seconds
    to tens of seconds; without this wait whichever tool runs first pays for the other's cleanup.
    The probe creates and removes 300 empty files until that takes under 30 ms (or ``max_wait``).
    """
    t0 = time.perf_counter()
    os.sync()
    probe = SCRATCH / "settle-probe"
    probe.mkdir(parents=True, exist_ok=True)
    while True:
        s = time.perf_counter()
        for i in range(300):
            fd = os.open(probe / f"p{i}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.close(fd)
        for i in range(300):
            os.unlink(probe / f"p{i}")
        if time.perf_counter() - s < 0.03 or time.perf_counter() - t0 > max_wait:
            break
        time.sleep(0.5)
    time.sleep(0.5)
    return time.perf_counter() - t0


def _yard(*args: str, cwd: Path, store: Path) -> float:
    return _run(
        [sys.executable, "-m", "modelyard", "--uri", str(store), *args], cwd, {"PYTHONPATH": str(SRC)}
    )


def _make_inputs(big_mib: int, small: int) -> tuple[Path, Path]:
    data = SCRATCH / "inputs"
    big = data / "big.bin"
    folder = data / "small"
    if not big.exists() or big.stat().st_size != big_mib << 20:
        data.mkdir(parents=True, exist_ok=True)
        with open(big, "wb") as f:
            block = os.urandom(1 << 20)
            for i in range(big_mib):
                f.write(block[i % 251 :] + block[: i % 251])  # distinct MiBs, cheap to make
    if not folder.exists() or len(list(folder.iterdir())) != small:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(small):
            (folder / f"f{i:05d}.bin").write_bytes(os.urandom(4096))
    old = time.time() - 5  # past the stat cache's racy window, like files that were not just written
    for p in [big, *folder.iterdir()]:
        os.utime(p, (old, old))
    return big, folder


def bench_files(big: Path, folder: Path, with_dvc: bool) -> dict[str, dict[str, float]]:
    """Each tool adds each input twice from scratch, in the order yard, DVC, DVC, yard; the best
    first add of each counts (the first files created after a pause are slower on this machine,
    whoever creates them). Re-adds are timed on the last fresh store/repo of each tool."""
    out: dict[str, dict[str, float]] = {}
    for label, path in (
        ("1 GiB file" if big.stat().st_size == 1 << 30 else f"{big.stat().st_size >> 20} MiB file", big),
        (f"{len(list(folder.iterdir())):,} x 4 KiB files", folder),
    ):
        row: dict[str, float] = {}

        def best(key: str, value: float, row: dict[str, float] = row) -> None:
            row[key] = min(row.get(key, value), value)

        def yard_round(path: Path = path, row: dict[str, float] = row) -> None:
            # ours: fresh store, command line (interpreter start included)
            work = SCRATCH / "yard-work"
            shutil.rmtree(SCRATCH / "dvc-repo", ignore_errors=True)
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            store = work / ".yard"
            _yard("init", cwd=work, store=store)
            _settle()
            best("yard add", _yard("data", "add", str(path), "--name", "bench", cwd=work, store=store))
            row["yard re-add (no change)"] = _yard(
                "data", "add", str(path), "--name", "bench", cwd=work, store=store
            )
            # in-process (no interpreter start): what a pipeline step pays
            import modelyard as yard

            yard.data.list(uri=str(store))  # open the store first: time the re-add itself
            t0 = time.perf_counter()
            v = yard.data.add(path, name="bench", uri=str(store))
            row["yard re-add in-process"] = time.perf_counter() - t0
            assert not v.created
            yard.get_workspace(str(store)).close()

        def dvc_round(path: Path = path, row: dict[str, float] = row) -> None:
            repo = SCRATCH / "dvc-repo"
            shutil.rmtree(SCRATCH / "yard-work", ignore_errors=True)
            shutil.rmtree(repo, ignore_errors=True)
            repo.mkdir(parents=True)
            env = {
                "DVC_SITE_CACHE_DIR": str(SCRATCH / "dvc-site-cache"),
                "DVC_NO_ANALYTICS": "1",
                "GIT_AUTHOR_NAME": "b",
                "GIT_AUTHOR_EMAIL": "b@b",
                "GIT_COMMITTER_NAME": "b",
                "GIT_COMMITTER_EMAIL": "b@b",
            }
            _run(["git", "init", "-q"], repo, env)
            _run([str(DVC), "init", "-q"], repo, env)
            _run([str(DVC), "config", "core.analytics", "false"], repo, env)
            target = repo / path.name
            if path.is_dir():
                shutil.copytree(path, target)
            else:
                shutil.copy2(path, target)
            old = time.time() - 5
            for p in [target, *(target.iterdir() if target.is_dir() else [])]:
                os.utime(p, (old, old))
            _settle()
            best("dvc add", _run([str(DVC), "add", "-q", path.name], repo, env))
            row["dvc status (no change)"] = _run([str(DVC), "status", "-q"], repo, env)
            row["dvc re-add (no change)"] = _run([str(DVC), "add", "-q", path.name], repo, env)

        for rnd in [yard_round, dvc_round, dvc_round, yard_round] if with_dvc else [yard_round, yard_round]:
            rnd()
        shutil.rmtree(SCRATCH / "dvc-repo", ignore_errors=True)
        shutil.rmtree(SCRATCH / "yard-work", ignore_errors=True)
        out[label] = row
    return out


def bench_hash(big: Path) -> dict[str, float]:
    import blake3

    from modelyard.blobs import BlobStore, hash_file

    size = big.stat().st_size
    res: dict[str, float] = {}
    for _ in range(2):  # warm the page cache, keep the best of two
        t0 = time.perf_counter()
        h = blake3.blake3(max_threads=blake3.blake3.AUTO)
        h.update_mmap(str(big))
        raw = h.hexdigest()
        res["raw blake3 (mmap, all cores) GB/s"] = max(
            res.get("raw blake3 (mmap, all cores) GB/s", 0), size / (time.perf_counter() - t0) / 1e9
        )
        t0 = time.perf_counter()
        ours = hash_file(big)
        res["hash_file GB/s"] = max(res.get("hash_file GB/s", 0), size / (time.perf_counter() - t0) / 1e9)
        assert ours == raw
    t0 = time.perf_counter()
    one = blake3.blake3()
    with open(big, "rb") as f:
        while chunk := f.read(16 << 20):
            one.update(chunk)
    res["raw blake3 (1 thread, read loop) GB/s"] = size / (time.perf_counter() - t0) / 1e9
    store_dir = SCRATCH / "ingest-store"
    shutil.rmtree(store_dir, ignore_errors=True)
    os.environ["YARD_NO_STAT_CACHE"] = "1"
    try:
        t0 = time.perf_counter()
        digest, _ = BlobStore(store_dir).put_file(big)  # hash while copying + fsync
        res["put_file ingest (hash+copy+fsync) GB/s"] = size / (time.perf_counter() - t0) / 1e9
    finally:
        os.environ.pop("YARD_NO_STAT_CACHE")
    assert digest == raw
    shutil.rmtree(store_dir, ignore_errors=True)
    return res


_CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import pyarrow.parquet as pq
import modelyard as yard
from modelyard.data import infer_suite
path = sys.argv[2]
import modelyard.data._validate, modelyard.data._profile  # imports outside the timing
def hwm():  # peak RSS of this process image (VmHWM resets on exec, unlike ru_maxrss)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base = hwm()
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
c0, t0 = cpu(), time.perf_counter()
prof = yard.data.profile(path)
c1, t1 = cpu(), time.perf_counter()
report = yard.validate(path, suite=infer_suite(prof), reference=prof)
c2, t2 = cpu(), time.perf_counter()
peak = hwm()
print(json.dumps({"profile_s": t1 - t0, "validate_s": t2 - t1,
                  "profile_cpu": c1 - c0, "validate_cpu": c2 - c1, "rows": prof.rows,
                  "checks": len(report.results),
                  "failed": len(report.failures), "base_rss": base, "peak_rss": peak}))
"""


def bench_profile(rows: int, tune_malloc: bool = True) -> dict[str, float]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = SCRATCH / f"table-{rows}.parquet"
    meta = SCRATCH / f"table-{rows}.json"
    if not path.exists() or not meta.exists():
        rng = np.random.default_rng(0)
        writer = None
        nbytes = 0
        step = 1_000_000
        cats = [np.array([f"cat{j}_{i}" for i in range(k)]) for j, k in enumerate((3, 5, 12, 40, 200, 1000))]
        for start in range(0, rows, step):
            n = min(step, rows - start)
            cols = {f"num{i}": rng.normal(i, 1 + i, n) for i in range(12)}
            cols["int0"] = rng.integers(0, 100, n)
            cols["int1"] = rng.integers(0, 10**9, n)
            for j, c in enumerate(cats):
                cols[f"cat{j}"] = pa.array(c[rng.integers(0, len(c), n)])
            t = pa.table(cols)
            nbytes += t.nbytes
            if writer is None:
                writer = pq.ParquetWriter(path, t.schema, compression="zstd")
            writer.write_table(t, row_group_size=262_144)
        assert writer is not None
        writer.close()
        meta.write_text(json.dumps({"nbytes": nbytes}))
    nbytes = json.loads(meta.read_text())["nbytes"]
    # the library leaves glibc's allocator alone unless asked (the `yard` CLI asks): measure both
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env["YARD_TUNE_MALLOC"] = "1" if tune_malloc else "0"
    p = subprocess.run(
        [sys.executable, "-c", _CHILD, str(SRC), str(path)], capture_output=True, text=True, env=env
    )
    if p.returncode != 0:
        raise SystemExit(p.stderr)
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["data_bytes"] = nbytes
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip", choices=["files", "hash", "profile"], action="append", default=[])
    ap.add_argument(
        "--malloc",
        choices=["both", "tuned", "default"],
        default="both",
        help="profile with glibc's thresholds raised (YARD_TUNE_MALLOC=1, what the yard CLI does), "
        "with glibc's defaults (the library's default), or both in turn (default)",
    )
    args = ap.parse_args()
    with_dvc = DVC.exists()
    if not with_dvc:
        print(f"DVC not found at {DVC}: run `bash bench/peers/dvc.sh` first (DVC columns skipped).")
    SCRATCH.mkdir(parents=True, exist_ok=True)
    big, folder = _make_inputs(args.big_mib, args.small)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    if "files" not in args.skip:
        res = bench_files(big, folder, with_dvc)
        print("## add / re-add (seconds, lower is better)")
        for label, row in res.items():
            print(f"{label}:")
            for k, v in row.items():
                print(f"  {k:28s} {v:7.2f}")
            if with_dvc:
                print(
                    f"  -> add: DVC/yard = {row['dvc add'] / row['yard add']:.1f}x;"
                    f" no-change: dvc status/yard re-add = "
                    f"{row['dvc status (no change)'] / row['yard re-add (no change)']:.1f}x"
                    f" (in-process {row['dvc status (no change)'] / row['yard re-add in-process']:.1f}x);"
                    f" dvc re-add/yard re-add = "
                    f"{row['dvc re-add (no change)'] / row['yard re-add (no change)']:.1f}x"
                )
        print()
    if "hash" not in args.skip:
        h = bench_hash(big)
        print("## hashing throughput")
        for k, v in h.items():
            print(f"  {k:40s} {v:6.2f}")
        raw = h["raw blake3 (mmap, all cores) GB/s"]
        raw1 = h["raw blake3 (1 thread, read loop) GB/s"]
        print(
            f"  -> hash_file / raw = {h['hash_file GB/s'] / raw:.0%}; ingest / raw = "
            f"{h['put_file ingest (hash+copy+fsync) GB/s'] / raw:.0%};"
            f" ingest / raw 1-thread = "
            f"{h['put_file ingest (hash+copy+fsync) GB/s'] / raw1:.0%}\n"
        )
    if "profile" not in args.skip:
        modes = {"both": [True, False, True, False], "tuned": [True], "default": [False]}[args.malloc]
        best: dict[bool, dict[str, float]] = {}
        for tune in modes:  # interleaved, so both settings see the same machine load
            r = bench_profile(args.rows, tune)
            _print_profile(
                r,
                "YARD_TUNE_MALLOC=1 (glibc thresholds raised)"
                if tune
                else "YARD_TUNE_MALLOC=0 (glibc defaults)",
            )
            if (
                tune not in best
                or r["profile_cpu"] + r["validate_cpu"]
                < best[tune]["profile_cpu"] + best[tune]["validate_cpu"]
            ):
                best[tune] = r
        if len(best) == 2:
            on, off = best[True], best[False]
            both = (off["profile_cpu"] + off["validate_cpu"]) / (on["profile_cpu"] + on["validate_cpu"])
            print(
                f"  -> best of each: profile CPU default/tuned = "
                f"{off['profile_cpu'] / on['profile_cpu']:.2f}x,"
                f" profile+validate CPU = "
                f"{both:.2f}x,"
                f" wall = "
                f"{(off['profile_s'] + off['validate_s']) / (on['profile_s'] + on['validate_s']):.2f}x;"
                f" peak RSS {off['peak_rss'] / 2**30:.2f} vs {on['peak_rss'] / 2**30:.2f} GiB"
            )


def _print_profile(r: dict[str, float], label: str) -> None:
    total = r["profile_s"] + r["validate_s"]
    print(
        f"## profile, then validate (+ profile of the batch, one pass) {r['rows']:,} rows x 20 "
        f"columns (Parquet, streamed); {label}"
    )
    print(
        f"  profile   {r['profile_s']:6.2f} s wall, {r['profile_cpu']:6.2f} s CPU  "
        f"({r['rows'] / r['profile_s']:,.0f} rows/s)"
    )
    print(
        f"  validate  {r['validate_s']:6.2f} s wall, {r['validate_cpu']:6.2f} s CPU  "
        f"({r['rows'] / r['validate_s']:,.0f} rows/s;"
        f" {r['checks']} checks, {r['failed']} failed)"
    )
    print(
        f"  total     {total:6.2f} s wall, {r['profile_cpu'] + r['validate_cpu']:6.2f} s CPU  "
        f"({r['rows'] / total:,.0f} rows/s)"
    )
    print(
        f"  peak RSS  {r['peak_rss'] / 2**30:.2f} GiB (process start {r['base_rss'] / 2**30:.2f} "
        f"GiB) vs data in memory "
        f"{r['data_bytes'] / 2**30:.2f} GiB -> {r['peak_rss'] / r['data_bytes']:.2f}x"
    )


if __name__ == "__main__":
    main()
