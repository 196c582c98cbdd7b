"""`podman kube play` runs the Deployment `yard deploy k8s` renders, with an image `yard build` made,
as a real pod (the ConfigMap mounted as the spec): it becomes ready, predictions answer, it runs
as user 10001 on a read-only root filesystem with /tmp writable. (podman copies a ConfigMap once,
so the swap on a ConfigMap edit is tested against a kubelet-style volume in test_k8s_rollout.py.)
podman 4.3 publishes the container port on the host (8080): the test reaches the pod by its IP.

Needs podman (Debian ``podman``, with ``runc``: see ../shared/INFRA.md) and the image builder
(``modelyard.deploy._build`` and ``tests/deploy/hostbase.py``, from the ``yard build`` work): the
test is skipped with the reason when either is missing (podman missing fails it under CI).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import httpx
import pytest

from modelyard.deploy import K8sOptions, manifests
from modelyard.deploy._kustomize import dump_yaml
from modelyard.serving import load_spec

from .conftest import missing

BASE_TAG = "localhost/yard-k8s-podman-base:3.11"
IMAGE_TAG = "localhost/yard-k8s-podman-model:1"


#: A bound on waiting for the pod to be ready (a condition, not a speed check: generous for a busy host).
READY_WAIT_S = 480


def _podman(*args: str, ok: bool = True, timeout: float = 900, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if ok and p.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}\n{p.stdout[-2000:]}")
    return p.stdout


@pytest.fixture
def podman_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    try:
        from modelyard.deploy._build import build_image  # noqa: F401

        from .hostbase import make_host_base  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"needs the image builder of `yard build` (not in this tree yet: {exc})")
    if shutil.which("podman") is None:
        missing("podman is not installed (apt-get install -y podman runc; see ../shared/INFRA.md)")
    import os
    import resource

    nofile = min(20000, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    nproc = min(32768, resource.getrlimit(resource.RLIMIT_NPROC)[0])
    conf = tmp_path / "containers.conf"
    # crun fails here (setrlimit, hybrid cgroups): runc, and ulimits no higher than the host's
    conf.write_text(
        f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        '[engine]\nruntime = "runc"\n'
    )
    monkeypatch.setenv("CONTAINERS_CONF", str(conf))
    return dict(os.environ)


def _store(tmp_path: Path) -> str:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from modelyard.registry import register_model

    uri = str(tmp_path / "store")
    X = pd.DataFrame({"x": np.arange(20, dtype=float), "y": np.ones(20)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        register_model(LinearRegression().fit(X, X["x"] * 2), "m", input_example=X.head(3), uri=uri)
        register_model(LinearRegression().fit(X, X["x"] * 3), "m", input_example=X.head(3), uri=uri)
    return uri


def _pod(play_output: str, env: dict[str, str]) -> tuple[str, str]:
    """``(pod name, pod IP)`` of the pod ``podman kube play`` printed (``Pod:\n<id>``)."""
    lines = play_output.split()
    pod_id = lines[lines.index("Pod:") + 1]
    info = json.loads(_podman("pod", "inspect", pod_id, env=env))
    info = info[0] if isinstance(info, list) else info
    infra = info.get("InfraContainerID")
    net = json.loads(_podman("inspect", infra, env=env))[0]["NetworkSettings"]
    ip = net.get("IPAddress") or next(
        (n.get("IPAddress") for n in (net.get("Networks") or {}).values() if n.get("IPAddress")), ""
    )
    assert ip, f"no IP address for pod {pod_id}: {net}"
    return str(info["Name"]), str(ip)


@pytest.mark.slow
def test_podman_kube_play_runs_the_rendered_deployment(tmp_path: Path, podman_env: dict[str, str]) -> None:
    from modelyard.deploy._build import build_image

    from .hostbase import make_host_base

    store = _store(tmp_path)
    spec = load_spec({"endpoint": "m", "models": {"primary": "m/1"}, "prediction_log": {"enabled": False}})
    make_host_base(["podman"], BASE_TAG, env=podman_env)
    build_image(
        spec={"models": {"primary": "m/1"}, "endpoint": "m"},
        tag=IMAGE_TAG,
        base_image=BASE_TAG,
        builder="podman",
        uri=store,
    )
    opts = K8sOptions(
        name="churn", image=IMAGE_TAG, replicas=1, cpu_request="250m", cpu_limit="1", memory_limit="1Gi"
    )
    objs = manifests(spec, opts)
    play = tmp_path / "play.yaml"
    play.write_text(dump_yaml(objs["configmap.yaml"]) + "---\n" + dump_yaml(objs["deployment.yaml"]))
    _podman("kube", "play", "--down", str(play), ok=False, env=podman_env)
    try:
        pod, ip = _pod(_podman("kube", "play", str(play), env=podman_env), podman_env)
        assert pod.startswith("churn-pod")
        url = f"http://{ip}:8080"
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            try:
                if httpx.get(url + "/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, _podman("logs", f"{pod}-server", ok=False, env=podman_env)[
                -3000:
            ]
            time.sleep(0.5)
        assert httpx.get(url + "/health/live", timeout=5).status_code == 200
        r = httpx.post(url + "/v1/models/m/predict", json={"records": [{"x": 3.0, "y": 1.0}]}, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == [pytest.approx(6.0)]
        container = json.loads(_podman("inspect", f"{pod}-server", env=podman_env))[0]
        assert container["HostConfig"]["ReadonlyRootfs"] is True
        assert container["Config"]["User"].split(":")[0] == "10001"
        # the process really runs as 10001 and cannot write outside /tmp
        probe = "import os; open('/tmp/ok', 'w'); print(os.getuid()); open('/opt/x', 'w')"
        p = subprocess.run(
            ["podman", "exec", f"{pod}-server", "/opt/yard/venv/bin/python", "-c", probe],
            capture_output=True, text=True, timeout=60, env=podman_env,
        )  # fmt: skip
        assert p.stdout.strip() == "10001" and "Read-only file system" in p.stderr
    finally:
        _podman("kube", "play", "--down", str(play), ok=False, env=podman_env)
        _podman("rmi", "--force", IMAGE_TAG, BASE_TAG, ok=False, env=podman_env)
