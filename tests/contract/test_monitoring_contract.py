"""Monitoring: the same reports, feedback, stored runs and alert state on SQLite, PostgreSQL and a
server over HTTP. Windows and drift are computed by the caller from the prediction log's blobs;
the rows (segments, references, runs, rules, firings) go through the service operations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard._workspace import get_workspace
from modelyard.cli import app
from modelyard.errors import InvalidArgumentError, NotFoundError
from modelyard.monitoring import Monitor, load_rules
from modelyard.monitoring._alerts import AlertRule, deliver, evaluate_rules, recent_firings
from modelyard.monitoring._store import MonitoringService
from testkit.monitoring import FEATURES, churn_traffic

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _train_and_register(ws) -> tuple[object, pd.DataFrame]:  # type: ignore[no-untyped-def]
    """A model version whose run used dataset churn-train@v1 (lineage for the default reference)."""
    from sklearn.linear_model import LogisticRegression

    train = churn_traffic(1500, 0)
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


def test_window_report_reference_by_lineage_feedback_and_history(
    contract_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = get_workspace(contract_uri)
    clf, _train = _train_and_register(workspace)
    live = churn_traffic(600, 1, shift=1.0)
    ids = _log_traffic(workspace, clf, live, "r")
    mon = Monitor("churn-clf", uri=workspace)
    res = mon.report("1h")
    assert res.reference.startswith("dataset:churn-train@v1")
    assert res.rows == 600
    rep = res.report
    assert set(rep.drifted_columns) >= {"tenure", "monthly"} and "plan" not in rep.drifted_columns
    assert "churned" not in rep.columns  # the label was never sent to the model
    # prediction drift: the model version scored the reference once (stored), outputs compared
    assert rep.columns["output"].is_prediction and rep.prediction_drift == {"output": True}
    assert res.stats["latency_p95_ms"] >= 3.0 and res.stats["fallback_rate"] == 0.0
    assert res.model_metrics == {"accuracy": 0.9, "f1": 0.5}
    # the reference is profiled once and stored: the second report reads the stored copy
    svc = MonitoringService(workspace)
    assert svc.reference_digest("churn-clf", res.reference) is not None
    assert svc.reference_digest("churn-clf", f"{res.reference}|outputs:churn-clf/1") is not None
    stored: list[str] = []
    original = MonitoringService.record_reference
    monkeypatch.setattr(
        MonitoringService,
        "record_reference",
        lambda self, *a, **kw: stored.append(a[1]) or original(self, *a, **kw),
    )
    # feedback joined on request id → window performance, compared with the version's metrics
    labels = pd.DataFrame({"request_id": ids, "churned": live.churned.to_numpy()}).drop_duplicates(
        "request_id"
    )
    f = tmp_path / "labels.parquet"
    labels.to_parquet(f)
    assert yard.monitoring.feedback(str(f), label_column="churned", uri=workspace) == len(labels)
    # one label per request of 50 rows: each logged row of a request gets its request's label
    res2 = Monitor("churn-clf", uri=workspace).report("1h")
    assert res2.stats["labelled_rows"] == 600
    assert 0.0 <= res2.stats["accuracy"] <= 1.0 and "f1" in res2.stats
    assert res2.metric("accuracy_drop") == pytest.approx(0.9 - res2.stats["accuracy"])
    assert stored == []  # the second report read the stored copies
    assert [h["share_drifted"] for h in res2.report.history][-2:] == [
        rep.share_drifted,
        res2.report.share_drifted,
    ]
    html = res2.report.to_html()
    assert "Drift over time" in html


def test_explicit_reference_file_and_errors(contract_uri: str, tmp_path: Path) -> None:
    workspace = get_workspace(contract_uri)
    clf, train = _train_and_register(workspace)
    _log_traffic(workspace, clf, churn_traffic(300, 2), "a")
    ref = tmp_path / "ref.parquet"
    train.to_parquet(ref)
    res = Monitor("churn-clf", uri=workspace).report("30m", reference=str(ref))
    assert res.reference.startswith("file:") and res.report.drifted_columns == []
    with pytest.raises(InvalidArgumentError, match=r"reference file 'nope\.parquet' does not exist"):
        Monitor("churn-clf", uri=workspace).report("1h", reference="nope.parquet")
    with pytest.raises(
        InvalidArgumentError,
        match=r"^The window must be a positive duration with a unit, like 500ms, 30s, 2m or 1h\. Got "
        r"'soon' instead\.$",
    ):
        Monitor("churn-clf", uri=workspace).report("soon")
    with pytest.raises(NotFoundError):
        Monitor("churn-clf", uri=workspace).report("1h", reference="no-such-dataset@v1")
    with pytest.raises(NotFoundError, match="pass --reference name@vN"):
        Monitor("ghost", uri=workspace).report("1h")
    empty = Monitor("ghost", uri=workspace).report("1h", reference=str(ref))
    assert empty.rows == 0 and empty.report.share_drifted == 0.0  # no traffic: statuses, not a crash


def test_alert_rules_for_duration_firing_resolving_and_webhook(
    contract_uri: str, webhook, tmp_path: Path
) -> None:
    workspace = get_workspace(contract_uri)
    url, received = webhook
    path = tmp_path / "alerts.yml"
    path.write_text(RULES)
    rules, hook = load_rules(path)
    assert [r.name for r in rules] == ["drift", "tenure"] and rules[0].for_ms == 600_000 and hook is None
    t0 = 1_800_000_000_000
    # pending: holds but not yet for 10 minutes → only 'tenure' (for 0) fires
    ev = evaluate_rules(workspace, "m", rules, {"drift": 0.8, "tenure": 0.5}, t0)
    assert [(e.kind, e.rule.name) for e in ev] == [("firing", "tenure")]
    deliver(workspace, ev, url)
    assert (
        received[-1]["text"].startswith("[WARNING] m: tenure firing")
        and received[-1]["attachments"][0]["fields"]
    )
    ev = evaluate_rules(workspace, "m", rules, {"drift": 0.8, "tenure": 0.5}, t0 + 300_000)
    assert ev == []  # tenure already firing, drift pending 5 min
    ev = evaluate_rules(workspace, "m", rules, {"drift": 0.9, "tenure": 0.5}, t0 + 600_000)
    assert [(e.kind, e.rule.name) for e in ev] == [("firing", "drift")]
    deliver(workspace, ev, url)
    assert received[-1]["text"].startswith("[CRITICAL] m: drift firing: share_drifted = 0.9")
    ev = evaluate_rules(workspace, "m", rules, {"drift": 0.1, "tenure": None}, t0 + 900_000)
    assert sorted((e.kind, e.rule.name) for e in ev) == [("resolved", "drift"), ("resolved", "tenure")]
    deliver(workspace, ev, url)
    assert len(received) == 4 and received[-1]["text"].startswith("[RESOLVED]")
    firings = recent_firings(workspace, "m")
    assert [f["rule_name"] for f in firings] == ["drift", "tenure"]
    assert all(f["resolved_at"] == t0 + 900_000 and f["delivered"] for f in firings)
    # a dead webhook is recorded, not raised
    ev = evaluate_rules(workspace, "m", rules, {"drift": 0.1, "tenure": 0.9}, t0 + 1_000_000)
    deliver(workspace, ev, "http://127.0.0.1:9/nowhere")
    latest = recent_firings(workspace, "m")[0]
    assert latest["delivered"] is False and "ConnectError" in latest["delivery_error"]


def test_monitor_run_fires_a_rule_on_drifted_traffic_and_records_it(
    contract_uri: str, webhook, tmp_path: Path
) -> None:
    """`yard monitor run --once` as the API: a report over logged predictions with drift, the rules
    stored with the model, the firing recorded and delivered, shown by `alerts()`."""
    url, received = webhook
    workspace = get_workspace(contract_uri)
    clf, train = _train_and_register(workspace)
    _log_traffic(workspace, clf, churn_traffic(400, 5, shift=1.0), "d")
    ref = tmp_path / "ref.parquet"
    train.to_parquet(ref)
    rules = tmp_path / "alerts.yml"
    rules.write_text(RULES.replace("for: 10m", "for: 0"))
    ticks: list[tuple[object, list[object]]] = []
    n = yard.monitoring.run(
        "churn-clf",
        rules=rules,
        webhook=url,
        reference=str(ref),
        once=True,
        uri=contract_uri,
        on_tick=lambda res, events: ticks.append((res, events)),
    )
    assert n == 1
    res, events = ticks[0]
    assert res.rows == 400 and res.run_id is not None  # type: ignore[attr-defined]
    assert {"tenure", "monthly"} <= set(res.report.drifted_columns)  # type: ignore[attr-defined]
    assert sorted(e.rule.name for e in events) == ["drift", "tenure"]  # type: ignore[attr-defined]
    assert len(received) == 2 and all("firing" in r["text"] for r in received)
    shown = yard.monitoring.alerts("churn-clf", uri=contract_uri)
    assert [(r["name"], r["firing"]) for r in shown["rules"]] == [("drift", True), ("tenure", True)]
    assert sorted(f["rule_name"] for f in shown["firings"]) == ["drift", "tenure"]
    assert all(f["delivered"] and f["resolved_at"] is None for f in shown["firings"])
    assert MonitoringService(workspace).history("churn-clf")[-1]["rows"] == 400


def test_bad_rows_are_refused_by_the_operations(contract_uri: str) -> None:
    """What a client sends is checked where it is stored: a rule as load_rules would refuse it, a
    run whose report blob was never uploaded."""
    from modelyard.errors import BlobNotFoundError
    from modelyard.monitoring._store import MonitorRun

    svc = MonitoringService(contract_uri)
    with pytest.raises(InvalidArgumentError, match="unknown metric 'share_drifed'"):
        svc.store_rules("m", [AlertRule("x", "share_drifed", 0.5)], 1)
    with pytest.raises(InvalidArgumentError, match="'severity' must be one of"):
        svc.evaluate_rules("m", [AlertRule("x", "rows", 1.0, severity="huge")], {"x": 2.0}, 1)
    assert svc.stored_rules("m") == []
    run = MonitorRun("m", "1", 0, 10, 3, None, 0.0, False, "ab" * 32)
    with pytest.raises(BlobNotFoundError, match="upload it first"):
        svc.record_run(run, [])
    assert svc.history("m") == []
    assert svc.record_feedback({"r1": 1, "r2": "yes"}) == 2 and svc.record_feedback({"r1": 0}) == 1
    assert svc.labels_for(["r1", "r2", "r3"]) == {"r1": 0, "r2": "yes"}


def test_cli_report_run_feedback_alerts_and_grafana(contract_uri: str, webhook, tmp_path: Path) -> None:
    """`yard monitor report/feedback/run/alerts` and `yard deploy grafana` with --uri on every backend."""
    workspace = get_workspace(contract_uri)
    url, received = webhook
    clf, _train = _train_and_register(workspace)
    ids = _log_traffic(workspace, clf, churn_traffic(400, 3, shift=1.0), "c")
    runner = CliRunner()
    uri = ["--uri", contract_uri]
    html = tmp_path / "drift.html"
    out = runner.invoke(
        app,
        [*uri, "monitor", "report", "churn-clf", "--window", "1h", "--html", str(html)],
        env={"COLUMNS": "40"},
    )
    assert out.exit_code == 0, out.output
    assert "tenure" in out.output and html.read_text().startswith("<!doctype html>")
    # not a terminal: whole rows however narrow COLUMNS is
    assert "…" not in out.output
    assert any(
        "tenure" in line and "drift: " in line and "wasserstein" in line for line in out.output.splitlines()
    ), out.output
    out = runner.invoke(app, [*uri, "monitor", "report", "churn-clf", "--json"])
    data = json.loads(out.output)
    assert data["rows"] == 400 and "tenure" in data["drift"]["summary"]["drifted_columns"]
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"rid": ids[::50], "y": [0] * len(ids[::50])}).to_csv(labels, index=False)
    out = runner.invoke(
        app, [*uri, "monitor", "feedback", str(labels), "--id-column", "rid", "--label-column", "churned"]
    )
    assert out.exit_code == 1 and "The feedback has no column 'churned'" in str(out.exception)
    assert "--label-column" in str(out.exception)
    out = runner.invoke(
        app, [*uri, "monitor", "feedback", str(labels), "--id-column", "rid", "--label-column", "y"]
    )
    assert out.exit_code == 0 and "stored 8 labels" in out.output
    rules = tmp_path / "alerts.yml"
    rules.write_text(RULES.replace("for: 10m", "for: 0"))
    out = runner.invoke(
        app, [*uri, "monitor", "run", "churn-clf", "--once", "--rules", str(rules), "--webhook", url]
    )
    assert out.exit_code == 0, out.output
    assert {m["text"].split(":")[1].strip() for m in received} == {"drift firing", "tenure firing"}
    out = runner.invoke(app, [*uri, "monitor", "alerts", "churn-clf", "--json"])
    data = json.loads(out.output)
    assert {r["name"]: r["firing"] for r in data["rules"]} == {"drift": True, "tenure": True}
    assert len(data["firings"]) == 2
    out = runner.invoke(app, [*uri, "monitor", "alerts", "churn-clf"])
    assert "FIRING" in out.output
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelyard",
            *uri,
            "monitor",
            "run",
            "churn-clf",
            "--once",
            "--every",
            "never",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        timeout=120,
    )
    assert p.returncode == 1 and p.stderr.startswith(
        "Error: The 'every' interval must be a positive duration"
    )
    out = runner.invoke(app, ["deploy", "grafana", "churn-clf"])
    dash = json.loads(out.output)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert any("yard_monitor_drift_score" in e for e in exprs) and any(
        "yard_serving_requests_total" in e for e in exprs
    )
    assert all('model="churn-clf"' in e for e in exprs)
