"""`yard build` for real: build images with podman, buildah and docker on a base image made here
from this machine's Python (no registry can be pulled from), run them with a read-only root
filesystem as the non-root user, and check the probes and the predictions. Three full builds: the
session's baked image (``clf_image`` in conftest.py, shared with test_k8s_podman.py), a
``--no-bake`` one made with buildah for the native ``--platform``, and the baked image built and run
with docker (a daemon of the session's own: ``dockerd`` in conftest.py); plus a build that must fail
at the verify step. Skipped, with the reason, where the tool is not installed (a failure under CI)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .buildmodels import frame
from .conftest import missing, shared_image, yard_build, yard_cli

# an image build takes minutes on a loaded 2-core machine (8-9 min seen at load 15-20): beyond the
# suite's 10-minute hang guard
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


Cleanup = list[tuple[list[str], dict[str, str]]]


@pytest.fixture
def cleanup() -> Iterator[Cleanup]:
    """Commands (with their environment) run after the test whatever happens (remove containers,
    then images)."""
    todo: Cleanup = []
    yield todo
    for cmd, env in reversed(todo):
        subprocess.run(cmd, capture_output=True, env=env, timeout=120)


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
    tool: tuple[str, dict[str, str]], image: str, cleanup: Cleanup, *extra: str, host_network: bool = False
) -> tuple[str, str]:
    """Start ``image`` read-only; ``(container, url)``. ``host_network``: on the host's network with
    its own port (``YARD_PORT``), for the session's dockerd, which has no bridge to publish through."""
    from modelyard.serving._server import free_port

    name, env = tool
    port = free_port()
    container = f"yard-test-{uuid.uuid4().hex[:10]}"
    cleanup.append(([name, "rm", "-f", container], env))
    cmd = [name, "run", "-d", "--name", container, "--read-only"]
    cmd += (
        ["--network", "host", "-e", f"YARD_PORT={port}"] if host_network else ["-p", f"127.0.0.1:{port}:8080"]
    )
    res = subprocess.run([*cmd, *extra, image], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    return container, f"http://127.0.0.1:{port}"


def test_built_image_serves_read_only_as_non_root(
    tool: tuple[str, dict[str, str]], clf_image: dict[str, Any], image_store: Any, cleanup: Cleanup
) -> None:
    check_image_serves(tool, clf_image, image_store, cleanup)


def test_docker_builds_and_runs_the_image(
    dockerd: tuple[str, dict[str, str]], docker_clf_image: dict[str, Any], image_store: Any, cleanup: Cleanup
) -> None:
    """``yard build --builder docker`` on a real docker daemon: the same checks as podman's image."""
    check_image_serves(dockerd, docker_clf_image, image_store, cleanup, host_network=True)


def check_image_serves(
    tool: tuple[str, dict[str, str]], built: dict[str, Any], image_store: Any, cleanup: Cleanup, **run: Any
) -> None:
    """The image ``built`` says what it holds, runs read-only as 10001, passes its probes and its
    HEALTHCHECK, answers predictions as the registry's model does, and reads its baked caches."""
    name, env = tool
    uri, mvs = image_store
    tag = built["tag"]
    assert built["builder"] == name and built["size_bytes"] > 0
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

    container, url = _run(tool, tag, cleanup, **run)
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
        # (its 3 s timeout is for a production host: on a busy one the check's own Python start can
        # exceed it, so it is retried until it passes, within a generous bound)
        deadline = time.monotonic() + 180
        while True:
            hc = subprocess.run(
                [name, "healthcheck", "run", container], capture_output=True, text=True, env=env
            )
            if hc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
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
    # skops' trusted-type lists were computed at build time: the server read them from the image's
    # read-only cache (not rescanned into /tmp), and the server's user cannot rewrite them
    cache = exec_py(
        "import glob, json, os; from modelyard.registry.flavors import _skops_cache as c; "
        "p = c.cache_path(); print(json.dumps([str(c.cache_dir()), p.is_file(), "
        "c.cached_estimators() is not None, os.access(p, os.W_OK), os.stat(p).st_uid, "
        "glob.glob('/tmp/.cache/modelyard/*')]))"
    )
    assert cache.returncode == 0, cache.stderr
    assert json.loads(cache.stdout) == ["/opt/yard/cache", True, True, False, 0, []]


def test_a_tampered_model_fails_the_build(
    tool: tuple[str, dict[str, str]],
    base_image: str,
    image_store: Any,
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    name, env = tool
    uri, mvs = image_store
    ctx = tmp_path / "ctx"
    res = yard_cli(
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
    cleanup.append(([name, "rmi", "-f", tag], env))
    cmd = [name, "build", "-t", tag, str(ctx)]
    if name == "podman":
        cmd.insert(2, "--format=docker")
    build = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    assert build.returncode != 0
    out = build.stdout + build.stderr
    assert "Model clf/1: file" in out and "does not match its digest; the image is not built" in out


@pytest.fixture(scope="session")
def nobake_image(
    tool: tuple[str, dict[str, str]], base_image: str, image_store: Any, shared_dir: Path
) -> Iterator[dict[str, Any]]:
    """``yard build --no-bake``, built with buildah (the third builder; it shares podman's image
    storage, so podman runs what it built) for this machine's platform, given explicitly; with the
    session's tool where buildah is not installed (then the buildah test says so). Once for all
    xdist workers."""
    from modelyard.deploy._build import native_platform

    name, env = tool
    builder = "buildah" if shutil.which("buildah") and name == "podman" else name

    def build() -> dict[str, Any]:
        plat = ("--platform", str(native_platform()), "--no-bake")
        return yard_build((builder, env), image_store[0], base_image, "nobake", *plat)

    with shared_image(shared_dir, "nobake", tool, build) as built:
        yield built


def test_buildah_builds_for_the_native_platform(
    tool: tuple[str, dict[str, str]], nobake_image: dict[str, Any]
) -> None:
    from modelyard.deploy._build import native_platform

    if nobake_image["builder"] != "buildah":
        missing("buildah is not installed, or podman is not the container tool (apt-get install -y buildah)")
    name, env = tool
    assert nobake_image["platform"] == str(native_platform()) and nobake_image["size_bytes"] > 0
    info = json.loads(
        subprocess.run(
            [name, "image", "inspect", nobake_image["tag"]], capture_output=True, text=True, env=env
        ).stdout
    )[0]
    here = native_platform()
    assert (info["Os"], info["Architecture"]) == (here.os, here.architecture)
    health = info.get("Healthcheck") or info["Config"].get("Healthcheck") or {}
    assert "/health/ready" in " ".join(health.get("Test", []))  # docker format kept it
    assert info["Config"]["Labels"]["io.modelyard.baked"] == "false"


def test_no_bake_image_loads_the_model_from_the_store_at_start(
    tool: tuple[str, dict[str, str]],
    nobake_image: dict[str, Any],
    image_store: Any,
    cleanup: Cleanup,
    tmp_path: Path,
) -> None:
    name, env = tool
    uri, _ = image_store
    tag = nobake_image["tag"]
    assert nobake_image["baked"] is False
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
