"""Fixtures of tests/deploy: real helm and kubectl binaries, Kubernetes schema validation, and the
container tool, base image and model image the real-container tests share (built once per session:
an image build takes minutes here, so tests reuse them instead of building their own). Under
pytest-xdist the store, the base image and the model image are built once for all workers: the
first worker to need one builds it under a file lock in a folder the workers share, the others
reuse it, and the last one done with the model image removes it. A docker daemon of the session's
own (``dockerd``) builds and runs the same model with docker.

helm and kubectl come from ``.ci/get-k8s-tools`` (pinned, from a PyPI wheel) at ``.tools/``, or from
PATH. When one is missing the test is skipped with the reason (and fails under CI, like the root
conftest's ``missing_service``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this run sees (the workers' base temp folders' parent), or the
    session's own without xdist."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / "deploy-shared"
    folder.mkdir(exist_ok=True)
    return folder


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (other workers wait: an image is built once, not twice)."""
    import fcntl

    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def host_base_tag() -> str:
    """The host-Python base image's tag: it only depends on this interpreter."""
    import hashlib

    key = hashlib.sha256(f"{sys.executable}{sys.version}".encode()).hexdigest()[:10]
    return f"localhost/yard-test-hostbase:{sys.version_info[0]}.{sys.version_info[1]}-{key}"


@pytest.fixture(scope="session")
def base_image(tool: tuple[str, dict[str, str]], shared_dir: Path) -> str:
    """The host-Python base image (kept between runs: it only depends on this interpreter)."""
    from .hostbase import make_host_base

    name, env = tool
    tag = host_base_tag()
    with locked(shared_dir / "base.lock"):
        if not _ok([name, "image", "inspect", tag], env):
            make_host_base([name], tag, env=env)
    return tag


@pytest.fixture(scope="session")
def image_store(shared_dir: Path) -> tuple[str, dict[str, Any]]:
    """The store the shared images bake from (clf/1 @production, clf/2, a pyfunc); tests only read it.
    One for all xdist workers, since the images carry its manifest digests."""
    from modelyard.registry import get_model_version

    from .buildmodels import register_models

    uri, made = str(shared_dir / "store"), shared_dir / "store.json"
    with locked(shared_dir / "store.lock"):
        if not made.exists():
            refs = {k: f"{mv.name}/{mv.version}" for k, mv in register_models(uri).items()}
            made.write_text(json.dumps(refs))
    refs = json.loads(made.read_text())
    return uri, {k: get_model_version(ref, uri=uri) for k, ref in refs.items()}


def yard_cli(env: dict[str, str], *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def yard_build(
    tool: tuple[str, dict[str, str]], uri: str, base_image: str, prefix: str, *extra: str
) -> dict[str, Any]:
    """``yard build clf@production --builder TOOL --json`` on a fresh tag; its answer."""
    import uuid

    name, env = tool
    tag = f"localhost/yard-test-{prefix}:{uuid.uuid4().hex[:8]}"
    res = yard_cli(
        env, "--uri", uri, "build", "clf@production", "-t", tag, "--base-image", base_image,
        "--builder", name, "--json", *extra,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    built: dict[str, Any] = json.loads(res.stdout)
    return built


@contextmanager
def shared_image(
    shared_dir: Path, key: str, tool: tuple[str, dict[str, str]], build: Callable[[], dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The image ``build()`` makes (its ``yard build --json`` answer), built once for all xdist
    workers under a file lock; the last worker done with it removes it."""
    lock, made, users = shared_dir / f"{key}.lock", shared_dir / f"{key}.json", shared_dir / f"{key}.users"
    with locked(lock):
        if not made.exists():
            made.write_text(json.dumps(build()))
        users.write_text(str(int(users.read_text()) + 1 if users.exists() else 1))
    built = json.loads(made.read_text())
    try:
        yield built
    finally:
        with locked(lock):
            left = int(users.read_text()) - 1
            users.write_text(str(left))
            if left == 0:
                made.unlink()
                subprocess.run(
                    [tool[0], "rmi", "-f", built["tag"]], capture_output=True, env=tool[1], timeout=300
                )


@pytest.fixture(scope="session")
def clf_image(
    tool: tuple[str, dict[str, str]], base_image: str, image_store: Any, shared_dir: Path
) -> Iterator[dict[str, Any]]:
    """``yard build clf@production`` with the session's tool, once for all xdist workers (shared by
    test_build_container.py and test_k8s_podman.py): ``yard build --json``'s answer (tag, builder, ...)."""
    with shared_image(
        shared_dir, "clf", tool, lambda: yard_build(tool, image_store[0], base_image, "clf")
    ) as b:
        yield b


@pytest.fixture(scope="session")
def dockerd() -> Iterator[tuple[str, dict[str, str]]]:
    """("docker", environment with DOCKER_HOST): a docker daemon of this session's own, with its data
    and exec roots and socket in a temporary folder, no bridge and no iptables rules (nothing shared
    with the host or another daemon: containers use the host's network), stopped by its PID at the
    end and its folder removed. Skipped with the reason where docker.io is not installed."""
    import tempfile
    import time

    exe, client = shutil.which("dockerd"), shutil.which("docker")
    if exe is None or client is None:
        missing(
            "docker.io is not installed (apt-get install -y docker.io): no dockerd or docker to test with"
        )
    root = Path(tempfile.mkdtemp(prefix="yard-dockerd-"))  # short: a socket path has at most 107 bytes
    env = dict(os.environ, DOCKER_HOST=f"unix://{root / 'docker.sock'}")
    log = open(root / "dockerd.log", "wb")  # closed at the end of the session
    cmd = [
        exe, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "-H", env["DOCKER_HOST"],
        "--pidfile", str(root / "dockerd.pid"), "--bridge=none", "--iptables=false", "--ip-masq=false",
        "--ip-forward=false",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120  # ~3 s when idle: a bound, not a speed check
        while not _ok([client, "version", "--format", "{{.Server.Version}}"], env):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                missing(f"dockerd did not start (exit {proc.poll()}):\n{tail}")
            time.sleep(0.5)
        yield "docker", env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
        for point in _mounts_under(root):  # dockerd leaves its network namespace's bind mount behind
            subprocess.run(["umount", point], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def _mounts_under(root: Path) -> list[str]:
    """Mount points under ``root``, deepest first."""
    with open("/proc/mounts") as fh:
        points = [line.split()[1] for line in fh]
    return sorted((p for p in points if p.startswith(f"{root}/")), key=len, reverse=True)


@pytest.fixture(scope="session")
def docker_base_image(dockerd: tuple[str, dict[str, str]], request: pytest.FixtureRequest) -> str:
    """The host-Python base image in the session's docker: the podman tests' image saved and loaded
    (not made twice), or made with docker where podman cannot run."""
    from .hostbase import make_host_base

    _, env = dockerd
    try:
        name, podman_env = request.getfixturevalue("tool")
        podman = request.getfixturevalue("base_image") if name == "podman" else None
    except (pytest.skip.Exception, pytest.fail.Exception):
        podman = None
    if podman is None:
        return make_host_base(["docker"], host_base_tag(), env=env)
    save = subprocess.Popen(
        ["podman", "save", "--format", "docker-archive", podman], stdout=subprocess.PIPE, env=podman_env
    )
    load = subprocess.run(["docker", "load"], stdin=save.stdout, capture_output=True, text=True, env=env)
    assert save.wait(timeout=600) == 0 and load.returncode == 0, load.stderr
    return podman


@pytest.fixture(scope="session")
def docker_clf_image(
    dockerd: tuple[str, dict[str, str]], docker_base_image: str, image_store: Any
) -> dict[str, Any]:
    """``yard build clf@production --builder docker`` in the session's docker (removed with it)."""
    return yard_build(dockerd, image_store[0], docker_base_image, "docker-clf")


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
