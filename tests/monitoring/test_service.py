"""Monitoring a served model end to end: lineage reference, prediction-log windows, feedback,
performance, stored runs, alert rules with for-durations and webhook delivery, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as yard
from modelyard.errors import InvalidArgumentError
from modelyard.monitoring import load_rules

FEATURES = ["tenure", "monthly", "plan"]
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _data(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n).astype(float) + shift * 30,
            "monthly": rng.normal(70, 20, n) + shift * 25,
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.35, 0.15]),
        }
    )
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(0.05 * (df.tenure - 30)))).astype(int)
    return df


def _train_and_register(ws) -> tuple[object, pd.DataFrame]:  # type: ignore[no-untyped-def]
    """A model version whose run used dataset churn-train@v1 (lineage for the default reference)."""
    from sklearn.linear_model import LogisticRegression

    train = _data(1500, 0)
    yard.data.add(train, name="churn-train", uri=ws)
    with yard.start_run(experiment="churn", uri=ws) as run:
        df = run.use_dataset("churn-train@v1")
        clf = LogisticRegression(max_iter=200).fit(df[["tenure", "monthly"]], df.churned)
        run.log_metrics({"accuracy": 0.9, "f1": 0.5})
        run.log_model(clf, name="churn-clf", input_example=df[["tenure", "monthly"]].head(3))
    return clf, train


def _log_traffic(ws, clf, df: pd.DataFrame, prefix: str) -> list[str]:  # type: ignore[no-untyped-def]
    from modelyard.serving._predlog import PredictionLogger

    logger = PredictionLogger(ws, flush_rows=10_000, flush_interval_s=60)
    ids = []
    for i in range(0, len(df), 50):
        chunk = df.iloc[i : i + 50]
        rid = f"{prefix}-{i}"
        pred = clf.predict(chunk[["tenure", "monthly"]])
        logger.log(rid, "churn-clf", 1, chunk[FEATURES].reset_index(drop=True), pred, latency_ms=3.0 + i % 7)
        ids.extend([rid] * len(chunk))
    logger.flush()
    logger.close()
    return ids


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():  # type: ignore[no-untyped-def]
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


RULES = """
rules:
  - name: drift
    metric: share_drifted
    op: ">="
    threshold: 0.5
    window: 1h
    for: 10m
    severity: critical
  - name: tenure
    metric: drift_score
    column: tenure
    threshold: 0.2
"""


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            "rules:\n  - name: x\n    metric: share_drifed\n    threshold: 1\n",
            "unknown metric 'share_drifed'. Did you mean 'share_drifted'?",
        ),
        (
            "rules:\n  - name: x\n    metric: drift_score\n    threshold: 1\n",
            "metric 'drift_score' needs a 'column'",
        ),
        (
            "rules:\n  - name: x\n    metric: rows\n    threshold: 1\n    window: soon\n",
            "'window' of rule 'x' must be a positive duration",
        ),
        (
            "rules:\n  - name: x\n    metric: rows\n    threshold: 1\n    severity: huge\n",
            "'severity' must be one of",
        ),
        (
            "rules:\n  - name: x\n    metric: rows\n    threshold: 1\n  - name: x\n    metric: "
            "rows\n    threshold: 2\n",
            "repeated: ['x']",
        ),
        ("rules:\n  - name: x\n    metric: rows\n    threshold: 1\n    when: now\n", "unknown keys ['when']"),
        ("nothing: here\n", "expected a top-level 'rules:' list"),
    ],
)
def test_bad_rules_are_explained(tmp_path: Path, doc: str, message: str) -> None:
    p = tmp_path / "r.yml"
    p.write_text(doc)
    with pytest.raises(InvalidArgumentError) as exc:
        load_rules(p)
    assert message in str(exc.value)


def test_monitor_run_loops_until_ctrl_c(tmp_path: Path) -> None:
    import signal

    ref = tmp_path / "ref.parquet"
    _data(200, 5).to_parquet(ref)
    env = {**os.environ, "PYTHONPATH": SRC, "YARD_URI": str(tmp_path / "store")}
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "modelyard",
            "monitor",
            "run",
            "ghost",
            "--every",
            "1s",
            "--reference",
            str(ref),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = [p.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]  # two evaluations
        assert all(line.startswith("ghost: 0 rows") for line in lines), lines
        p.send_signal(signal.SIGINT)
        _out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0 and "monitor stopped (Ctrl-C)" in err
