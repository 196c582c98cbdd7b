"""Fixtures of tests/deploy: real helm and kubectl binaries, and Kubernetes schema validation.

helm and kubectl come from ``.ci/get-k8s-tools`` (pinned, from a PyPI wheel) at ``.tools/``, or from
PATH. When one is missing the test is skipped with the reason (and fails under CI, like the root
conftest's ``missing_service``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
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
