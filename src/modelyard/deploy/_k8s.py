"""Kubernetes manifests of one model deployment, built as Python data.

:func:`manifests` turns a deployment spec (:class:`~modelyard.serving.DeploymentSpec`) and a few
sizing choices (:class:`K8sOptions`) into the objects a cluster runs it with:

* a ``ConfigMap`` holding the spec as ``spec.yaml``. The server watches that file, and the kubelet
  updates a mounted ConfigMap in place, so a rollout changes traffic by editing the ConfigMap: no
  pod restarts (the ConfigMap has no hash suffix on purpose);
* a ``Deployment`` running the image's server (a ``yard build`` image's entrypoint) with
  ``--spec /etc/modelyard/spec.yaml --workers auto`` (``auto`` reads the CPU limit from the
  container's cgroup), with startup, liveness (``/health/live``) and
  readiness (``/health/ready``) probes, a rolling update that never drops below the wanted
  replicas (``maxUnavailable: 0``), a ``preStop`` wait longer than the spec's request timeout and
  a grace period longer than both, a non-root, read-only container (``/tmp`` is an ``emptyDir``);
* with ``rollout_controller``, the rollout controller's access to this deployment and nothing
  else: a ``Role`` (``get``/``patch`` on this ConfigMap only, ``list`` pods, ``get`` on
  ``pods/proxy``: exactly the calls of :class:`~modelyard.rollout.KubernetesTarget`), a
  ``RoleBinding`` to the controller's ``ServiceAccount``, and that ``ServiceAccount`` when it lives
  in this namespace (a controller elsewhere, e.g. the team server's chart, brings its own);
* a ``Service``, a ``HorizontalPodAutoscaler`` (CPU, and the in-flight gauge
  ``yard_serving_in_flight_requests`` per pod as a ``Pods`` metric, which a Prometheus adapter
  serves), a ``PodDisruptionBudget``, a ``NetworkPolicy`` (ingress only on the serving port), and
  a ``ServiceMonitor`` for the Prometheus Operator.

Secrets are referenced, never written: the store's URI comes from a Secret the operator creates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from modelyard.errors import InvalidArgumentError, invalid_param
from modelyard.serving import DeploymentSpec

__all__ = [
    "IN_FLIGHT_METRIC",
    "ROLLOUT_RULES",
    "SPEC_DIR",
    "SPEC_KEY",
    "K8sOptions",
    "manifests",
    "prestop_seconds",
]

#: The gauge of requests being answered (``serving/_metrics.py``), per pod the HPA's custom metric.
IN_FLIGHT_METRIC = "yard_serving_in_flight_requests"
#: Where the spec ConfigMap is mounted, and its key (the file the server watches).
SPEC_DIR = "/etc/modelyard"
SPEC_KEY = "spec.yaml"
PORT = 8080

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

#: What a rollout controller does through the API server (``rollout/_kube.py``), as RBAC rules:
#: read and patch the spec ConfigMap (restricted to its name in :func:`rollout_role`), list the
#: pods to find the ready ones, and read each pod's ``/health/ready`` through the pod proxy. No
#: write to pods, no Secrets, no Deployments: a rollout changes only the ConfigMap.
ROLLOUT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("configmaps", ("get", "patch")),
    ("pods", ("list",)),
    ("pods/proxy", ("get",)),
)


def _check_name(value: str, param: str) -> str:
    import re

    if len(value) > 52 or not re.match(_DNS_LABEL, value):
        raise invalid_param(
            param,
            "yard deploy k8s",
            "a DNS label of at most 52 characters (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit)",
            value,
        )
    return value


_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


def _check_quantity(value: str, param: str) -> str:
    import re

    if not re.match(_QUANTITY, value):
        raise invalid_param(
            param, "yard deploy k8s", "a Kubernetes quantity such as 500m, 2, 512Mi or 1Gi", value
        )
    return value


def cpu_cores(quantity: str) -> float:
    """``"500m"`` → 0.5, ``"2"`` → 2.0."""
    if quantity.endswith("m"):
        return float(quantity[:-1]) / 1000
    return float(quantity)


@dataclass(frozen=True)
class K8sOptions:
    """How one model deployment runs on Kubernetes (everything but the spec)."""

    name: str
    image: str
    namespace: str | None = None
    replicas: int = 2
    max_replicas: int = 10
    cpu_request: str = "500m"
    cpu_limit: str = "2"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"
    target_cpu_percent: int = 70
    target_in_flight: int = 8
    store_secret: str | None = None
    store_secret_key: str = "uri"
    image_pull_secret: str | None = None
    run_as_user: int = 10001
    service_monitor: bool = True  # needs the Prometheus Operator's CRD in the cluster
    #: the ServiceAccount a rollout controller runs as: "NAME" (made here, in this namespace) or
    #: "NAMESPACE/NAME" (a controller elsewhere); None writes no RBAC objects
    rollout_controller: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_name(self.name, "name")
        if self.namespace is not None:
            _check_name(self.namespace, "namespace")
        if not self.image or any(c.isspace() for c in self.image):
            raise invalid_param(
                "image", "yard deploy k8s", "an image reference like repo/name:tag", self.image
            )
        if self.replicas < 1:
            raise invalid_param("replicas", "yard deploy k8s", "an integer >= 1", self.replicas)
        if self.max_replicas < self.replicas:
            raise invalid_param(
                "max_replicas",
                "yard deploy k8s",
                f"an integer >= replicas ({self.replicas})",
                self.max_replicas,
            )
        for param in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
            _check_quantity(getattr(self, param), param)
        if cpu_cores(self.cpu_request) > cpu_cores(self.cpu_limit):
            raise InvalidArgumentError(
                f"The CPU request {self.cpu_request} is above the CPU limit {self.cpu_limit}; "
                "Kubernetes refuses such a pod."
            )
        if not 1 <= self.target_cpu_percent <= 100:
            raise invalid_param(
                "target_cpu_percent", "yard deploy k8s", "a percentage from 1 to 100", self.target_cpu_percent
            )
        if self.target_in_flight < 1:
            raise invalid_param(
                "target_in_flight", "yard deploy k8s", "an integer >= 1", self.target_in_flight
            )
        if self.run_as_user < 1:
            raise invalid_param(
                "run_as_user", "yard deploy k8s", "a non-root user id (>= 1)", self.run_as_user
            )
        for param in ("store_secret", "image_pull_secret"):
            v = getattr(self, param)
            if v is not None:
                _check_name(v, param)
        if self.rollout_controller is not None:
            parts = self.rollout_controller.split("/")
            ok = len(parts) in (1, 2) and all(len(x) <= 63 and re.match(_DNS_LABEL, x) for x in parts)
            if not ok:
                raise invalid_param(
                    "rollout_controller",
                    "yard deploy k8s",
                    "a ServiceAccount name ('yard-rollout', made in the deployment's namespace) or "
                    "NAMESPACE/NAME of a controller's account elsewhere ('yard/yard-modelyard')",
                    self.rollout_controller,
                )

    def controller_account(self) -> tuple[str | None, str] | None:
        """``(namespace or None for the deployment's, name)`` of the rollout controller's account."""
        if self.rollout_controller is None:
            return None
        ns, _, name = self.rollout_controller.rpartition("/")
        return (ns or None), name

    @property
    def workers(self) -> int:
        """Worker processes ``--workers auto`` starts in this container: its CPU limit, rounded up."""
        return max(1, math.ceil(cpu_cores(self.cpu_limit)))

    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "modelyard-model", "app.kubernetes.io/instance": self.name}

    def all_labels(self, spec: DeploymentSpec) -> dict[str, str]:
        return {
            **self.selector(),
            "app.kubernetes.io/component": "model-server",
            "app.kubernetes.io/part-of": "modelyard",
            "app.kubernetes.io/managed-by": "modelyard",
            "modelyard.dev/endpoint": spec.endpoint_name,
            **self.labels,
        }


def prestop_seconds(spec: DeploymentSpec) -> int:
    """How long a stopping pod keeps answering before SIGTERM: longer than the longest request the
    spec lets run (its timeout), plus 5 s for the endpoint removal to reach every proxy."""
    return math.ceil(spec.timeout_ms / 1000) + 5


def _meta(opts: K8sOptions, spec: DeploymentSpec, name: str, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if opts.namespace:
        meta["namespace"] = opts.namespace
    meta["labels"] = opts.all_labels(spec)
    meta.update(extra)
    return meta


def configmap(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(
            opts,
            spec,
            f"{opts.name}-spec",
            annotations={
                "modelyard.dev/note": "The model server watches this spec and swaps to it without a restart; "
                "a rollout edits it."
            },
        ),
        "data": {SPEC_KEY: spec.to_yaml()},
    }


def _env(opts: K8sOptions) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "TMPDIR", "value": "/tmp"},
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    if opts.store_secret:
        env.append(
            {
                "name": "YARD_URI",
                "valueFrom": {"secretKeyRef": {"name": opts.store_secret, "key": opts.store_secret_key}},
            }
        )
    return env


def deployment(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    stop = prestop_seconds(spec)
    grace = stop + math.ceil(spec.timeout_ms / 1000) + 10
    http = {"port": "http"}
    container: dict[str, Any] = {
        "name": "server",
        "image": opts.image,
        "imagePullPolicy": "IfNotPresent",
        # the image's entrypoint serves (`yard build` images: python -m modelyard.deploy serve); these
        # arguments point it at the watched ConfigMap and size the workers from the CPU limit
        "args": [
            "--spec",
            f"{SPEC_DIR}/{SPEC_KEY}",
            "--host",
            "0.0.0.0",
            "--port",
            str(PORT),
            "--workers",
            "auto",
        ],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "env": _env(opts),
        "resources": {
            "requests": {"cpu": opts.cpu_request, "memory": opts.memory_request},
            "limits": {"cpu": opts.cpu_limit, "memory": opts.memory_limit},
        },
        # the models load before the server listens: allow up to 5 minutes for that, then the
        # liveness probe takes over
        "startupProbe": {
            "httpGet": {"path": "/health/live", **http},
            "periodSeconds": 2,
            "timeoutSeconds": 2,
            "failureThreshold": 150,
        },
        "livenessProbe": {
            "httpGet": {"path": "/health/live", **http},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": "/health/ready", **http},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 2,
        },
        # keep answering while the endpoint removal spreads, then SIGTERM lets in-flight requests end
        "lifecycle": {"preStop": {"sleep": {"seconds": stop}}},
        "securityContext": {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "spec", "mountPath": SPEC_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod: dict[str, Any] = {
        "terminationGracePeriodSeconds": grace,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": opts.run_as_user,
            "runAsGroup": opts.run_as_user,
            "fsGroup": opts.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "spec", "configMap": {"name": f"{opts.name}-spec"}},
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
    }
    if opts.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": opts.image_pull_secret}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(
            opts,
            spec,
            opts.name,
            annotations={"modelyard.dev/spec-configmap": f"{opts.name}-spec"},
        ),
        "spec": {
            "replicas": opts.replicas,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": opts.selector()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {
                    "labels": opts.all_labels(spec),
                    "annotations": {"modelyard.dev/workers": str(opts.workers)},
                },
                "spec": pod,
            },
        },
    }


def service(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(opts, spec, opts.name),
        "spec": {
            "type": "ClusterIP",
            "selector": opts.selector(),
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def autoscaler(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(opts, spec, opts.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": opts.name},
            "minReplicas": opts.replicas,
            "maxReplicas": opts.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": opts.target_cpu_percent},
                    },
                },
                {
                    # served per pod by a Prometheus adapter from the server's gauge (README)
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": IN_FLIGHT_METRIC},
                        "target": {"type": "AverageValue", "averageValue": str(opts.target_in_flight)},
                    },
                },
            ],
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}],
                },
            },
        },
    }


def disruption_budget(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    # maxUnavailable (not minAvailable) so a one-replica deployment still lets a node drain
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(opts, spec, opts.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": opts.selector()}},
    }


def network_policy(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(opts, spec, opts.name),
        "spec": {
            "podSelector": {"matchLabels": opts.selector()},
            "policyTypes": ["Ingress"],
            # predictions, probes and Prometheus all use the one serving port; nothing else is open
            "ingress": [{"ports": [{"port": "http", "protocol": "TCP"}]}],
        },
    }


def service_monitor(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(opts, spec, opts.name),
        "spec": {
            "selector": {"matchLabels": opts.selector()},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s", "scrapeTimeout": "10s"}],
        },
    }


def rollout_service_account(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    """The controller's ServiceAccount, when it runs in this namespace (``--rollout-controller NAME``)."""
    account = opts.controller_account()
    assert account is not None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(opts, spec, account[1]),
        "automountServiceAccountToken": True,  # the controller talks to the API server
    }


def rollout_role(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    """Least privilege for driving rollouts of this deployment (:data:`ROLLOUT_RULES`)."""
    rules = []
    for resource, verbs in ROLLOUT_RULES:
        rule: dict[str, Any] = {"apiGroups": [""], "resources": [resource], "verbs": list(verbs)}
        if resource == "configmaps":  # this deployment's spec, no other ConfigMap
            rule["resourceNames"] = [f"{opts.name}-spec"]
        rules.append(rule)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(opts, spec, f"{opts.name}-rollout"),
        "rules": rules,
    }


def rollout_role_binding(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, Any]:
    account = opts.controller_account()
    assert account is not None
    subject: dict[str, Any] = {"kind": "ServiceAccount", "name": account[1]}
    ns = account[0] or opts.namespace
    if ns:
        subject["namespace"] = ns
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(opts, spec, f"{opts.name}-rollout"),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{opts.name}-rollout"},
        "subjects": [subject],
    }


#: File name in the kustomize base → builder, in the order they are listed.
BUILDERS = {
    "configmap.yaml": configmap,
    "deployment.yaml": deployment,
    "service.yaml": service,
    "hpa.yaml": autoscaler,
    "pdb.yaml": disruption_budget,
    "networkpolicy.yaml": network_policy,
    "servicemonitor.yaml": service_monitor,
    "rollout-serviceaccount.yaml": rollout_service_account,
    "rollout-role.yaml": rollout_role,
    "rollout-rolebinding.yaml": rollout_role_binding,
}


def _wanted(fname: str, opts: K8sOptions) -> bool:
    if fname == "servicemonitor.yaml":
        return opts.service_monitor
    account = opts.controller_account()
    if fname == "rollout-serviceaccount.yaml":
        return account is not None and account[0] is None
    if fname.startswith("rollout-"):
        return account is not None
    return True


def manifests(spec: DeploymentSpec, opts: K8sOptions) -> dict[str, dict[str, Any]]:
    """``{file name: object}`` of every object of the deployment."""
    return {fname: build(spec, opts) for fname, build in BUILDERS.items() if _wanted(fname, opts)}
