"""The monitor's Prometheus exposition, scraped by a real Prometheus server; example alert rules."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import modelyard as yard

RULES = Path(__file__).resolve().parents[2] / "examples" / "prometheus" / "alerts.yml"

needs_prometheus = pytest.mark.usefixtures("prometheus_installed")  # skipped when missing; fails under CI


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@needs_prometheus
def test_example_alert_rules_pass_promtool() -> None:
    out = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 7 rules found" in out.stdout


@needs_prometheus
def test_real_prometheus_scrapes_the_monitor(tmp_path: Path) -> None:
    from modelyard.serving._predlog import PredictionLogger

    ws = yard.get_workspace(str(tmp_path / "store")).open()
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"age": rng.normal(40, 10, 2000), "plan": rng.choice(["a", "b"], 2000)})
    ref_path = tmp_path / "ref.parquet"
    ref.to_parquet(ref_path)
    live = pd.DataFrame({"age": rng.normal(55, 10, 800), "plan": rng.choice(["a", "b"], 800)})
    logger = PredictionLogger(ws, flush_interval_s=60)
    for i in range(0, 800, 100):
        logger.log(f"q{i}", "scraped", 1, live.iloc[i : i + 100].reset_index(drop=True), np.zeros(100), 2.0)
    logger.close()

    port, prom_port = _free_port(), _free_port()
    stop = threading.Event()
    ticks: list[object] = []
    runner = threading.Thread(
        target=yard.monitoring.run,
        kwargs={
            "model": "scraped",
            "every": "1s",
            "reference": str(ref_path),
            "metrics_port": port,
            "uri": ws,
            "stop": stop,
            "on_tick": lambda res, ev: ticks.append(res),
        },
        daemon=True,
    )
    runner.start()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"rule_files:\n  - {RULES}\n"
        "scrape_configs:\n"
        f"  - job_name: yard-monitor\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    )
    prom = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    api = f"http://127.0.0.1:{prom_port}/api/v1"
    try:
        result: list[dict] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not result:
            time.sleep(1)
            if prom.poll() is not None:
                pytest.fail(f"prometheus exited: {prom.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                r = httpx.get(
                    f"{api}/query", params={"query": 'yard_monitor_drift_score{model="scraped"}'}, timeout=60
                )
            except httpx.HTTPError:
                continue
            if r.status_code == 200:
                result = r.json()["data"]["result"]
        assert result, "Prometheus never scraped yard_monitor_drift_score"
        assert ticks
        scores = {s["metric"]["column"]: float(s["value"][1]) for s in result}
        report = ticks[-1].report  # type: ignore[attr-defined]
        assert scores["age"] == pytest.approx(report.columns["age"].score, rel=1e-6) and scores["age"] > 1.0
        assert scores["plan"] < 0.1
        share = httpx.get(f"{api}/query", params={"query": "yard_monitor_share_drifted"}, timeout=60).json()[
            "data"
        ]["result"]
        assert float(share[0]["value"][1]) == pytest.approx(0.5)
        rows = httpx.get(f"{api}/query", params={"query": "yard_monitor_window_rows"}, timeout=60).json()[
            "data"
        ]["result"]
        assert float(rows[0]["value"][1]) == 800
        targets = httpx.get(f"{api}/targets", timeout=60).json()["data"]["activeTargets"]
        assert targets[0]["health"] == "up"
        groups = httpx.get(f"{api}/rules", timeout=60).json()["data"]["groups"]
        assert {g["name"] for g in groups} == {
            "modelyard-drift",
            "modelyard-performance",
            "modelyard-serving",
        }
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=20)
        except subprocess.TimeoutExpired:
            prom.kill()
            prom.wait()
        stop.set()
        runner.join(timeout=30)
