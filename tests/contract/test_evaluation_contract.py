"""Evaluation: stored evaluations, gate checks and protected aliases on SQLite, PostgreSQL and a server
over HTTP (the store-level evaluation tests live here)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from modelyard.cli import app
from modelyard.errors import GateFailed, InvalidArgumentError, NotFoundError, ValidationFailed
from modelyard.evaluation import EvaluationService, attach_policy, evaluate, get_evaluation, list_evaluations
from modelyard.evaluation._gates import GateReport
from modelyard.registry import audit_log, get_model_version, register_model, set_alias
from testkit.evaluation import FEATURES

runner = CliRunner()


def _register(model, uri: str, churn: pd.DataFrame):  # type: ignore[no-untyped-def]
    cols = list(model.feature_names_in_)
    return register_model(model, "churn-clf", input_example=churn[cols].head(5), uri=uri)


def _user(uri: str) -> str:
    from modelyard._shared import user_name

    return "tester" if uri.startswith("http") else user_name()


def test_evaluation_is_stored_and_read_back(contract_uri: str, tmp_path: Path, churn, good_model) -> None:  # type: ignore[no-untyped-def]
    from sklearn.metrics import roc_auc_score

    _register(good_model, contract_uri, churn)
    churn.to_csv(tmp_path / "eval.csv", index=False)
    ev = evaluate("churn-clf/1", str(tmp_path / "eval.csv"), label="churned", slices="plan", uri=contract_uri)
    assert ev.task == "binary" and ev.n_rows == len(churn) and ev.id
    assert ev.user == _user(contract_uri)
    expected = roc_auc_score(churn["churned"], good_model.predict_proba(churn[FEATURES])[:, 1])

    stored = list_evaluations("churn-clf/1", uri=contract_uri)
    assert [e.id for e in stored] == [ev.id]
    got = get_evaluation(ev.id[:8], uri=contract_uri)
    assert (got.model_name, got.model_version, got.user, got.task) == ("churn-clf", 1, ev.user, "binary")
    assert got.metrics["roc_auc"] == pytest.approx(expected)
    assert got.slices["plan"]["pro"]["n"] == int((churn["plan"] == "pro").sum())
    assert got.classes == [0, 1]
    assert got.data_digest == ev.data_digest and len(got.data_digest) == 64
    assert list_evaluations("churn-clf/2", uri=contract_uri) == []
    with pytest.raises(NotFoundError, match="No evaluation with id 'ffffffff'"):
        get_evaluation("ffffffff", uri=contract_uri)
    with pytest.raises(InvalidArgumentError, match="at least 6 characters"):
        get_evaluation("abc", uri=contract_uri)


def test_protected_alias_runs_the_gates_and_force_is_audited(
    contract_uri: str, tmp_path: Path, churn, good_model, weak_model
) -> None:  # type: ignore[no-untyped-def]
    uri = contract_uri
    # a registered dataset: on a server the gates run there, and it never reads a client's file
    from modelyard.data import add

    add(churn, name="churn-eval", uri=uri)
    (tmp_path / "gates.yaml").write_text(
        "data: {dataset: churn-eval@v1, label: churned}\n"
        "metrics: {roc_auc: {min: 0.70}, accuracy: {min: 0.6}}\n"
        "champion: {roc_auc: {max_drop: 0.0}}\n"
    )
    _register(good_model, uri, churn)
    _register(weak_model, uri, churn)
    attach_policy("churn-clf", tmp_path / "gates.yaml", uri=uri)

    set_alias("churn-clf", "production", 1, uri=uri)  # first model: champion gate waived by policy
    first = audit_log("churn-clf", uri=uri)[-1].detail["gates"]
    assert first["passed"] is True and first["forced"] is False
    assert {r["gate"]: r["status"] for r in first["results"]}["champion.roc_auc"] == "waived"

    with pytest.raises(GateFailed) as info:  # the same class (and report) over HTTP
        set_alias("churn-clf", "production", 2, uri=uri)
    assert type(info.value) is GateFailed
    report = info.value.report
    assert isinstance(report, GateReport) and not report.passed and report.model.startswith("churn-clf")
    assert {"metrics.roc_auc", "champion.roc_auc"} <= {r.gate for r in report.failed}
    assert report.evaluation_id in {e.id for e in list_evaluations("churn-clf/2", uri=uri)}
    msg = str(info.value)
    assert msg.startswith("Refusing to move alias 'production' of 'churn-clf' to version 2:")
    assert "- metrics.roc_auc: roc_auc = " in msg and "- champion.roc_auc: roc_auc: candidate" in msg
    assert "--force --reason" in msg
    assert get_model_version("churn-clf", "production", uri=uri).version == 1

    with pytest.raises(InvalidArgumentError, match=r"needs a reason: add --reason"):
        set_alias("churn-clf", "production", 2, force=True, uri=uri)
    set_alias("churn-clf", "staging", 2, uri=uri)  # not protected: no gates
    assert "gates" not in audit_log("churn-clf", uri=uri)[-1].detail

    set_alias("churn-clf", "production", 2, force=True, reason="hotfix, approved by on-call", uri=uri)
    entry = audit_log("churn-clf", uri=uri)[-1]
    assert entry.reason == "hotfix, approved by on-call" and entry.actor == _user(uri)
    gates = entry.detail["gates"]
    assert gates["forced"] is True and gates["passed"] is False
    assert "metrics.roc_auc" in gates["failed"] and "champion.roc_auc" in gates["failed"]
    assert get_model_version("churn-clf", "production", uri=uri).version == 2

    checks = EvaluationService(uri).list_gate_checks("churn-clf")
    assert [c["trigger"] for c in checks][:3] == ["forced", "promotion", "promotion"]
    assert checks[0]["reason"] == "hotfix, approved by on-call" and checks[0]["alias"] == "production"
    assert {c["user"] for c in checks} == {_user(uri)}
    assert checks[0]["evaluation_id"] in {e.id for e in list_evaluations("churn-clf/2", uri=uri)}


def test_promotion_whose_gates_cannot_run_is_refused_unless_forced(
    contract_uri: str, tmp_path: Path, churn, good_model
) -> None:  # type: ignore[no-untyped-def]
    uri = contract_uri
    _register(good_model, uri, churn)
    (tmp_path / "gates.yaml").write_text(
        "data: {dataset: missing-data@v1, label: churned}\nmetrics: {f1: {min: 0.1}}\n"
    )
    attach_policy("churn-clf", tmp_path / "gates.yaml", uri=uri)
    with pytest.raises(
        ValidationFailed,
        match=r"Refusing to move alias 'production' of 'churn-clf' to version 1: its gates could not "
        r"run: .*missing-data",
    ):
        set_alias("churn-clf", "production", 1, uri=uri)
    with pytest.raises(NotFoundError):
        set_alias("churn-clf", "production", 7, uri=uri)
    set_alias("churn-clf", "production", 1, force=True, reason="data store migration, approved", uri=uri)
    gates = audit_log("churn-clf", uri=uri)[-1].detail["gates"]
    assert gates["forced"] is True and "missing-data" in gates["error"]


def test_cli_alias_runs_the_gates_and_show_reports_them(
    contract_uri: str, tmp_path: Path, churn, good_model, weak_model
) -> None:  # type: ignore[no-untyped-def]
    uri = contract_uri
    churn.to_csv(tmp_path / "eval.csv", index=False)
    _register(good_model, uri, churn)
    _register(weak_model, uri, churn)
    (tmp_path / "gates.yaml").write_text(
        "data: {dataset: eval.csv, label: churned, slices: [plan]}\nmetrics: {roc_auc: {min: 0.7}}\n"
    )
    if uri.startswith("http"):  # the server runs the gates: a file of this machine is refused, naming the fix
        res = runner.invoke(
            app, ["--uri", uri, "policy", "attach", "churn-clf", str(tmp_path / "gates.yaml")]
        )
        assert res.exit_code == 1 and "yard data add NAME eval.csv" in str(res.exception)
    res = runner.invoke(
        app, ["--uri", uri, "data", "add", str(tmp_path / "eval.csv"), "--name", "churn-eval"]
    )
    assert res.exit_code == 0, res.output
    (tmp_path / "gates.yaml").write_text(
        "data: {dataset: churn-eval@v1, label: churned, slices: [plan]}\nmetrics: {roc_auc: {min: 0.7}}\n"
    )
    res = runner.invoke(app, ["--uri", uri, "policy", "attach", "churn-clf", str(tmp_path / "gates.yaml")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--uri", uri, "models", "alias", "churn-clf", "production", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--uri", uri, "models", "alias", "churn-clf", "production", "2"])
    assert res.exit_code != 0 and "Refusing to move alias 'production'" in str(res.exception)
    res = runner.invoke(
        app,
        ["--uri", uri, "models", "alias", "churn-clf", "production", "2", "--force", "--reason", "hotfix"],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["--uri", uri, "models", "show", "churn-clf", "--version", "2", "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.stdout)
    assert [e["gates"]["trigger"] for e in shown["evaluations"]] == ["forced", "promotion"]
    assert shown["evaluations"][0]["gates"]["failed"] == ["metrics.roc_auc"]
    assert shown["audit"][-1]["detail"]["gates"]["forced"] is True
    assert shown["audit"][-1]["actor"] == _user(uri)
    res = runner.invoke(app, ["--uri", uri, "models", "show", "churn-clf"], env={"COLUMNS": "250"})
    assert res.exit_code == 0 and "failed: metrics.roc_auc (forced)" in res.stdout
    res = runner.invoke(app, ["--uri", uri, "policy", "show", "churn-clf"])
    assert res.exit_code == 0 and "roc_auc" in res.stdout, res.output


# -- yard evaluate / gate / policy / evaluations ----------------------------------------------------------
@pytest.fixture
def cli_store(contract_uri: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The contract store as the CLI's default store (YARD_URI)."""
    monkeypatch.setenv("YARD_URI", contract_uri)
    return contract_uri


def _setup(uri: str, tmp_path: Path, churn: pd.DataFrame, model) -> Path:  # type: ignore[no-untyped-def]
    _register(model, uri, churn)
    churn.to_csv(tmp_path / "eval.csv", index=False)
    return tmp_path / "eval.csv"


def test_evaluate_prints_tables_and_json_and_stores_the_record(
    cli_store: str, tmp_path: Path, churn, good_model
) -> None:  # type: ignore[no-untyped-def]
    data = _setup(cli_store, tmp_path, churn, good_model)
    res = runner.invoke(
        app, ["evaluate", "churn-clf/1", "--data", str(data), "--label", "churned", "--slices", "plan"]
    )
    assert res.exit_code == 0, res.output
    assert "roc_auc" in res.output and "by plan" in res.output and "stored as evaluation" in res.output
    res = runner.invoke(
        app,
        [
            "evaluate",
            "churn-clf@latest",
            "--data",
            str(data),
            "--label",
            "churned",
            "--metrics",
            "f1,accuracy",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert (
        out["model"] == "churn-clf/1"
        and set(out["metrics"]) == {"f1", "accuracy"}
        and out["data_source"] == str(data)
    )
    res = runner.invoke(app, ["evaluations", "list", "churn-clf", "--json"])
    assert [e["model"] for e in json.loads(res.stdout)] == ["churn-clf/1", "churn-clf/1"]
    eid = json.loads(res.stdout)[0]["id"]
    res = runner.invoke(app, ["evaluations", "show", eid[:20], "--json"])
    assert json.loads(res.stdout)["id"] == eid


def test_gate_exits_1_on_a_failed_gate_and_writes_junit(
    cli_store: str, tmp_path: Path, churn, good_model
) -> None:  # type: ignore[no-untyped-def]
    data = _setup(cli_store, tmp_path, churn, good_model)
    (tmp_path / "pass.yaml").write_text(
        "data: {dataset: eval.csv, label: churned}\nmetrics: {roc_auc: {min: 0.6}}\n"
    )
    (tmp_path / "fail.yaml").write_text(
        "data: {dataset: eval.csv, label: churned}\nmetrics: {roc_auc: {min: 0.99}}\n"
    )
    res = runner.invoke(app, ["gate", "churn-clf/1", "--policy", str(tmp_path / "pass.yaml")])
    assert res.exit_code == 0, res.output
    assert "all 1 gates passed" in res.output
    junit = tmp_path / "reports" / "gates.xml"
    res = runner.invoke(
        app, ["gate", "churn-clf/1", "--policy", str(tmp_path / "fail.yaml"), "--junit", str(junit), "--json"]
    )
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert (
        out["passed"] is False
        and out["gates"][0]["gate"] == "metrics.roc_auc"
        and out["gates"][0]["status"] == "failed"
    )
    assert ET.parse(junit).getroot().get("failures") == "1"
    # --data overrides the policy's dataset
    res = runner.invoke(
        app,
        [
            "gate",
            "churn-clf/1",
            "--policy",
            str(tmp_path / "pass.yaml"),
            "--data",
            str(data),
            "--promote",
            "production",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "Promoted churn-clf/1 to @production." in res.output


def test_policy_attach_show_check_detach(cli_store: str, tmp_path: Path, churn, good_model) -> None:  # type: ignore[no-untyped-def]
    _setup(cli_store, tmp_path, churn, good_model)
    (tmp_path / "gates.yaml").write_text(
        "protected: [production, prod-eu]\ndata: {dataset: churn-eval@v1, label: churned}\nmetrics: "
        "{f1: {min: 0.1}}\n"
    )
    res = runner.invoke(app, ["policy", "check", str(tmp_path / "gates.yaml")])
    assert res.exit_code == 0 and "valid; gates: metrics; protects: production, prod-eu" in res.output
    res = runner.invoke(app, ["policy", "attach", "churn-clf", str(tmp_path / "gates.yaml")])
    assert res.exit_code == 0 and "aliases production, prod-eu now need its gates" in res.output
    res = runner.invoke(app, ["policy", "show", "churn-clf", "--json"])
    assert json.loads(res.stdout)["protected"] == ["production", "prod-eu"]
    res = runner.invoke(app, ["policy", "detach", "churn-clf"])
    assert "Detached" in res.output
    res = runner.invoke(app, ["policy", "show", "churn-clf"])
    assert "has no gate policy attached" in res.output
