"""`podman kube play` runs the Deployment `yard deploy k8s` renders, with an image `yard build` made,
as a real pod (the ConfigMap mounted as the spec): it becomes ready, predictions answer, it runs
as user 10001 on a read-only root filesystem with /tmp writable. (podman copies a ConfigMap once,
so the swap on a ConfigMap edit is tested against a kubelet-style volume in test_k8s_rollout.py.)
podman 4.3 publishes the container port on the host (8080): the test reaches the pod by its IP.

Needs podman (Debian ``podman``, with ``runc``: see ../shared/INFRA.md): skipped with the reason
when it is missing (a failure under CI). The image is the session's ``clf_image`` (conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.deploy import K8sOptions, manifests
from modelyard.deploy._kustomize import dump_yaml
from modelyard.serving import load_spec

from .buildmodels import frame
from .conftest import missing

#: A bound on waiting for the pod to be ready (a condition, not a speed check: generous for a busy host).
READY_WAIT_S = 480


def _podman(*args: str, ok: bool = True, timeout: float = 900, env: dict[str, str] | None = None) -> str:
    p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=env)
    if ok and p.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}\n{p.stdout[-2000:]}")
    return p.stdout


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
@pytest.mark.timeout(2400)  # the session's image may be built in its setup (minutes under load)
def test_podman_kube_play_runs_the_rendered_deployment(
    tmp_path: Path, tool: tuple[str, dict[str, str]], clf_image: dict[str, Any], image_store: Any
) -> None:
    """The Deployment runs the session's ``yard build`` image (conftest.py's ``clf_image``: built once
    for this and test_build_container.py)."""
    name, podman_env = tool
    if name != "podman":
        missing(f"podman kube play needs podman; the container tool here is {name}")
    uri, _ = image_store
    spec = load_spec(
        {"endpoint": "clf", "models": {"primary": "clf/1"}, "prediction_log": {"enabled": False}}
    )
    opts = K8sOptions(
        name="churn",
        image=clf_image["tag"],
        replicas=1,
        cpu_request="250m",
        cpu_limit="1",
        memory_limit="1Gi",
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
        X = frame(10, seed=3)
        r = httpx.post(
            url + "/v1/models/clf/predict", json={"records": X.to_dict(orient="records")}, timeout=30
        )
        assert r.status_code == 200, r.text
        from modelyard.registry import load_model

        assert r.json()["predictions"] == load_model("clf/1", uri).predict(X).tolist()
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
