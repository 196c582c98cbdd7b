"""RBAC for the rollout controller: a ServiceAccount, a Role and a RoleBinding, least privilege.

The Role must allow exactly what :class:`~modelyard.rollout.KubernetesTarget` does through the API
server and nothing more. Checked for real against the target: it drives a fake API server that
authorizes every request against the generated Role the way the API server's RBAC authorizer
does (403 otherwise), and every rule must be used by those calls. The same rules come out of
``yard deploy k8s --rollout-controller``, the model-deployment chart and the team server chart;
all are validated in strict mode against Kubernetes' schemas, rendered by kustomize and helm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.deploy import K8sOptions, manifests
from modelyard.deploy._k8s import ROLLOUT_RULES, rollout_role
from modelyard.errors import InvalidArgumentError
from modelyard.rollout import KubernetesTarget
from modelyard.serving import load_spec

from ._fake_k8s import FakeKube, allowed, recorded
from .conftest import CHARTS, load_docs, run, validate
from .test_k8s_rollout import CANARY, CANARY_TRAFFIC, POD_A, POD_B, SINGLE, Clock, _health

SPEC = load_spec({"endpoint": "churn", "models": {"primary": "churn-clf/7"}})


def _opts(name: str = "churn", **kw: Any) -> K8sOptions:
    return K8sOptions(name=name, image="registry.example.com/churn:7", namespace="ml", **kw)


def _rules(role: dict[str, Any]) -> set[tuple[str, str, tuple[str, ...]]]:
    """(resource, verb, resourceNames) of every rule, one per verb: comparable across sources."""
    return {
        (res, verb, tuple(rule.get("resourceNames") or ()))
        for rule in role["rules"]
        for res in rule["resources"]
        for verb in rule["verbs"]
        if rule["apiGroups"] == [""]
    }


def test_no_rbac_objects_unless_asked() -> None:
    assert not any(f.startswith("rollout-") for f in manifests(SPEC, _opts()))


def test_controller_in_the_namespace_gets_its_account_a_role_and_a_binding() -> None:
    objs = manifests(SPEC, _opts(rollout_controller="yard-rollout"))
    sa, role, binding = (
        objs["rollout-serviceaccount.yaml"],
        objs["rollout-role.yaml"],
        objs["rollout-rolebinding.yaml"],
    )
    validate([sa, role, binding])
    assert sa["kind"] == "ServiceAccount" and sa["metadata"] == {**sa["metadata"], "name": "yard-rollout"}
    assert sa["metadata"]["namespace"] == "ml"
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "ml"  # never a ClusterRole
    assert _rules(role) == {
        ("configmaps", "get", ("churn-spec",)),
        ("configmaps", "patch", ("churn-spec",)),
        ("pods", "list", ()),
        ("pods/proxy", "get", ()),
    }
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "churn-rollout",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "yard-rollout", "namespace": "ml"}]
    # the model server itself still gets no API token
    assert objs["deployment.yaml"]["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


def test_controller_elsewhere_is_bound_not_created() -> None:
    objs = manifests(SPEC, _opts(rollout_controller="yard/yard-modelyard"))
    assert "rollout-serviceaccount.yaml" not in objs
    binding = objs["rollout-rolebinding.yaml"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "yard-modelyard", "namespace": "yard"}]
    validate([objs["rollout-role.yaml"], binding])


@pytest.mark.parametrize("value", ["Yard", "a/b/c", "/x", "ns/", "x" * 64, "ns/under_score"])
def test_bad_controller_names_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgumentError, match="rollout_controller"):
        _opts(rollout_controller=value)


def _authorized_target(kube: FakeKube, clock: Clock) -> KubernetesTarget:
    kube.rbac = ("ml", rollout_role(SPEC, _opts(rollout_controller="yard-rollout"))["rules"])
    return KubernetesTarget(
        "churn", namespace="ml", api_client=kube.api_client(), clock=clock, sleep=clock.sleep, poll_s=1
    )


def test_the_role_allows_every_call_of_a_rollout_and_each_rule_is_needed() -> None:
    pods: dict[str, Any] = {POD_A: _health(SINGLE, {"primary": 1}), POD_B: _health(SINGLE, {"primary": 1})}
    with FakeKube(recorded("configmap.json"), pods) as kube:

        def kubelet(_text: str) -> None:  # both pods take the new spec
            for pod in (POD_A, POD_B):
                pods[pod] = _health(CANARY_TRAFFIC, {"stable": 1, "canary": 2})

        kube.on_patch = kubelet
        t = _authorized_target(kube, Clock())
        assert t.spec()["traffic"] == SINGLE
        assert t.versions() == {"primary": 1}
        t.apply(CANARY)  # read, patch, then list pods and read each one's /health/ready
        assert t.versions() == {"stable": 1, "canary": 2}
        assert kube.attributes and all(allowed(kube.rbac, a) for a in kube.attributes)  # type: ignore[arg-type]
        used = {(resource, verb) for _ns, verb, resource, _name in kube.attributes}
    granted = {(res, verb) for res, verbs in ROLLOUT_RULES for verb in verbs}
    assert used == granted  # nothing granted that a rollout does not use


def test_the_fake_authorizer_refuses_what_the_role_does_not_grant() -> None:
    """The check above can fail: another ConfigMap, a write to pods or another namespace is a 403."""
    role = ("ml", rollout_role(SPEC, _opts(rollout_controller="yard-rollout"))["rules"])
    assert allowed(role, ("ml", "patch", "configmaps", "churn-spec"))
    assert not allowed(role, ("ml", "patch", "configmaps", "other-spec"))
    assert not allowed(role, ("ml", "list", "configmaps", None))
    assert not allowed(role, ("ml", "delete", "pods", "churn-1"))
    assert not allowed(role, ("ml", "get", "secrets", "churn-store"))
    assert not allowed(role, ("other", "list", "pods", None))
    cm = recorded("configmap.json")
    cm["metadata"]["name"] = "other-spec"
    with FakeKube(cm, {}) as kube:
        t = _authorized_target(kube, Clock())
        t.configmap = "other-spec"
        from modelyard.rollout._target import TargetError

        with pytest.raises(TargetError, match="403"):
            t.spec()


def test_cli_writes_rbac_that_kustomize_renders_and_kubernetes_accepts(tmp_path: Path, kubectl: str) -> None:
    out = tmp_path / "k8s"
    r = CliRunner().invoke(
        app,
        ["deploy", "k8s", "--spec", _spec_file(tmp_path), "--image", "r.example.com/churn:7",
         "--out", str(out), "--namespace", "ml", "--rollout-controller", "yard-rollout",
         "--no-service-monitor"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    for overlay in ("dev", "prod"):
        docs = load_docs(run(kubectl, "kustomize", str(out / "overlays" / overlay)).stdout)
        assert validate(docs) == {}
        kinds = {d["kind"]: d for d in docs}
        assert {"ServiceAccount", "Role", "RoleBinding"} <= set(kinds)
        assert _rules(kinds["Role"]) == _rules(rollout_role(SPEC, _opts(rollout_controller="yard-rollout")))
    bad = CliRunner().invoke(
        app,
        ["deploy", "k8s", "--spec", _spec_file(tmp_path), "--image", "r.example.com/churn:7", "--out",
         str(tmp_path / "bad"), "--rollout-controller", "Bad/Name/x"],
    )  # fmt: skip
    assert bad.exit_code != 0
    assert "The '--rollout-controller' option of yard deploy k8s" in bad.output + str(bad.exception or "")


def _spec_file(tmp_path: Path) -> str:
    path = tmp_path / "serve.yaml"
    path.write_text(SPEC.to_yaml())
    return str(path)


def _helm_docs(helm: str, chart: str, *args: str) -> list[dict[str, Any]]:
    p = run(helm, "template", "rel", str(CHARTS / chart), "--namespace", "ml", *args)
    return load_docs(p.stdout)


def test_model_deployment_chart_rbac(helm: str) -> None:
    values = str(CHARTS / "model-deployment" / "ci" / "test-values.yaml")
    plain = _helm_docs(helm, "model-deployment", "-f", values)
    assert not {"ServiceAccount", "Role", "RoleBinding"} & {d["kind"] for d in plain}
    docs = _helm_docs(
        helm, "model-deployment", "-f", values, "--set", "rolloutController.serviceAccount=yard-rollout"
    )
    validate(docs)
    kinds = {d["kind"]: d for d in docs}
    assert kinds["ServiceAccount"]["metadata"]["name"] == "yard-rollout"
    expected = _rules(rollout_role(SPEC, _opts(name="rel", rollout_controller="yard-rollout")))
    assert _rules(kinds["Role"]) == expected  # the chart and the Python builders agree
    assert kinds["RoleBinding"]["subjects"] == [
        {"kind": "ServiceAccount", "name": "yard-rollout", "namespace": "ml"}
    ]
    elsewhere = _helm_docs(
        helm, "model-deployment", "-f", values,
        "--set", "rolloutController.serviceAccount=rel-modelyard",
        "--set", "rolloutController.namespace=yard",
    )  # fmt: skip
    kinds = {d["kind"]: d for d in elsewhere}
    assert "ServiceAccount" not in kinds
    assert kinds["RoleBinding"]["subjects"][0] == {
        "kind": "ServiceAccount",
        "name": "rel-modelyard",
        "namespace": "yard",
    }
    bad = run(helm, "template", "rel", str(CHARTS / "model-deployment"), "-f", values,
              "--set", "rolloutController.serviceAccount=Bad_SA", ok=False)  # fmt: skip
    assert bad.returncode != 0 and "rolloutController/serviceAccount" in bad.stderr


def test_team_server_chart_rbac(helm: str) -> None:
    values = str(CHARTS / "modelyard" / "ci" / "test-values.yaml")
    plain = {d["kind"]: d for d in _helm_docs(helm, "modelyard", "-f", values)}
    pod = plain["Deployment"]["spec"]["template"]["spec"]
    assert plain["ServiceAccount"]["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "rel-modelyard" and pod["automountServiceAccountToken"] is False
    assert "Role" not in plain and "RoleBinding" not in plain
    docs = _helm_docs(
        helm, "modelyard", "-f", values,
        "--set", "rollouts.targets[0].namespace=ml", "--set", "rollouts.targets[0].deployment=churn",
        "--set", "rollouts.targets[1].namespace=risk", "--set", "rollouts.targets[1].deployment=fraud",
    )  # fmt: skip
    validate(docs)
    roles = [d for d in docs if d["kind"] == "Role"]
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert [r["metadata"]["namespace"] for r in roles] == ["ml", "risk"]
    assert not any(d["kind"].startswith("Cluster") for d in docs)
    for role, name in zip(roles, ("churn", "fraud"), strict=True):
        assert _rules(role) == _rules(rollout_role(SPEC, _opts(name=name, rollout_controller="x")))
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "rel-modelyard", "namespace": "ml"}]
        assert b["roleRef"]["name"] in {r["metadata"]["name"] for r in roles}
    dep = next(d for d in docs if d["kind"] == "Deployment")
    assert dep["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    bad = run(helm, "template", "rel", str(CHARTS / "modelyard"), "-f", values,
              "--set", "rollouts.targets[0].namespace=ml", ok=False)  # fmt: skip
    assert bad.returncode != 0 and "deployment" in bad.stderr
