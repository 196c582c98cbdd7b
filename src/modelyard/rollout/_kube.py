"""A rollout target on Kubernetes: the spec ConfigMap through the API server, metrics from Prometheus.

A model deployed with ``yard deploy k8s`` or the ``model-deployment`` chart keeps its deployment
spec in a ConfigMap (``NAME-spec``, key ``spec.yaml``) that every pod's server watches. So a
rollout step is an edit of that ConfigMap, not a request to one pod:

* :meth:`KubernetesTarget.spec` reads the ConfigMap; :meth:`~KubernetesTarget.apply` patches it
  with its ``resourceVersion`` as a precondition (a concurrent edit is a conflict, never lost), then
  waits until every ready pod reports the new traffic on ``/health/ready`` (read through the API
  server's pod proxy; the kubelet takes up to a minute or two to refresh a mounted ConfigMap);
* :meth:`~KubernetesTarget.versions` asks the ready pods the same way which version each slot runs;
* :meth:`~KubernetesTarget.scrape` asks Prometheus (its HTTP API) for the rollout series of the
  deployment's pods summed over pods, and returns them as exposition text, so the analysis is the
  same as for one server's ``/metrics``. Pods that restart reset their counters; the analysis
  treats a decrease as a restart and takes the whole current value as the window.

It uses the official ``kubernetes`` client (``pip install 'modelyard[k8s]'``), imported when
first used, configured from the pod's service account when it runs in a cluster, else from
kubeconfig. As a URL for ``--server``: ``k8s://NAMESPACE/NAME?prometheus=http://prometheus:9090``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from modelyard.errors import InvalidArgumentError
from modelyard.rollout._target import TargetError

__all__ = ["KubernetesTarget", "exposition"]

#: The series the analysis reads (``_analysis._PREFIXES``), as one PromQL name matcher.
_NAMES = (
    "yard_serving_(routed|shadow|ab)_.+"
    "|yard_serving_prediction_value_bucket|yard_serving_prediction_label_total"
)
#: Labels the analysis distinguishes; every other label (pod, instance, ...) is summed away.
_KEEP = ("__name__", "model", "version", "outcome", "result", "arm", "label", "le")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(result: list[dict[str, Any]]) -> str:
    """Prometheus exposition text of an instant-vector result of the HTTP API."""
    lines = []
    for series in result:
        metric = dict(series.get("metric") or {})
        name = metric.pop("__name__", None)
        if not name:
            continue
        labels = ",".join(f'{k}="{_escape(str(v))}"' for k, v in sorted(metric.items()))
        value = series["value"][1]
        lines.append(f"{name}{{{labels}}} {value}" if labels else f"{name} {value}")
    return "\n".join(lines) + ("\n" if lines else "")


class KubernetesTarget:
    """The model deployment ``name`` in ``namespace`` (its ConfigMap ``NAME-spec`` and its pods)."""

    def __init__(
        self,
        name: str,
        *,
        namespace: str = "default",
        prometheus: str | None = None,
        configmap: str | None = None,
        key: str = "spec.yaml",
        selector: str | None = None,
        port: int = 8080,
        match: str | None = None,
        wait_s: float = 180.0,
        poll_s: float = 2.0,
        context: str | None = None,
        api_client: Any = None,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not name:
            raise InvalidArgumentError("A Kubernetes rollout target needs the deployment's name.")
        if prometheus is not None and not prometheus.startswith(("http://", "https://")):
            raise InvalidArgumentError(
                f"The Prometheus URL {prometheus!r} must start with http:// or https://."
            )
        self.name = name
        self.namespace = namespace
        self.prometheus = prometheus.rstrip("/") if prometheus else None
        self.configmap = configmap or f"{name}-spec"
        self.key = key
        self.selector = (
            selector or f"app.kubernetes.io/name=modelyard-model,app.kubernetes.io/instance={name}"
        )
        self.port = port
        self.match = match or f'namespace="{namespace}",service="{name}"'
        self.wait_s = wait_s
        self.poll_s = poll_s
        self.context = context
        self.timeout = timeout
        self._api_client = api_client
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"KubernetesTarget({self.namespace}/{self.name}, prometheus={self.prometheus!r})"

    # -- construction from a URL or a stored description --------------------------------------------
    @classmethod
    def from_url(cls, url: str, **kw: Any) -> KubernetesTarget:
        """``k8s://NAMESPACE/NAME?prometheus=URL&wait_s=180&context=CTX``."""
        parts = urlsplit(url)
        path = [p for p in (parts.netloc + parts.path).split("/") if p]
        if parts.scheme != "k8s" or len(path) != 2:
            raise InvalidArgumentError(
                f"A Kubernetes target is written k8s://NAMESPACE/NAME?prometheus=http://prometheus:9090. "
                f"Got {url!r} instead."
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        known = {"prometheus", "configmap", "key", "selector", "port", "match", "wait_s", "context"}
        unknown = sorted(set(query) - known)
        if unknown:
            raise InvalidArgumentError(
                f"Unknown option(s) {', '.join(unknown)} in {url!r}; known: {', '.join(sorted(known))}."
            )
        opts: dict[str, Any] = dict(query)
        try:
            if "port" in opts:
                opts["port"] = int(opts["port"])
            if "wait_s" in opts:
                opts["wait_s"] = float(opts["wait_s"])
        except ValueError as exc:
            raise InvalidArgumentError(f"A number in {url!r} is not valid: {exc}") from None
        return cls(path[1], namespace=path[0], **opts, **kw)

    def describe(self) -> dict[str, Any]:
        return {
            "kubernetes": {
                "name": self.name,
                "namespace": self.namespace,
                "prometheus": self.prometheus,
                "configmap": self.configmap,
                "key": self.key,
                "selector": self.selector,
                "port": self.port,
                "match": self.match,
                "wait_s": self.wait_s,
                "context": self.context,
            }
        }

    @classmethod
    def from_description(cls, d: dict[str, Any], **kw: Any) -> KubernetesTarget:
        return cls(d["name"], **{k: v for k, v in d.items() if k != "name"}, **kw)

    # -- the Kubernetes API ---------------------------------------------------------------------------
    def _core(self) -> Any:
        try:
            from kubernetes import client, config
        except ImportError:
            raise TargetError(
                "Driving a Kubernetes deployment needs the kubernetes client: pip install 'modelyard[k8s]'."
            ) from None
        if self._api_client is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]  # untyped client
                self._api_client = client.ApiClient()
            except config.ConfigException:
                try:
                    self._api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                        context=self.context
                    )
                except (config.ConfigException, OSError) as exc:
                    raise TargetError(
                        f"No Kubernetes cluster is configured (in-cluster or kubeconfig): {exc}"
                    ) from None
        return client.CoreV1Api(self._api_client)

    def _api(self, what: str, call: Callable[[], Any]) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return call()
        except ApiException as exc:
            reason = exc.reason
            try:
                reason = json.loads(exc.body or "{}").get("message") or reason
            except ValueError:
                pass
            raise TargetError(f"The Kubernetes API refused to {what}: {exc.status} {reason}") from None
        except OSError as exc:  # urllib3 connection errors are OSErrors
            raise TargetError(f"The Kubernetes API did not answer ({what}): {exc}") from None

    def _read_configmap(self) -> Any:
        core = self._core()
        return self._api(
            f"read ConfigMap {self.namespace}/{self.configmap}",
            lambda: core.read_namespaced_config_map(
                self.configmap, self.namespace, _request_timeout=self.timeout
            ),
        )

    def _spec_of(self, cm: Any) -> Any:
        from modelyard.errors import ModelyardError
        from modelyard.serving import load_spec

        text = (cm.data or {}).get(self.key)
        if not text:
            raise TargetError(f"The ConfigMap {self.namespace}/{self.configmap} has no key {self.key!r}.")
        try:
            return load_spec(text)
        except ModelyardError as exc:
            raise TargetError(
                f"The ConfigMap {self.namespace}/{self.configmap} holds no valid spec: {exc}"
            ) from None

    def spec(self) -> dict[str, Any]:
        dumped: dict[str, Any] = self._spec_of(self._read_configmap()).model_dump(mode="json")
        return dumped

    def apply(self, spec: dict[str, Any]) -> None:
        """Write ``spec`` into the ConfigMap (conditional on its version), then wait for the pods."""
        from modelyard.errors import ModelyardError
        from modelyard.serving import load_spec

        try:
            new = load_spec(spec)
        except ModelyardError as exc:
            raise TargetError(str(exc)) from None
        cm = self._read_configmap()
        body = {
            "metadata": {"resourceVersion": cm.metadata.resource_version},
            "data": {self.key: new.to_yaml()},
        }
        core = self._core()
        self._api(
            f"update ConfigMap {self.namespace}/{self.configmap}",
            lambda: core.patch_namespaced_config_map(
                self.configmap, self.namespace, body, _request_timeout=self.timeout
            ),
        )
        if self.wait_s > 0:
            self._wait_for(new.traffic.model_dump(mode="json"), set(new.models))

    def _ready_pods(self) -> list[str]:
        core = self._core()
        pods = self._api(
            f"list the pods {self.selector!r} in {self.namespace}",
            lambda: core.list_namespaced_pod(
                self.namespace, label_selector=self.selector, _request_timeout=self.timeout
            ),
        )
        ready = []
        for pod in pods.items:
            if pod.metadata.deletion_timestamp is not None or (pod.status.phase or "") != "Running":
                continue
            conds = {c.type: c.status for c in (pod.status.conditions or [])}
            if conds.get("Ready") == "True":
                ready.append(pod.metadata.name)
        return sorted(ready)

    def _health(self, pod: str) -> dict[str, Any]:
        """``/health/ready`` of one pod, through the API server's pod proxy (also when it says 503)."""
        from kubernetes.client.exceptions import ApiException

        core = self._core()
        try:
            resp = core.connect_get_namespaced_pod_proxy_with_path(
                f"{pod}:{self.port}",
                self.namespace,
                "health/ready",
                _preload_content=False,
                _request_timeout=self.timeout,
            )
            raw = resp.data
        except ApiException as exc:
            if exc.status != 503 or not exc.body:
                raise TargetError(
                    f"The pod {self.namespace}/{pod} did not answer /health/ready: {exc.status} {exc.reason}"
                ) from None
            raw = exc.body
        except OSError as exc:
            raise TargetError(f"The Kubernetes API did not answer (pod proxy to {pod}): {exc}") from None
        try:
            body: dict[str, Any] = json.loads(raw)
        except ValueError:
            raise TargetError(
                f"The pod {self.namespace}/{pod} answered /health/ready with no JSON."
            ) from None
        return body

    def versions(self) -> dict[str, int]:
        pods = self._ready_pods()
        if not pods:
            raise TargetError(f"No ready pod matches {self.selector!r} in namespace {self.namespace}.")
        seen: dict[str, dict[str, int]] = {}
        for pod in pods:
            body = self._health(pod)
            seen[pod] = {slot: int(m["version"]) for slot, m in (body.get("models") or {}).items()}
        distinct = {json.dumps(v, sort_keys=True) for v in seen.values()}
        if len(distinct) > 1:
            detail = "; ".join(f"{p}: {v}" for p, v in seen.items())
            raise TargetError(
                f"The pods of {self.namespace}/{self.name} serve different versions ({detail}); wait until "
                "the last change of the ConfigMap has reached every pod."
            )
        return next(iter(seen.values()))

    def _wait_for(self, traffic: dict[str, Any], slots: set[str]) -> None:
        deadline = self._clock() + self.wait_s
        while True:
            pods = self._ready_pods()
            behind: dict[str, str] = {}
            for pod in pods:
                body = self._health(pod)
                if body.get("traffic") != traffic or set(body.get("models") or {}) != slots:
                    err = (body.get("last_swap") or {}).get("error")
                    behind[pod] = f"last swap failed: {err}" if err else "not swapped yet"
            if pods and not behind:
                return
            if self._clock() >= deadline:
                detail = "; ".join(f"{p}: {why}" for p, why in behind.items()) or "no ready pod"
                raise TargetError(
                    f"The pods of {self.namespace}/{self.name} did not take the new spec within "
                    f"{self.wait_s:g} s ({detail})."
                )
            self._sleep(self.poll_s)

    # -- Prometheus -----------------------------------------------------------------------------------
    def query(self) -> str:
        """The PromQL :meth:`scrape` sends."""
        return f'sum by ({", ".join(_KEEP)}) ({{__name__=~"{_NAMES}",{self.match}}})'

    def scrape(self) -> str:
        import httpx

        if not self.prometheus:
            raise TargetError(
                f"The Kubernetes target {self.namespace}/{self.name} has no Prometheus URL to read the pods' "
                "metrics from (k8s://NAMESPACE/NAME?prometheus=http://prometheus:9090)."
            )
        try:
            r = httpx.get(
                self.prometheus + "/api/v1/query", params={"query": self.query()}, timeout=self.timeout
            )
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise TargetError(f"Prometheus at {self.prometheus} did not answer: {exc}") from None
        if r.status_code >= 400 or body.get("status") != "success":
            raise TargetError(
                f"Prometheus at {self.prometheus} answered {r.status_code}: {body.get('error') or body}"
            )
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise TargetError(
                f"Prometheus at {self.prometheus} answered a {data.get('resultType')}, not a vector."
            )
        return exposition(data.get("result") or [])
