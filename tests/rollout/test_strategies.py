"""Shadow and A/B rollouts through the controller, and a check read from a real Prometheus by PromQL."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from modelyard.registry import get_model
from modelyard.rollout import Controller, RolloutService, RolloutState
from modelyard.serving import build_app
from modelyard.serving._server import running

from .conftest import BASE, Load, fill_store

#: A bound on driving one rollout: it ends far sooner (steps wait for samples, not for a clock).
DRIVE_S = 600


@pytest.fixture
def store(store_uri: str, model_store: str) -> str:
    """The rollout models in a fresh store: once on SQLite, once on PostgreSQL (rollouts, aliases
    and the audit log are written to it while the controller runs)."""
    return fill_store(store_uri, model_store)


@pytest.fixture
def served(store: str):  # type: ignore[no-untyped-def]
    app = build_app(BASE, uri=store)
    with running(app) as h:
        yield app, h.url, store
    app.close()


def test_shadow_sees_mirrored_traffic_only(served: Any) -> None:
    app, url, store = served
    svc = RolloutService(store)
    opts = {"duration_s": "800ms", "min_agreement": 0.95, "min_requests": 30, "tick_s": 0.05}
    with Load(url) as load:
        r = svc.start("m", 2, target=app, strategy="shadow", **opts)
        assert app.spec.traffic.kind == "shadow"
        r = Controller(store, target=app).run(r.id, timeout=DRIVE_S)[0]
        assert r.state is RolloutState.PAUSED and "promote with `yard rollout promote m`" in r.reason
        assert r.analysis["versions"]["shadow"]["agreement"] == 1.0
        assert set(load.versions) == {"1"}  # the candidate never answered a client
        r = svc.promote("m", target=app, reason="shadow looked good")
        assert r.state is RolloutState.PROMOTED and app.deployment.primary.version == 2
        r = svc.start("m", 5, target=app, strategy="shadow", **opts)  # predicts 2x + 40: disagrees
        r = Controller(store, target=app).run(r.id, timeout=DRIVE_S)[0]
    assert r.state is RolloutState.FAILED and "shadow_agreement 0 (must be >= 0.95)" in r.reason
    assert load.failed == [] and "5" not in load.versions
    assert get_model("m", uri=store).aliases["production"] == 2


def test_ab_rollout_decided_by_the_sequential_test(served: Any) -> None:
    app, url, store = served
    svc = RolloutService(store)
    r = svc.start(
        "m",
        2,
        target=app,
        strategy="ab",
        split=50,
        sticky_header="X-User-Id",
        outcome="conversion",
        min_samples=150,
        duration_s="60s",
        min_requests=20,
        tick_s=0.05,
    )
    assert app.spec.traffic.kind == "ab" and app.spec.traffic.key_header == "x-user-id"
    ctl = Controller(store, target=app)
    done = threading.Event()
    t = threading.Thread(target=lambda: (ctl.run(r.id, timeout=DRIVE_S), done.set()))
    t.start()
    rng = np.random.default_rng(5)
    rate = {"1": 0.10, "2": 0.40}
    with httpx.Client(base_url=url, timeout=120) as c:
        user = 0
        while not done.is_set() and user < 3000:
            batch = []
            for _ in range(40):
                user += 1
                key = f"user-{user}"
                v = c.post(
                    "/v1/models/m/predict",
                    json={"records": [{"x": 1.0, "y": 0.0, "z": 0.0}]},
                    headers={"X-User-Id": key},
                ).headers["x-model-version"]
                batch.append({"key": key, "outcome": "conversion", "value": int(rng.random() < rate[v])})
            resp = c.post("/v1/models/m/feedback", json={"feedback": batch})
            if resp.status_code == 409:  # promoted meanwhile: the A/B test is over
                break
            assert resp.json()["accepted"] == 40
    t.join(DRIVE_S + 60)
    r = svc.get(r.id)
    assert r.state is RolloutState.PROMOTED, r.reason
    ab = next(e for e in svc.events(r.id) if e.kind == "analysis").detail["ab"]
    assert ab["decision"] == "treatment_better" and ab["always_valid_p"] <= 0.05
    assert ab["n_control"] >= 150 and ab["n_treatment"] >= 150 and ab["lift"] > 0.5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path, served: Any, prometheus_installed: None):  # type: ignore[no-untyped-def]
    exe = shutil.which("prometheus")
    assert exe is not None
    _, url, _ = served
    port = _free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        f"global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n"
        f"  - job_name: yard\n    static_configs: [{{targets: ['{url.removeprefix('http://')}']}}]\n"
    )
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
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(prom + "/-/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, f"prometheus exited with {proc.returncode}"
            assert time.monotonic() < deadline, "prometheus was not ready within 120 s"
            time.sleep(0.1)
        yield prom
    finally:
        proc.terminate()
        proc.wait(10)


def test_promql_check_from_a_real_prometheus(served: Any, prometheus: str) -> None:
    """The built-in error check is off; the candidate raising on 10% is caught by a PromQL check (the
    step's interval is long: only the errors Prometheus counts can end it, however slow the machine)."""
    app, url, store = served
    svc = RolloutService(store)
    query = (
        'sum(yard_serving_routed_requests_total{model="$model",version="$candidate",outcome="error"}) '
        "or vector(0)"
    )
    with Load(url) as load:
        r = svc.start(
            "m",
            3,
            target=app,
            steps=[50, 100],
            interval_s="1h",
            min_requests=20,
            max_error_rate=None,
            tick_s=0.2,
            prometheus=[{"name": "candidate_errors", "url": prometheus, "query": query, "max": 2}],
        )
        r = Controller(store, target=app).run(r.id, timeout=DRIVE_S)[0]
    assert r.state is RolloutState.FAILED
    assert re.match(
        r"analysis failed at step \d/2 \(canary \d+%\): candidate_errors \d+ \(must be <= 2\)", r.reason
    )
    assert 'PromQL sum(yard_serving_routed_requests_total{model="m",version="3",outcome="error"})' in r.reason
    assert load.failed == []
