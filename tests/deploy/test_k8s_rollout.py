"""The rollout target for Kubernetes (rollout/_kube.py) against a fake API server on loopback.

No cluster runs here. The fake (``_fake_k8s.FakeKube``) answers the official client with JSON in
the API server's format: a recorded ConfigMap, a recorded pod list (two ready pods, one starting,
one terminating), 409 on a stale ``resourceVersion``, 403 when forbidden, and a pod proxy. In the
end-to-end tests the pods behind the proxy are two real model servers that watch a ConfigMap
volume laid out the way the kubelet lays it out (``spec.yaml -> ..data/spec.yaml``, ``..data``
swapped atomically), and Prometheus is the real server scraping both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelyard.rollout import KubernetesTarget, TargetError
from modelyard.rollout._analysis import snapshot
from modelyard.rollout._kube import exposition
from modelyard.rollout._target import target_from

from ._fake_k8s import FakeKube, recorded

POD_A, POD_B = "churn-7c9f6d5b8d-4xk2p", "churn-7c9f6d5b8d-9qzrt"
CANARY = {
    "endpoint": "m",
    "models": {"stable": "m/1", "canary": "m/2"},
    "traffic": {"kind": "canary", "weights": {"stable": 50, "canary": 50}},
}


#: A bound on waiting for Prometheus (ready, then scraped): a condition, generous for a busy host.
PROM_WAIT_S = 480
#: The real servers' prediction timeout (the spec's default is 2 s, which a predict exceeded at load
#: 30 and answered 504): a bound, so the tests do not depend on the host's speed.
BUSY_HOST_TIMEOUT_MS = 25_000  # under the test clients' 30 s


def _health(traffic: dict[str, Any], versions: dict[str, int], error: str | None = None) -> dict[str, Any]:
    body = recorded("health_ready.json")
    body["traffic"] = traffic
    body["models"] = {slot: {**body["models"]["primary"], "version": v} for slot, v in versions.items()}
    if error:
        body["last_swap"] = {"ok": False, "error": error, "at_ms": body["last_swap"]["at_ms"] + 1}
    return body


SINGLE = {"kind": "single", "model": "primary"}
#: what a server reports on /health/ready for CANARY's traffic (every field, weights as numbers)
CANARY_TRAFFIC = {
    "kind": "canary",
    "weights": {"stable": 50.0, "canary": 50.0},
    "sticky_header": None,
    "salt": "",
}


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def _target(kube: FakeKube, clock: Clock | None = None, **kw: Any) -> KubernetesTarget:
    c = clock or Clock()
    return KubernetesTarget(
        "churn", namespace="ml", api_client=kube.api_client(), clock=c, sleep=c.sleep, poll_s=1, **kw
    )


# -- against recorded answers ----------------------------------------------------------------------


def test_reads_the_spec_from_the_configmap_and_versions_from_ready_pods() -> None:
    pods = {name: _health(SINGLE, {"primary": 1}) for name in (POD_A, POD_B, "churn-7c9f6d5b8d-starting")}
    with FakeKube(recorded("configmap.json"), pods) as kube:
        t = _target(kube)
        spec = t.spec()
        assert spec["models"]["primary"]["ref"] == "m/1" and spec["traffic"] == SINGLE
        assert t.versions() == {"primary": 1}
        # the selector of `yard deploy k8s` and the chart; only Running+Ready pods not being deleted are asked
        from urllib.parse import parse_qs, unquote, urlsplit

        lists = [p for m, p in kube.requests if p.startswith("/api/v1/namespaces/ml/pods?")]
        selector = parse_qs(urlsplit(lists[0]).query)["labelSelector"][0]
        assert selector == "app.kubernetes.io/name=modelyard-model,app.kubernetes.io/instance=churn"
        asked = {unquote(p).split("/")[6] for m, p in kube.requests if "/proxy/" in p}
        assert asked == {f"{POD_A}:8080", f"{POD_B}:8080"}


def test_pods_that_disagree_are_reported() -> None:
    pods = {POD_A: _health(SINGLE, {"primary": 1}), POD_B: _health(SINGLE, {"primary": 2})}
    with FakeKube(recorded("configmap.json"), pods) as kube, pytest.raises(TargetError) as err:
        _target(kube).versions()
    assert "serve different versions" in str(err.value) and POD_B in str(err.value)


def test_apply_patches_with_the_resource_version_and_waits_for_every_pod() -> None:
    pods: dict[str, Any] = {POD_A: _health(SINGLE, {"primary": 1}), POD_B: _health(SINGLE, {"primary": 1})}
    clock = Clock()
    with FakeKube(recorded("configmap.json"), pods) as kube:
        t = _target(kube, clock, wait_s=60)

        def kubelet(text: str) -> None:  # one pod follows at once, the other one poll later
            pods[POD_A] = _health(CANARY_TRAFFIC, {"stable": 1, "canary": 2})

        kube.on_patch = kubelet
        real_sleep = clock.sleep

        def sleep(s: float) -> None:
            real_sleep(s)
            pods[POD_B] = _health(CANARY_TRAFFIC, {"stable": 1, "canary": 2})

        t._sleep = sleep
        t.apply(CANARY)
        (patch,) = kube.patches
        assert patch["content-type"] == "application/strategic-merge-patch+json"
        assert patch["body"]["metadata"] == {"resourceVersion": "48213"}
        assert t.spec()["traffic"]["weights"] == {"stable": 50.0, "canary": 50.0}
        assert clock.t == 1  # one poll waited for the second pod
        assert kube.configmap["metadata"]["resourceVersion"] == "48214"


def test_apply_times_out_naming_the_pods_behind_and_their_error() -> None:
    pods = {
        POD_A: _health(SINGLE, {"primary": 1}, error="model 'm/2' not found"),
        POD_B: _health(SINGLE, {"primary": 1}),
    }
    with FakeKube(recorded("configmap.json"), pods) as kube, pytest.raises(TargetError) as err:
        _target(kube, wait_s=10).apply(CANARY)
    msg = str(err.value)
    assert "did not take the new spec within 10 s" in msg
    assert f"{POD_A}: last swap failed: model 'm/2' not found" in msg and f"{POD_B}: not swapped yet" in msg


def test_a_concurrent_edit_is_a_conflict_not_a_lost_update() -> None:
    pods = {POD_A: _health(SINGLE, {"primary": 1})}
    with FakeKube(recorded("configmap.json"), pods) as kube:
        t = _target(kube, wait_s=0)
        real = t._read_configmap

        def stale() -> Any:  # someone edits the ConfigMap between our read and our patch
            cm = real()
            kube.configmap["metadata"]["resourceVersion"] = "48999"
            return cm

        t._read_configmap = stale  # type: ignore[method-assign]
        with pytest.raises(TargetError) as err:
            t.apply(CANARY)
        assert "409" in str(err.value) and "the object has been modified" in str(err.value)
        assert "canary" not in kube.configmap["data"]["spec.yaml"]


def test_refusals_and_bad_specs_are_target_errors() -> None:
    with FakeKube(recorded("configmap.json"), {}) as kube:
        kube.forbid = "/api/v1/namespaces/ml/configmaps"
        with pytest.raises(TargetError) as err:
            _target(kube).spec()
        assert "refused to read ConfigMap ml/churn-spec: 403" in str(err.value) and "forbidden" in str(
            err.value
        )
        kube.forbid = None
        with pytest.raises(TargetError) as err:
            _target(kube).apply({"models": {"a": "m/1"}, "traffic": {"kind": "single", "model": "b"}})
        assert "not in 'models'" in str(err.value) and kube.patches == []
        with pytest.raises(TargetError, match="No ready pod matches"):
            _target(kube).versions()
        kube.configmap["data"]["spec.yaml"] = "models: {}\n"
        with pytest.raises(TargetError, match="holds no valid spec"):
            _target(kube).spec()
        with pytest.raises(TargetError, match="has no Prometheus URL"):
            _target(kube).scrape()


def test_urls_and_stored_descriptions() -> None:
    t = target_from({}, "k8s://ml/churn?prometheus=http://prom:9090&wait_s=30")
    assert isinstance(t, KubernetesTarget)
    assert (t.namespace, t.name, t.configmap, t.prometheus, t.wait_s) == (
        "ml",
        "churn",
        "churn-spec",
        "http://prom:9090",
        30,
    )
    again = target_from(json.loads(json.dumps(t.describe())))
    assert isinstance(again, KubernetesTarget) and again.describe() == t.describe()
    with pytest.raises(Exception, match="k8s://NAMESPACE/NAME"):
        target_from({}, "k8s://churn")
    with pytest.raises(Exception, match="Unknown option"):
        target_from({}, "k8s://ml/churn?prometheus=http://p:9090&namespace=x")


def test_scrape_turns_a_recorded_prometheus_answer_into_the_analysis_input() -> None:
    """``recorded/prometheus_query.json`` is a real Prometheus's answer to the target's query over two
    model servers (see test_end_to_end...): summed over pods, names and labels kept."""
    answer = recorded("prometheus_query.json")
    seen: list[str] = []

    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread
    from urllib.parse import parse_qs, urlsplit

    class Prom(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(parse_qs(urlsplit(self.path).query)["query"][0])
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Prom)
    Thread(target=srv.serve_forever, daemon=True).start()
    try:
        t = KubernetesTarget("churn", namespace="ml", prometheus=f"http://127.0.0.1:{srv.server_address[1]}")
        snap = snapshot(t.scrape(), "m")
    finally:
        srv.shutdown()
        srv.server_close()
    assert seen == [t.query()] and 'namespace="ml",service="churn"' in seen[0]
    # 40 requests to each of two pods, split 50/50 at random between the versions: summed over pods
    ok = {k: v for k, v in snap.items() if k.startswith("yard_serving_routed_requests_total{")}
    assert set(ok) == {
        "yard_serving_routed_requests_total{outcome=ok,version=1}",
        "yard_serving_routed_requests_total{outcome=ok,version=2}",
    }
    assert sum(ok.values()) == 80
    for v in ("1", "2"):
        assert (
            snap[f"yard_serving_routed_latency_seconds_bucket{{le=+Inf,version={v}}}"]
            == ok[f"yard_serving_routed_requests_total{{outcome=ok,version={v}}}"]
        )
    assert not any("pod=" in k or "instance=" in k for k in snap)


def test_exposition_escapes_label_values() -> None:
    text = exposition([{"metric": {"__name__": "x_total", "label": 'a"b\\c\nd'}, "value": [1, "2"]}])
    from prometheus_client.parser import text_string_to_metric_families

    (fam,) = text_string_to_metric_families(text)
    assert fam.samples[0].labels == {"label": 'a"b\\c\nd'} and fam.samples[0].value == 2


# -- end to end: two real model servers behind the fake API server, a real Prometheus -------------


def _project(volume: Path, text: str) -> None:
    """Update a ConfigMap volume the way the kubelet does: a new timestamped folder, then an atomic
    rename of the ``..data`` symlink onto it; ``spec.yaml`` is a symlink through ``..data``."""
    stamp = volume / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:9]}"
    stamp.mkdir()
    (stamp / "spec.yaml").write_text(text)
    old = os.readlink(volume / "..data") if (volume / "..data").is_symlink() else None
    tmp = volume / "..data_tmp"
    os.symlink(stamp.name, tmp)
    os.rename(tmp, volume / "..data")
    if not (volume / "spec.yaml").is_symlink():
        os.symlink("..data/spec.yaml", volume / "spec.yaml")
    if old:
        shutil.rmtree(volume / old)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    import warnings

    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    from modelyard.registry import register_model

    uri = str(tmp_path_factory.mktemp("k8s") / "store")
    X = pd.DataFrame({"x": np.arange(20, dtype=float), "y": np.ones(20)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        register_model(LinearRegression().fit(X, X["x"] * 2), "m", input_example=X.head(3), uri=uri)
        register_model(LinearRegression().fit(X, X["x"] * 2 + 0.001), "m", input_example=X.head(3), uri=uri)
    return uri


@pytest.fixture
def cluster(tmp_path: Path, store: str) -> Iterator[tuple[FakeKube, dict[str, Any]]]:
    """Two "pods": real model servers watching a kubelet-style ConfigMap volume, behind FakeKube."""
    from modelyard.serving import ModelServer
    from modelyard.serving._server import running

    cm = recorded("configmap.json")
    cm["data"]["spec.yaml"] += f"timeout_ms: {BUSY_HOST_TIMEOUT_MS}\n"
    volume = tmp_path / "etc-modelyard"
    volume.mkdir()
    _project(volume, cm["data"]["spec.yaml"])
    servers = [
        ModelServer(
            str(volume / "spec.yaml"), uri=store, watch=True, watch_interval_s=0.1, prediction_log=False
        )
        for _ in range(2)
    ]
    with running(servers[0].start()) as a, running(servers[1].start()) as b:
        with FakeKube(cm, {POD_A: a.url, POD_B: b.url}) as kube:
            kube.on_patch = lambda text: _project(volume, text)
            yield kube, {"servers": servers, "urls": {POD_A: a.url, POD_B: b.url}}
    for s in servers:
        s.close()


def test_apply_reaches_real_servers_through_a_configmap_volume(
    cluster: tuple[FakeKube, dict[str, Any]],
) -> None:
    kube, pods = cluster
    t = KubernetesTarget("churn", namespace="ml", api_client=kube.api_client(), poll_s=0.1, wait_s=120)
    assert t.versions() == {"primary": 1}
    t.apply(CANARY)  # returns once both servers swapped (their watchers follow the ..data symlink)
    for server in pods["servers"]:
        assert server.spec.traffic.kind == "canary" and server.deployment.runtimes["canary"].version == 2
    assert t.versions() == {"stable": 1, "canary": 2}
    assert t.spec()["traffic"]["weights"] == {"stable": 50.0, "canary": 50.0}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(
    cluster: tuple[FakeKube, dict[str, Any]], tmp_path: Path, prometheus_installed: None
) -> Iterator[str]:
    """A real Prometheus scraping both "pods" every second, with the labels a ServiceMonitor sets."""
    _, pods = cluster
    port = _free_port()
    targets = "\n".join(
        f"      - targets: ['{url.removeprefix('http://')}']\n"
        f"        labels: {{namespace: ml, service: churn, pod: {pod}}}"
        for pod, url in pods["urls"].items()
    )
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: churn\n    static_configs:\n"
        + targets
        + "\n"
    )
    exe = shutil.which("prometheus")
    assert exe is not None
    proc = subprocess.Popen(
        [
            exe,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    prom = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PROM_WAIT_S
        while True:
            try:
                if httpx.get(prom + "/-/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"prometheus exited with {proc.returncode}"
            assert time.monotonic() < deadline, f"prometheus was not ready within {PROM_WAIT_S} s"
            time.sleep(0.1)
        yield prom
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
def test_scrape_sums_both_pods_through_a_real_prometheus(
    cluster: tuple[FakeKube, dict[str, Any]], prometheus: str
) -> None:
    from modelyard.rollout import LocalTarget

    kube, pods = cluster
    prom = prometheus
    t = KubernetesTarget("churn", namespace="ml", api_client=kube.api_client(), poll_s=0.1, prometheus=prom)
    t.apply({**CANARY, "timeout_ms": BUSY_HOST_TIMEOUT_MS})
    for url in pods["urls"].values():
        with httpx.Client(base_url=url, timeout=30) as c:
            for i in range(40):
                r = c.post("/v1/models/m/predict", json={"records": [{"x": float(i), "y": 1.0}]})
                assert r.status_code == 200, r.text
    local = [snapshot(LocalTarget(s).scrape(), "m") for s in pods["servers"]]
    want = {k: local[0].get(k, 0.0) + local[1].get(k, 0.0) for k in set(local[0]) | set(local[1])}
    assert sum(v for k, v in want.items() if k.startswith("yard_serving_routed_requests_total")) == 80
    deadline = time.monotonic() + PROM_WAIT_S
    while True:  # Prometheus scrapes every second: wait for the last values, bounded
        try:
            got = snapshot(t.scrape(), "m")
        except TargetError:
            got = {}
        if got == want:
            break
        assert time.monotonic() < deadline, f"Prometheus never showed the servers' sums: {got} != {want}"
        time.sleep(0.5)
    if os.environ.get("YARD_RECORD"):  # refresh recorded/prometheus_query.json
        body = httpx.get(prom + "/api/v1/query", params={"query": t.query()}, timeout=10).json()
        for series in body["data"]["result"]:
            series["value"][0] = 1764600000.0
        from ._fake_k8s import RECORDED

        (RECORDED / "prometheus_query.json").write_text(json.dumps(body, indent=1) + "\n")


@pytest.mark.slow
def test_controller_rolls_out_through_the_configmap_and_promotes(
    cluster: tuple[FakeKube, dict[str, Any]], prometheus: str, store: str
) -> None:
    """The rollout controller itself, on the Kubernetes target: each step edits the ConfigMap, both
    pods follow, the analysis reads Prometheus's sums, and promotion leaves m/2 on all traffic."""
    import threading

    from modelyard.registry import get_model, set_alias
    from modelyard.rollout import Controller, RolloutService, RolloutState

    kube, pods = cluster
    set_alias("m", "production", 1, uri=store)
    t = KubernetesTarget(
        "churn", namespace="ml", api_client=kube.api_client(), poll_s=0.1, prometheus=prometheus
    )
    stop = threading.Event()
    failed: list[str] = []

    def load(url: str) -> None:
        with httpx.Client(base_url=url, timeout=30) as c:
            i = 0
            while not stop.is_set():
                i += 1
                r = c.post("/v1/models/m/predict", json={"records": [{"x": float(i % 20), "y": 1.0}]})
                if r.status_code != 200:
                    failed.append(r.text)
                time.sleep(0.005)

    threads = [threading.Thread(target=load, args=(u,), daemon=True) for u in pods["urls"].values()]
    for th in threads:
        th.start()
    try:
        svc = RolloutService(store)
        r = svc.start(
            "m", 2, target=t, steps=[50, 100], interval_s="1s", min_requests=40, max_drift=0.5, tick_s=0.2
        )
        r = Controller(store, target=t).run(r.id, timeout=600)[0]
    finally:
        stop.set()
        for th in threads:
            th.join(30)
    assert r.state is RolloutState.PROMOTED, r.reason
    assert failed == []
    for server in pods["servers"]:  # both pods on m/2 alone, through the ConfigMap
        assert server.spec.traffic.kind == "single" and server.deployment.primary.version == 2
    assert "m/2" in kube.configmap["data"]["spec.yaml"] and len(kube.patches) >= 3
    assert get_model("m", uri=store).aliases["production"] == 2
    assert all(p["body"]["metadata"]["resourceVersion"] for p in kube.patches)
