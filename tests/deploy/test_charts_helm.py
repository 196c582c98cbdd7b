"""Both Helm charts with the real helm binary: lint, template, strict Kubernetes schemas, and values
that break a chart's values.schema.json (or a spec rule) failing the install."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelyard.deploy._chart_schema import model_deployment_schema
from modelyard.serving import load_spec

from .conftest import CHARTS, load_docs, run, validate

SERVER = CHARTS / "modelyard"
MODEL = CHARTS / "model-deployment"


def _template(helm: str, chart: Path, *args: str, ok: bool = True) -> Any:
    return run(helm, "template", "rel", str(chart), "--namespace", "ml", *args, ok=ok)


def _kinds(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in docs}


@pytest.mark.parametrize("chart", [SERVER, MODEL], ids=["modelyard", "model-deployment"])
def test_lint_strict(helm: str, chart: Path) -> None:
    p = run(helm, "lint", "--strict", str(chart), "-f", str(chart / "ci/test-values.yaml"))
    assert "0 chart(s) failed" in p.stdout


def test_team_server_chart_renders_valid_objects(helm: str) -> None:
    docs = load_docs(_template(helm, SERVER, "-f", str(SERVER / "ci/test-values.yaml")).stdout)
    assert validate(docs) == {"ServiceMonitor": pytest.approx(validate(docs)["ServiceMonitor"])}
    objs = _kinds(docs)
    assert {
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "Ingress",
        "ServiceMonitor",
        "PodDisruptionBudget",
    } <= set(objs)
    (c,) = objs["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["yard"]
    assert c["args"] == [
        "server", "--uri", "$(YARD_URI)", "--blob-uri", "$(YARD_BLOB_URI)",
        "--host", "0.0.0.0", "--port", "8080", "--workers", "2",
    ]  # fmt: skip
    env = {e["name"]: e for e in c["env"]}
    for name, key in (
        ("YARD_URI", "postgres-url"),
        ("YARD_BLOB_URI", "blob-uri"),
        ("YARD_ADMIN_TOKEN", "admin-token"),
    ):
        assert env[name]["valueFrom"]["secretKeyRef"] == {"name": "rel-modelyard", "key": key}
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert c["envFrom"] == [{"secretRef": {"name": "yard-s3"}}]
    assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # no URL or password in the pod spec: only in the Secret
    assert "secret@postgres" not in json.dumps(objs["Deployment"])
    secret = objs["Secret"]
    assert secret["stringData"]["postgres-url"] == "postgresql://yard:secret@postgres:5432/yard"
    assert len(secret["stringData"]["admin-token"]) == 48
    # migrations run before install/upgrade, after the Secret they read exists
    job = objs["Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert int(secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["yard", "init"]
    ing = objs["Ingress"]["spec"]
    assert ing["tls"][0]["secretName"] == "yard-tls" and ing["rules"][0]["host"] == "yard.example.com"
    assert objs["ServiceMonitor"]["spec"]["endpoints"][0]["path"] == "/metrics"


def test_team_server_with_existing_secrets_and_init_container(helm: str) -> None:
    docs = load_docs(
        _template(
            helm,
            SERVER,
            "--set", "postgres.existingSecret=pg", "--set", "blobs.existingSecret=s3",
            "--set", "adminToken.existingSecret=admin", "--set", "migrations.mode=initContainer",
        ).stdout
    )  # fmt: skip
    validate(docs)
    objs = _kinds(docs)
    assert "Secret" not in objs and "Job" not in objs  # every value comes from the user's Secrets
    pod = objs["Deployment"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"] == ["yard", "init"]
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in pod["containers"][0]["env"] if "valueFrom" in e}
    assert env == {
        "YARD_URI": {"name": "pg", "key": "url"},
        "YARD_BLOB_URI": {"name": "s3", "key": "uri"},
        "YARD_ADMIN_TOKEN": {"name": "admin", "key": "admin-token"},
    }


def test_model_deployment_chart_renders_the_spec_and_valid_objects(helm: str) -> None:
    import yaml

    docs = load_docs(_template(helm, MODEL, "-f", str(MODEL / "ci/test-values.yaml")).stdout)
    assert set(validate(docs)) == {"ServiceMonitor"}
    objs = _kinds(docs)
    values = yaml.safe_load((MODEL / "ci/test-values.yaml").read_text())
    spec = load_spec(objs["ConfigMap"]["data"]["spec.yaml"])  # what the server will load
    assert spec == load_spec(values["spec"])
    dep = objs["Deployment"]["spec"]
    (c,) = dep["template"]["spec"]["containers"]
    assert c["image"] == "registry.example.com/churn:7"
    assert dep["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] == 2 + 5  # ceil(1500 ms) + 5 s
    hpa = objs["HorizontalPodAutoscaler"]["spec"]
    assert [m["type"] for m in hpa["metrics"]] == ["Resource", "Pods"]
    assert "replicas" not in dep  # the autoscaler owns it


def test_chart_and_cli_agree_on_the_pod(helm: str) -> None:
    """The chart and `yard deploy k8s` describe the same container (probes, command, security)."""
    from modelyard.deploy import K8sOptions, manifests

    docs = load_docs(_template(helm, MODEL, "-f", str(MODEL / "ci/test-values.yaml")).stdout)
    (chart_c,) = _kinds(docs)["Deployment"]["spec"]["template"]["spec"]["containers"]
    spec = load_spec({"models": {"primary": "m/1"}, "timeout_ms": 1500})
    dep = manifests(spec, K8sOptions(name="rel", image="registry.example.com/churn:7"))["deployment.yaml"]
    (cli_c,) = dep["spec"]["template"]["spec"]["containers"]
    assert "command" not in chart_c and "command" not in cli_c
    for key in (
        "args",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "lifecycle",
        "securityContext",
        "ports",
    ):
        assert chart_c[key] == cli_c[key], key


def test_values_schema_is_generated_from_the_deployment_spec() -> None:
    committed = json.loads((MODEL / "values.schema.json").read_text())
    assert committed == model_deployment_schema(), (
        "charts/model-deployment/values.schema.json is stale: run "
        "python -m modelyard.deploy._chart_schema charts/model-deployment/values.schema.json"
    )


BAD_MODEL_VALUES = [
    ("spec:\n  models: {primary: m/1}\n  timeout_ms: -5\n", "/spec/timeout_ms"),
    ("spec:\n  models: {primary: m/1}\n  batching: {max_batch_size: 0}\n", "/spec/batching/max_batch_size"),
    ("spec:\n  models: {primary: m/1}\n  timeout: 5\n", "timeout"),  # a misspelt field
    ("spec:\n  traffic: {kind: single}\n", "missing property 'models'"),
    ("spec:\n  models: {}\n", "/spec/models"),
    ("spec:\n  models: {primary: m/1}\n  traffic: {kind: rainbow}\n", "/spec/traffic"),
    ("replicas: 0\n", "/replicas"),
    ("resources: {limits: {cpu: lots}}\n", "/resources/limits/cpu"),
    (
        "spec:\n  models: {a: m/1, b: m/2}\n  traffic: {kind: canary, weights: {a: 50, b: 40}}\n",
        "must add up to 100",
    ),
    (
        "spec:\n  models: {a: m/1}\n  traffic: {kind: single, model: b}\n",
        'model slot "b", which is not in spec.models',
    ),
    ("spec:\n  models: {a: m/1}\n  traffic: {model: a}\n  fallback: {}\n", "exactly one of 'model'"),
    ("image: {repository: '', tag: '7'}\n", "image.repository is required"),
    ("image: {tag: '7'}\n", "image.repository is required"),
]


@pytest.mark.parametrize(("values", "why"), BAD_MODEL_VALUES)
def test_bad_model_values_fail_template_and_lint(helm: str, tmp_path: Path, values: str, why: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(values if values.startswith("spec:") else "spec: {models: {primary: m/1}}\n" + values)
    image = (
        () if values.startswith("image") else ("--set", "image.repository=r/churn", "--set", "image.tag=7")
    )
    p = _template(helm, MODEL, *image, "-f", str(f), ok=False)
    assert p.returncode != 0 and why in p.stderr, p.stderr
    if (
        why.startswith("/") or "missing" in why
    ):  # helm lint reports schema errors (a template's `fail` is INFO)
        p = run(helm, "lint", str(MODEL), *image, "-f", str(f), ok=False)
        assert p.returncode != 0 and "values don't meet the specifications" in p.stdout + p.stderr, p.stdout


BAD_SERVER_VALUES = [
    ("postgres: {url: 'mysql://u@h/db'}\n", "/postgres/url"),
    ("workers: 0\n", "/workers"),
    ("migrations: {mode: sometimes}\n", "/migrations/mode"),
    ("ingress: {host: 'Not A Host'}\n", "/ingress/host"),
    ("postgres: {url: ''}\n", "Set postgres.url"),
    ("blobs: {uri: ''}\n", "Set blobs.uri"),
]


@pytest.mark.parametrize(("values", "why"), BAD_SERVER_VALUES)
def test_bad_server_values_fail_template(helm: str, tmp_path: Path, values: str, why: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(values)
    p = _template(helm, SERVER, "-f", str(SERVER / "ci/test-values.yaml"), "-f", str(f), ok=False)
    assert p.returncode != 0 and why in p.stderr, p.stderr
