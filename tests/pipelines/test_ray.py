"""The Ray executor against a real local Ray cluster: same results and cache keys as local.

One cluster per module, started with ``ray start --head --block`` on free ports and a temp
dir, and stopped after by signalling the process we started (never ``ray stop``, which would
stop other people's clusters on this machine too).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import modelyard as yard  # noqa: E402

pytestmark = pytest.mark.slow

SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _has_ray_client() -> bool:
    """True when ``ray[client]`` is installed (then the client server needs a free port, not the shared
    10001)."""
    try:
        from ray._private.utils import get_ray_client_dependency_error
    except ImportError:  # pragma: no cover - another Ray layout
        import importlib.util

        return importlib.util.find_spec("grpc") is not None
    return get_ray_client_dependency_error() is None


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    temp = tempfile.mkdtemp(prefix="ry", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    env.pop("RAY_ADDRESS", None)
    # Isolated from whatever others left in the shared ~/.ray (an auth_token turns token auth on).
    env["RAY_AUTH_MODE"] = "disabled"
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "2"  # nothing to drain at teardown
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    cmd = [
        sys.executable,
        "-m",
        "ray.scripts.scripts",
        "start",
        "--head",
        "--block",
        "--node-ip-address",
        "127.0.0.1",
        "--port",
        str(port),
        "--num-cpus",
        "2",
        "--include-dashboard=false",
        "--disable-usage-stats",
        "--temp-dir",
        temp,
        "--dashboard-agent-listen-port",
        str(_free_port()),
        "--dashboard-agent-grpc-port",
        str(_free_port()),
        "--runtime-env-agent-port",
        str(_free_port()),
        "--node-manager-port",
        str(_free_port()),
        "--object-manager-port",
        str(_free_port()),
        "--metrics-export-port",
        str(_free_port()),
    ]
    if _has_ray_client():  # Ray starts its client server (default port 10001) only when ray[client] is there
        cmd += ["--ray-client-server-port", str(_free_port())]
    log = open(Path(temp) / "start.log", "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240  # Ray is slow to start on a busy machine
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"ray start exited with {proc.returncode}: "
                    f"{(Path(temp) / 'start.log').read_text()[-3000:]}"
                )
            if "Ray runtime started" in (Path(temp) / "start.log").read_text(errors="replace"):
                break
            if time.monotonic() > deadline:
                pytest.fail("the Ray head did not come up within 240 s")
            time.sleep(0.5)
        yield address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the group of the process we started, by its id
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


PIPE = """
import os
import numpy as np
import pandas as pd
import modelyard as yard

def noisy(n, seed):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n)

@yard.step(resources={"num_cpus": 1})
def load(n: int) -> pd.DataFrame:
    x = noisy(n, 3)
    return pd.DataFrame({"x": x, "y": (x > 0).astype(int)})

@yard.step
def scale(df: pd.DataFrame, k: float) -> pd.DataFrame:
    return df.assign(x=df["x"] * k)

@yard.step(resources={"num_cpus": 1})
def fit(df: pd.DataFrame) -> np.ndarray:
    X = np.column_stack([df["x"].to_numpy(), np.ones(len(df))])
    return np.linalg.lstsq(X, df["y"].to_numpy(dtype=float), rcond=None)[0]

@yard.step
def evaluate(w: np.ndarray, frames: list) -> dict:
    acc = [float(np.mean(((f["x"].to_numpy() * w[0] + w[1]) > 0.5) == f["y"].to_numpy())) for f in frames]
    return {"acc": acc, "pid": os.getpid()}

@yard.pipeline(experiment="ray-parity")
def pipe(n: int = 200, ks: list = [0.5, 2.0]):
    df = load(n)
    scaled = [scale(df, k) for k in ks]
    return evaluate(fit(df), scaled)
"""


def test_ray_gives_same_results_and_cache_keys_as_local(modules, tmp_path, ray_cluster):
    modules.write("raypipe", PIPE)
    pipe = modules.load("raypipe")
    local = pipe.run(executor="local", uri=str(tmp_path / "local"))
    on_ray = pipe.run(executor="ray", ray_address=ray_cluster, uri=str(tmp_path / "ray"))
    assert on_ray.executed == list(local.steps)
    for node, out in local.steps.items():
        assert on_ray.steps[node].cache_key == out.cache_key, node
        if node != "evaluate":  # evaluate reports the worker's pid
            assert on_ray.steps[node].output_digest == out.output_digest, node
    assert on_ray.value["acc"] == local.value["acc"]
    assert on_ray.value["pid"] != os.getpid()  # it really ran in a Ray worker
    assert yard.get_run(on_ray.run_id, uri=str(tmp_path / "ray")).tags["yard.executor"] == "ray"

    again = pipe.run(executor="ray", ray_address=ray_cluster, uri=str(tmp_path / "ray"))
    assert again.cached == list(local.steps)
    forced = pipe.run(executor="ray", ray_address=ray_cluster, uri=str(tmp_path / "ray"), force="fit")
    assert forced.executed == ["fit", "evaluate"]
    assert forced.value["acc"] == local.value["acc"]
