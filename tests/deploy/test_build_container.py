"""`yard build` for real: build images with podman (or docker) on a base image made here from this
machine's Python (no registry can be pulled from), run them with a read-only root filesystem as
the non-root user, and check the probes and the predictions. Skipped, with the reason, only where
neither podman nor a docker daemon can run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .buildmodels import frame, make_build_store
from .hostbase import make_host_base

# an image build takes minutes on a loaded 2-core machine (8-9 min seen at load 15-20): beyond the
# suite's 10-minute hang guard
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""


def _ok(cmd: list[str], env: dict[str, str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, env=env, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="module")
def build_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    return make_build_store(tmp_path_factory)


@pytest.fixture(scope="module")
def tool(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """(builder name, environment): podman with runc and the host's ulimits (INFRA.md), else docker."""
    env = dict(os.environ)
    reasons = []
    if shutil.which("podman"):
        if not env.get("CONTAINERS_CONF"):
            conf = tmp_path_factory.mktemp("podman") / "containers.conf"
            conf.write_text(CONF)
            env["CONTAINERS_CONF"] = str(conf)
        if _ok(["podman", "info"], env):
            return "podman", env
        reasons.append("podman is installed but `podman info` fails")
    else:
        reasons.append("podman is not installed")
    if shutil.which("docker") and _ok(["docker", "version", "--format", "{{.Server.Version}}"], env):
        return "docker", env
    reasons.append("docker is not installed or its daemon does not answer")
    pytest.skip("No container tool can run here: " + "; ".join(reasons))


@pytest.fixture(scope="module")
def base_image(tool: tuple[str, dict[str, str]]) -> str:
    """The host-Python base image (kept between runs: it only depends on this interpreter)."""
    name, env = tool
    key = hashlib.sha256(f"{sys.executable}{sys.version}".encode()).hexdigest()[:10]
    tag = f"localhost/yard-test-hostbase:{sys.version_info[0]}.{sys.version_info[1]}-{key}"
    if not _ok([name, "image", "inspect", tag], env):
        make_host_base([name], tag, env=env)
    return tag


@pytest.fixture
def cleanup(tool: tuple[str, dict[str, str]]) -> Iterator[list[list[str]]]:
    """Commands run after the test whatever happens (remove containers, then images)."""
    todo: list[list[str]] = []
    yield todo
    for cmd in reversed(todo):
        subprocess.run(cmd, capture_output=True, env=tool[1], timeout=120)


def _yard(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def _wait_ready(url: str, container: str, tool: tuple[str, dict[str, str]], timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = httpx.get(url + "/health/ready", timeout=5)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        state = subprocess.run(
            [tool[0], "inspect", container, "--format", "{{.State.Running}}"],
            capture_output=True,
            text=True,
            env=tool[1],
        )
        if state.stdout.strip() == "false":
            logs = subprocess.run([tool[0], "logs", container], capture_output=True, text=True, env=tool[1])
            pytest.fail(f"the container stopped before it was ready:\n{logs.stdout}\n{logs.stderr}")
        time.sleep(0.5)
    pytest.fail(f"{url}/health/ready did not answer 200 within {timeout} s")


def _run(
    tool: tuple[str, dict[str, str]], image: str, cleanup: list[list[str]], *extra: str
) -> tuple[str, str]:
    from modelyard.serving._server import free_port

    name, env = tool
    port = free_port()
    container = f"yard-test-{uuid.uuid4().hex[:10]}"
    cleanup.append([name, "rm", "-f", container])
    cmd = [name, "run", "-d", "--name", container, "--read-only", "-p", f"127.0.0.1:{port}:8080"]
    res = subprocess.run([*cmd, *extra, image], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    return container, f"http://127.0.0.1:{port}"


def test_built_image_serves_read_only_as_non_root(
    tool: tuple[str, dict[str, str]],
    base_image: str,
    build_store: Any,
    cleanup: list[list[str]],
    tmp_path: Path,
) -> None:
    name, env = tool
    uri, mvs = build_store
    tag = f"localhost/yard-test-clf:{uuid.uuid4().hex[:8]}"
    cleanup.append([name, "rmi", "-f", tag])
    res = _yard(
        env, "--uri", uri, "build", "clf@production", "-t", tag, "--base-image", base_image,
        "--builder", name, "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    built = json.loads(res.stdout)
    assert built["builder"] == name and built["tag"] == tag and built["size_bytes"] > 0
    # what the image says about itself
    inspect = subprocess.run([name, "image", "inspect", tag], capture_output=True, text=True, env=env)
    info = json.loads(inspect.stdout)[0]
    cfg = info["Config"]
    assert cfg["User"] == "10001:10001"
    labels = cfg["Labels"]
    assert labels["io.modelyard.model.name"] == "clf" and labels["io.modelyard.model.version"] == "1"
    assert labels["io.modelyard.model.manifest-digest"] == mvs["clf1"].manifest_digest
    assert labels["org.opencontainers.image.version"] == "1"
    health = cfg.get("Healthcheck") or info.get("Healthcheck") or {}  # docker: in Config; podman: beside it
    assert "/health/ready" in " ".join(health.get("Test", []))

    container, url = _run(tool, tag, cleanup)
    ready = _wait_ready(url, container, tool)
    assert ready["models"]["primary"]["version"] == 1
    X = frame(20, seed=5)
    r = httpx.post(url + "/v1/models/clf/predict", json={"records": X.to_dict(orient="records")}, timeout=60)
    assert r.status_code == 200, r.text
    from modelyard.registry import load_model

    assert r.json()["predictions"] == load_model("clf/1", uri).predict(X).tolist()
    bad = httpx.post(url + "/v1/models/clf/predict", json={"records": [{"tenure": "x"}]}, timeout=60)
    assert 400 <= bad.status_code < 500

    def exec_py(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [name, "exec", container, "python", "-c", code], capture_output=True, text=True, env=env
        )

    assert exec_py("import os; print(os.getuid(), os.getgid())").stdout.split() == ["10001", "10001"]
    ro = exec_py("open('/opt/yard/model/x', 'w')")
    assert ro.returncode != 0 and "Read-only file system" in ro.stderr
    assert exec_py("open('/tmp/x', 'w').write('ok')").returncode == 0  # the writable tmp
    if name == "podman":  # no systemd here to run the timer: run the image's HEALTHCHECK once by hand
        hc = subprocess.run([name, "healthcheck", "run", container], capture_output=True, text=True, env=env)
        assert hc.returncode == 0, hc.stdout + hc.stderr
    else:
        deadline = time.monotonic() + 120
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            status = subprocess.run(
                [name, "inspect", container, "--format", "{{.State.Health.Status}}"],
                capture_output=True,
                text=True,
                env=env,
            ).stdout.strip()
            time.sleep(1)
        assert status == "healthy"
    logs = subprocess.run([name, "logs", container], capture_output=True, text=True, env=env)
    assert "Serving clf/1 (baked) as 'clf'" in logs.stdout + logs.stderr


def test_a_tampered_model_fails_the_build(
    tool: tuple[str, dict[str, str]],
    base_image: str,
    build_store: Any,
    cleanup: list[list[str]],
    tmp_path: Path,
) -> None:
    name, env = tool
    uri, mvs = build_store
    ctx = tmp_path / "ctx"
    res = _yard(
        env, "--uri", uri, "build", "clf/1", "--dockerfile-only", str(ctx), "--base-image", base_image
    )
    assert res.returncode == 0, res.stderr
    blobs = [p for p in (ctx / "model" / "blobs").rglob("*") if p.is_file()]
    target = max(
        (p for p in blobs if mvs["clf1"].manifest_digest not in str(p)), key=lambda p: p.stat().st_size
    )
    target.chmod(0o644)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    tag = f"localhost/yard-test-tampered:{uuid.uuid4().hex[:8]}"
    cleanup.append([name, "rmi", "-f", tag])
    cmd = [name, "build", "-t", tag, str(ctx)]
    if name == "podman":
        cmd.insert(2, "--format=docker")
    build = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert build.returncode != 0
    out = build.stdout + build.stderr
    assert "Model clf/1: file" in out and "does not match its digest; the image is not built" in out


def test_no_bake_image_loads_the_model_from_the_store_at_start(
    tool: tuple[str, dict[str, str]],
    base_image: str,
    build_store: Any,
    cleanup: list[list[str]],
    tmp_path: Path,
) -> None:
    name, env = tool
    uri, _ = build_store
    tag = f"localhost/yard-test-nobake:{uuid.uuid4().hex[:8]}"
    cleanup.append([name, "rmi", "-f", tag])
    res = _yard(
        env, "--uri", uri, "build", "clf@production", "-t", tag, "--base-image", base_image,
        "--builder", name, "--no-bake", "--json",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    assert json.loads(res.stdout)["baked"] is False
    store = tmp_path / "store"
    shutil.copytree(uri, store)
    for p in [store, *store.rglob("*")]:  # the server's user (10001) writes the prediction log there
        p.chmod(0o777 if p.is_dir() else 0o666)
    container, url = _run(tool, tag, cleanup, "-v", f"{store}:/store", "-e", "YARD_URI=/store")
    ready = _wait_ready(url, container, tool)
    assert ready["models"]["primary"]["name"] == "clf" and ready["models"]["primary"]["version"] == 1
    X = frame(5, seed=9)
    r = httpx.post(url + "/v1/models/clf/predict", json={"records": X.to_dict(orient="records")}, timeout=60)
    assert r.status_code == 200 and len(r.json()["predictions"]) == 5
    logs = subprocess.run([name, "logs", container], capture_output=True, text=True, env=env)
    assert "(from /store)" in logs.stdout + logs.stderr
