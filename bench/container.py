"""Container images: `yard build` vs `mlflow models build-docker` for the same scikit-learn model.

Measures, on one builder (podman, or docker) and one base image, side by side:
- build time from nothing (``--no-cache``), split into preparing the context and the image build;
- image size;
- time to ready: ``podman run`` until the readiness endpoint answers 200 (ours ``/health/ready``
  with ``--read-only``; MLflow's ``/ping``), the median of ``--runs`` starts.

No registry can be pulled from here, so both images get the same local base: a Debian bookworm
root (``debootstrap --variant=minbase``, which also gives MLflow's Dockerfile its shell and apt)
with this machine's Python laid out like the official ``python:X.Y-slim`` (``/usr/local``).
MLflow's Dockerfile comes from ``mlflow models generate-dockerfile`` (the Dockerfile that
``build-docker`` builds); its ``FROM python:X.Y.Z-slim`` line is pointed at that local base, the one
change made to it. Its build installs MLflow and the model's requirements from PyPI inside the
build (this machine reaches PyPI and the Debian mirror); ours installs from wheels fetched on the host.

    bash bench/peers/mlflow.sh          # once: the MLflow peer (bench/.scratch/peers/mlflow)
    python bench/container.py [--runs 5] [--skip-mlflow]
    python bench/container.py --base host --skip-mlflow --compare-unwarmed --runs 5   # baked caches vs not
    python bench/container.py --ready-only localhost/yard-bench-ours:1 localhost/yard-bench-ours-unwarmed:1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "bench" / ".scratch" / "container"
PEER = ROOT / "bench" / ".scratch" / "peers" / "mlflow" / "bin" / "python"
sys.path.insert(0, str(ROOT / "tests" / "deploy"))

from hostbase import make_rootfs  # noqa: E402

PY = f"{sys.version_info[0]}.{sys.version_info[1]}"
CONF = (
    '[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
    '[engine]\nruntime = "runc"\n'
)

TRAIN = """
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = pd.DataFrame({"tenure": rng.uniform(0, 60, 500), "charges": rng.uniform(20, 120, 500)})
y = (X.tenure < 12).astype(int)
model = LogisticRegression().fit(X, y)
"""


def sh(cmd: list[str], env: dict[str, str], **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)  # type: ignore[call-overload]
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res  # type: ignore[no-any-return]


def debian_base(tool: str, env: dict[str, str], tag: str) -> str:
    """Debian bookworm (debootstrap) imported with tar (its /dev holds device nodes: never copy it
    file by file), with this machine's Python on top in /usr/local."""
    deb = SCRATCH / "debian"
    if not (deb / "etc" / "debian_version").exists():
        print("debootstrap --variant=minbase bookworm (3-4 min) …", flush=True)
        sh(["debootstrap", "--variant=minbase", "bookworm", str(deb), "http://deb.debian.org/debian"], env)
    imported = tag + "-debian"
    tar = subprocess.Popen(["tar", "-C", str(deb), "-c", "."], stdout=subprocess.PIPE)
    res = subprocess.run(
        [tool, "import", "-", imported], stdin=tar.stdout, capture_output=True, text=True, env=env
    )
    tar.wait()
    if res.returncode != 0 or tar.returncode != 0:
        raise SystemExit(f"importing the Debian root failed: {res.stderr}")
    with tempfile.TemporaryDirectory(prefix="yard-bench-base-") as d:
        ctx = Path(d)
        py = make_rootfs(ctx / "hostpy")
        for name in ("bin", "lib", "lib64", "etc", "tmp"):  # keep Debian's own
            p = py / name
            if p.is_symlink() or p.is_file():
                p.unlink()
            elif p.is_dir():
                shutil.rmtree(p)
        (ctx / "Dockerfile").write_text(
            f"FROM {imported}\nCOPY hostpy/ /\n"
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8\n"
            'RUN ["python3", "-m", "ensurepip", "--default-pip"]\n'  # `pip` on PATH, as in python:X.Y-slim
            'CMD ["python3"]\n'
        )
        sh([tool, "build", "--format", "docker", "-t", tag, str(ctx)], env)
    return tag


def size_of(tool: str, env: dict[str, str], tag: str) -> int:
    out = sh([tool, "image", "inspect", tag], env).stdout
    return int(json.loads(out)[0]["Size"])


#: CPU seconds the container's first process (our server: the entrypoint is exec-form) has used.
_CPU = (
    "import os; f = open('/proc/1/stat').read().rsplit(')', 1)[1].split(); "
    "print((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'))"
)
#: CPU seconds to ready, per image tag (ours only): counts that depend far less on the load.
CPU_TO_READY: dict[str, list[float]] = {}
#: The floor in the same image: Python starts, imports scikit-learn's model module, unpickles a model,
#: exits (what any server of the model must do; bench/coldstart.py's floor). Its own CPU seconds.
_FLOOR = (
    "import os, pickle, sklearn.linear_model as m; "
    "pickle.loads(pickle.dumps(m.LogisticRegression())); t = os.times(); print(t.user + t.system)"
)
FLOOR_CPU: dict[str, list[float]] = {}


def floor_once(tool: str, env: dict[str, str], tag: str) -> None:
    """Run the floor in ``tag`` (read-only, as the server runs); its CPU seconds into ``FLOOR_CPU``."""
    cmd = [tool, "run", "--rm", "--read-only", "--entrypoint", "/opt/yard/venv/bin/python", tag, "-c", _FLOOR]
    FLOOR_CPU.setdefault(tag, []).append(float(sh(cmd, env).stdout.split()[-1]))


def cpu_line(tag: str) -> str:
    """Server CPU seconds to ready vs the floor's in the same image (medians, and what the server adds)."""
    cpu, floor = CPU_TO_READY.get(tag, []), FLOOR_CPU.get(tag, [])
    if not cpu or not floor:
        return "no CPU figures"
    a, b = statistics.median(cpu), statistics.median(floor)
    return (
        f"server CPU to ready median {a:.2f} s ({', '.join(f'{x:.2f}' for x in cpu)}); floor (python, "
        f"import sklearn.linear_model, unpickle) median {b:.2f} s ({', '.join(f'{x:.2f}' for x in floor)}); "
        f"server/floor {a / b:.2f}x, +{a - b:.2f} CPU s"
    )


def ready_once(tool: str, env: dict[str, str], tag: str, path: str, extra: list[str]) -> float:
    """Seconds from ``run -d`` until ``path`` answers 200 (the container is removed afterwards);
    for our images also the server's CPU seconds until then (``CPU_TO_READY``)."""
    from modelyard.serving._server import free_port

    port = free_port()
    name = f"yard-bench-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    sh([tool, "run", "-d", "--name", name, *extra, "-p", f"127.0.0.1:{port}:8080", tag], env)
    try:
        deadline = started + 300
        while time.perf_counter() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code == 200:
                    took = time.perf_counter() - started
                    if path == "/health/ready":
                        cpu = subprocess.run(
                            [tool, "exec", name, "/opt/yard/venv/bin/python", "-c", _CPU],
                            capture_output=True, text=True, env=env,
                        )  # fmt: skip
                        if cpu.returncode == 0:
                            CPU_TO_READY.setdefault(tag, []).append(float(cpu.stdout))
                    return took
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise SystemExit(f"{tag} was not ready within 300 s")
    finally:
        subprocess.run([tool, "rm", "-f", name], capture_output=True, env=env)


def time_to_ready(
    tool: str, env: dict[str, str], tag: str, path: str, runs: int, extra: list[str], floor: bool = False
) -> list[float]:
    out = []
    for _ in range(runs):
        out.append(ready_once(tool, env, tag, path, extra))
        if floor:
            floor_once(tool, env, tag)
    return out


def ours(tool: str, env: dict[str, str], base: str, runs: int, unwarmed: bool = False) -> dict[str, object]:
    import modelyard as yard

    store = SCRATCH / "store"
    shutil.rmtree(store, ignore_errors=True)
    ns: dict[str, object] = {}
    exec(TRAIN, ns)
    mv = yard.registry.register_model(ns["model"], "churn-clf", input_example=ns["X"].head(5), uri=str(store))  # type: ignore[attr-defined]
    yard.registry.set_alias("churn-clf", "production", mv.version, uri=str(store))
    ctx = SCRATCH / "ours-context"
    shutil.rmtree(ctx, ignore_errors=True)
    t0 = time.perf_counter()
    sh(
        [sys.executable, "-m", "modelyard", "--uri", str(store), "build", "churn-clf@production",
         "--dockerfile-only", str(ctx), "--base-image", base],
        env,
    )  # fmt: skip
    prepare = time.perf_counter() - t0
    tag = "localhost/yard-bench-ours:1"
    t0 = time.perf_counter()
    sh([tool, "build", "--no-cache", "--format", "docker", "-t", tag, str(ctx)], env)
    build = time.perf_counter() - t0
    size = size_of(tool, env, tag)
    out: dict[str, object] = {"prepare_s": prepare, "build_s": build, "size": size, "tag": tag}
    if not unwarmed:
        out["ready_s"] = time_to_ready(tool, env, tag, "/health/ready", runs, ["--read-only"], floor=True)
        return out
    # the same context without the step that bakes the start-up caches: the image as it was before,
    # started alternately with ours so both see the same load
    dockerfile = ctx / "Dockerfile"
    text = dockerfile.read_text()
    warm = next(ln for ln in text.splitlines() if '"modelyard.deploy", "warm"' in ln)
    (ctx / "Dockerfile.unwarmed").write_text(text.replace(warm + "\n", ""))
    before = "localhost/yard-bench-ours-unwarmed:1"
    sh(
        [tool, "build", "--format", "docker", "-f", str(ctx / "Dockerfile.unwarmed"), "-t", before, str(ctx)],
        env,
    )
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(runs):
        mine.append(ready_once(tool, env, tag, "/health/ready", ["--read-only"]))
        theirs.append(ready_once(tool, env, before, "/health/ready", ["--read-only"]))
    out["ready_s"] = mine
    out["unwarmed"] = {"ready_s": theirs, "tag": before}
    return out


def mlflow(tool: str, env: dict[str, str], base: str, runs: int) -> dict[str, object]:
    model_dir = SCRATCH / "mlflow-model"
    shutil.rmtree(model_dir, ignore_errors=True)
    save = TRAIN + (
        "import mlflow.sklearn, sys\nmlflow.sklearn.save_model(model, sys.argv[1], input_example=X.head(5))\n"
    )
    sh([str(PEER), "-c", save, str(model_dir)], env)
    ctx = SCRATCH / "mlflow-context"
    shutil.rmtree(ctx, ignore_errors=True)
    t0 = time.perf_counter()
    mlflow_bin = str(PEER.parent / "mlflow")
    sh(
        [mlflow_bin, "models", "generate-dockerfile", "-m", str(model_dir), "-d", str(ctx),
         "--env-manager", "local"],
        env,
    )  # fmt: skip
    prepare = time.perf_counter() - t0
    dockerfile = ctx / "Dockerfile"
    lines = dockerfile.read_text().splitlines()
    original_from = next(ln for ln in lines if ln.startswith("FROM "))
    # the one other change: where HTTPS goes through an intercepting proxy (this machine), pip in the
    # build trusts the host's CA bundle (PIP_CERT), as pip on the host does
    ca = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    extra = []
    if ca and Path(ca).is_file():
        shutil.copy(ca, ctx / "host-ca.crt")
        extra = ["COPY host-ca.crt /etc/ssl/certs/host-ca.crt", "ENV PIP_CERT=/etc/ssl/certs/host-ca.crt"]
    out = []
    for ln in lines:
        out.extend([f"FROM {base}", *extra] if ln == original_from else [ln])
    dockerfile.write_text("\n".join(out) + "\n")
    tag = "localhost/yard-bench-mlflow:1"
    t0 = time.perf_counter()
    sh([tool, "build", "--no-cache", "--format", "docker", "-t", tag, str(ctx)], env, timeout=3600)
    build = time.perf_counter() - t0
    ready = time_to_ready(tool, env, tag, "/ping", runs, [])
    return {
        "prepare_s": prepare, "build_s": build, "size": size_of(tool, env, tag), "ready_s": ready, "tag": tag,
        "from": original_from,
    }  # fmt: skip


def ready_only(tags: list[str], runs: int) -> None:
    env = dict(os.environ)
    if not env.get("CONTAINERS_CONF"):
        SCRATCH.mkdir(parents=True, exist_ok=True)
        (SCRATCH / "containers.conf").write_text(CONF)
        env["CONTAINERS_CONF"] = str(SCRATCH / "containers.conf")
    load = os.getloadavg()[0]
    walls: dict[str, list[float]] = {t: [] for t in tags}
    for _ in range(runs):
        for t in tags:
            walls[t].append(ready_once("podman", env, t, "/health/ready", ["--read-only"]))
            floor_once("podman", env, t)
    print(f"load average at start {load:.1f}, at end {os.getloadavg()[0]:.1f}; podman run --read-only")
    for t in tags:
        print(
            f"{t}: time to ready median {statistics.median(walls[t]):.2f} s "
            f"({', '.join(f'{x:.2f}' for x in walls[t])}); {cpu_line(t)}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-mlflow", action="store_true")
    ap.add_argument(
        "--skip-ours", action="store_true", help="Only MLflow's image (ours from an earlier run)."
    )
    ap.add_argument("--keep", action="store_true", help="Keep the images afterwards.")
    ap.add_argument(
        "--base",
        choices=("debian", "host"),
        default="debian",
        help="debian: debootstrap bookworm + this Python (as python:X.Y-slim); host: this Python alone "
        "FROM scratch (seconds to make; no shell, so not for MLflow's Dockerfile).",
    )
    ap.add_argument(
        "--compare-unwarmed",
        action="store_true",
        help="Also build ours without the step that bakes the start-up caches; start the two alternately.",
    )
    ap.add_argument(
        "--ready-only",
        nargs="+",
        metavar="TAG",
        help="Build nothing: start these existing images of ours alternately, --runs times each.",
    )
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.ready_only:
        ready_only(args.ready_only, args.runs)
        return
    SCRATCH.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if not env.get("CONTAINERS_CONF"):
        (SCRATCH / "containers.conf").write_text(CONF)
        env["CONTAINERS_CONF"] = str(SCRATCH / "containers.conf")
    tool = "podman"
    load = os.getloadavg()
    if args.base == "host":
        from hostbase import make_host_base

        base = make_host_base([tool], f"localhost/yard-bench-hostpython:{PY}", env=env)
    else:
        base = debian_base(tool, env, f"localhost/yard-bench-python:{PY}-slim")
    results: dict[str, dict[str, object]] = {}
    if not args.skip_ours:
        results["modelyard"] = ours(tool, env, base, args.runs, args.compare_unwarmed)
        print(json.dumps(results["modelyard"], default=str), flush=True)
    if not args.skip_mlflow:
        if not PEER.exists():
            raise SystemExit("The MLflow peer is missing: run `bash bench/peers/mlflow.sh` first.")
        try:
            results["mlflow"] = mlflow(tool, env, base, args.runs)
        except SystemExit as exc:  # say why MLflow's image could not be built or run here
            print(f"MLflow's image could not be built or run here: {str(exc)[-1500:]}", flush=True)
    end = os.getloadavg()[0]
    print(f"\nload average at start {load[0]:.1f}, at end {end:.1f}; builder {tool}; base {base}")
    print(f"{'':28}{'modelyard':>14}{'mlflow':>14}{'ratio':>10}")

    def row(label: str, key: str, fmt: str, scale: float = 1.0) -> None:
        vals = []
        for name in ("modelyard", "mlflow"):
            r = results.get(name)
            v = r[key] if r else None
            if isinstance(v, list):
                v = statistics.median(v)
            vals.append(None if v is None else float(v) / scale)  # type: ignore[arg-type]
        ratio = f"{vals[1] / vals[0]:.1f}x" if vals[0] and vals[1] else "-"
        cells = [format(v, fmt) if v is not None else "-" for v in vals]
        print(f"{label:28}{cells[0]:>14}{cells[1]:>14}{ratio:>10}")

    row("prepare context (s)", "prepare_s", ".1f")
    row("image build, no cache (s)", "build_s", ".1f")
    row("image size (MB)", "size", ".0f", 1e6)
    row("time to ready, median (s)", "ready_s", ".2f")
    for name, r in results.items():
        print(f"{name} time to ready, each run (s): {', '.join(f'{x:.2f}' for x in r['ready_s'])}")  # type: ignore[attr-defined]
        cpu = CPU_TO_READY.get(str(r["tag"]))
        if cpu:
            print(f"{name}: {cpu_line(str(r['tag']))}")
        cold = r.get("unwarmed")
        if isinstance(cold, dict):
            a, b = statistics.median(r["ready_s"]), statistics.median(cold["ready_s"])  # type: ignore[arg-type]
            print(
                f"{name} without the baked caches, each run (s): "
                f"{', '.join(f'{x:.2f}' for x in cold['ready_s'])}; median {b:.2f} s vs {a:.2f} s baked: "
                f"{b / a:.2f}x"
            )
            cpu_cold = CPU_TO_READY.get(str(cold["tag"]))
            if cpu and cpu_cold:
                print(
                    f"{name} server CPU seconds to ready without the baked caches: "
                    f"{', '.join(f'{x:.2f}' for x in cpu_cold)}; "
                    f"median {statistics.median(cpu_cold):.2f} s vs {statistics.median(cpu):.2f} s baked"
                )
    if args.json:
        Path(args.json).write_text(json.dumps({"load": load, "results": results}, indent=2, default=str))
    if not args.keep:
        for r in results.values():
            subprocess.run([tool, "rmi", "-f", str(r["tag"])], capture_output=True, env=env)
            if isinstance(r.get("unwarmed"), dict):
                subprocess.run([tool, "rmi", "-f", str(r["unwarmed"]["tag"])], capture_output=True, env=env)  # type: ignore[index]


if __name__ == "__main__":
    main()
