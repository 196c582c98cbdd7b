"""The ``yard`` command line: init, runs list/show/compare/delete/download/metrics, doctor, gc, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import modelyard as yard
from modelyard.cli import app
from testkit.cli import yard_subprocess

runner = CliRunner()


@pytest.fixture
def yard_cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run the real entry point ``modelyard.cli.main`` in this process; returns (exit code, stdout,
    stderr)."""
    from modelyard.cli import main

    def call(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        capsys.readouterr()
        with monkeypatch.context() as m:
            m.setattr(sys, "argv", ["yard", *args])
            m.setenv("COLUMNS", "200")
            for k, v in env.items():
                if v:
                    m.setenv(k, v)
                else:
                    m.delenv(k, raising=False)
            if cwd is not None:
                m.chdir(cwd)
            with pytest.raises(SystemExit) as info:
                main()
        out = capsys.readouterr()
        code = info.value.code if isinstance(info.value.code, int) else (0 if info.value.code is None else 1)
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return call


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def two_runs(workspace, tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"weights")
    with yard.start_run(
        experiment="churn", name="a", params={"lr": 0.1, "depth": 3}, tags={"team": "risk"}
    ) as a:
        for i in range(3):
            a.log_metric("loss", 1.0 / (i + 1))
        a.log_metric("acc", 0.8)
        a.log_artifact(folder)
        a.log_text("hello", "notes.txt")
    with yard.start_run(
        experiment="churn", name="b", params={"lr": 0.01, "depth": 3}, capture_env=False
    ) as b:
        b.log_metric("acc", 0.9)
        b.log_metric("nanm", float("nan"))
    return a, b


def test_version() -> None:
    out = invoke("--version")
    assert out.strip() == f"modelyard {yard.__version__}"
    proc = yard_subprocess("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"modelyard {yard.__version__}"


def test_help_lists_the_commands() -> None:
    out = invoke("--help")
    for cmd in ("init", "runs", "doctor", "gc", "quickstart"):
        assert cmd in out
    assert "list" in invoke("runs", "--help")


def test_init_creates_the_store(tmp_path: Path, yard_cli) -> None:
    proc = yard_cli("init", cwd=tmp_path, YARD_URI="")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / ".yard" / "yard.db").exists() and (tmp_path / ".yard" / "blobs").is_dir()
    assert "Initialized modelyard store" in proc.stdout
    other = tmp_path / "elsewhere"
    assert yard_cli("init", str(other)).returncode == 0
    assert (other / "yard.db").exists()
    via_uri = tmp_path / "via-uri"
    assert yard_cli("--uri", str(via_uri), "init").returncode == 0
    assert (via_uri / "yard.db").exists()


def test_runs_list_json_and_table(two_runs) -> None:
    a, b = two_runs
    data = json.loads(invoke("runs", "list", "--experiment", "churn", "--json"))
    assert [r["id"] for r in data] == [b.id, a.id]
    assert data[0]["metrics"] == {"acc": 0.9, "nanm": "NaN"} and data[1]["params"] == {
        "depth": "3",
        "lr": "0.1",
    }
    filtered = json.loads(invoke("runs", "list", "-e", "churn", "--filter", "metrics.acc > 0.85", "--json"))
    assert [r["name"] for r in filtered] == ["b"]
    ordered = json.loads(invoke("runs", "list", "--order-by", "metrics.acc", "--json", "-n", "1"))
    assert [r["name"] for r in ordered] == ["a"]
    table = invoke("runs", "list")
    assert a.id in table and b.id in table and "churn" in table and "finished" in table and "acc" in table


def test_runs_show(two_runs) -> None:
    a, _ = two_runs
    d = json.loads(invoke("runs", "show", a.id[:24], "--json"))
    assert d["id"] == a.id and d["name"] == "a" and d["status"] == "finished"
    assert d["params"] == {"depth": "3", "lr": "0.1"} and d["tags"] == {"team": "risk"}
    assert d["metrics"]["loss"] == pytest.approx(1 / 3)
    assert {x["path"] for x in d["artifacts"]} == {"model", "notes.txt", "environment/requirements.txt"}
    assert "python" in d["environment"]
    text = invoke("runs", "show", a.id)
    for piece in ("params", "lr", "metrics", "tags", "artifacts", "notes.txt", "environment", "python"):
        assert piece in text


def test_runs_compare(two_runs) -> None:
    a, b = two_runs
    d = json.loads(invoke("runs", "compare", a.id, b.id, "--json"))
    rows = {(r["section"], r["key"]): r for r in d["rows"]}
    assert rows[("param", "lr")]["a"] == "0.1" and rows[("param", "lr")]["b"] == "0.01"
    assert rows[("metric", "acc")]["differs"] is True
    assert ("param", "depth") not in rows  # equal rows are hidden by default
    full = json.loads(invoke("runs", "compare", a.id, b.id, "--json", "--all"))
    assert {"section": "param", "key": "depth", "a": "3", "b": "3", "differs": False} in full["rows"]
    text = invoke("runs", "compare", a.id, b.id)
    assert "lr" in text and "+0.1" in text  # acc delta b - a
    same = invoke("runs", "compare", a.id, a.id)
    assert "same params, metrics, tags and environment" in same


def test_runs_metrics(two_runs) -> None:
    a, b = two_runs
    points = json.loads(invoke("runs", "metrics", a.id, "loss", "--json"))
    assert [(p["step"], p["value"]) for p in points] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert json.loads(invoke("runs", "metrics", b.id, "nanm", "--json"))[0]["value"] == "NaN"
    text = invoke("runs", "metrics", a.id, "loss")
    assert text.splitlines()[1].startswith("1\t0.5\t")


def test_runs_download(two_runs, tmp_path: Path) -> None:
    a, _ = two_runs
    out = invoke("runs", "download", a.id, "model", "--dest", str(tmp_path / "dl"))
    assert (Path(out.strip()) / "w.bin").read_bytes() == b"weights"
    out = invoke("runs", "download", a.id, "notes.txt", "-d", str(tmp_path))
    assert Path(out.strip()).read_text() == "hello"
    # into an existing folder: the folder artifact lands under its own name, not spilled
    (tmp_path / "existing").mkdir()
    out = invoke("runs", "download", a.id, "model", "-d", str(tmp_path / "existing"))
    assert Path(out.strip()) == tmp_path / "existing" / "model"
    assert (tmp_path / "existing" / "model" / "w.bin").read_bytes() == b"weights"
    assert not (tmp_path / "existing" / "w.bin").exists()


def test_runs_delete_restore_and_gc(two_runs) -> None:
    a, b = two_runs
    assert f"Deleted run {a.id}" in invoke("runs", "delete", a.id[:24])
    assert [r["id"] for r in json.loads(invoke("runs", "list", "--json"))] == [b.id]
    assert len(json.loads(invoke("runs", "list", "--json", "--deleted"))) == 2
    assert f"Restored run {a.id}" in invoke("runs", "delete", a.id, "--restore")
    assert len(json.loads(invoke("runs", "list", "--json"))) == 2
    invoke("runs", "delete", a.id)
    dry = json.loads(invoke("gc", "--grace", "0", "--dry-run", "--json"))
    assert dry["dry_run"] is True and dry["runs_purged"] == 0
    report = json.loads(invoke("gc", "--grace", "0", "--json"))
    assert report["runs_purged"] == 1 and report["blobs_removed"] >= 3  # folder manifest, its file, notes.txt
    assert "Removed 0 blob(s)" in invoke("gc", "--grace", "0")
    assert json.loads(invoke("doctor", "--json"))["healthy"] is True


def test_doctor_on_a_damaged_store(tmp_path: Path, yard_cli) -> None:
    uri = str(tmp_path / "s")
    with yard.start_run(experiment="e", uri=uri, capture_env=False) as run:
        art = run.log_text("precious", "p.txt")
    ok = yard_cli("--uri", uri, "doctor")
    assert ok.returncode == 0 and "The store is healthy" in ok.stdout
    ws = yard.get_workspace(uri)
    p = ws.blobs.local_path(art.digest)
    os.chmod(p, 0o644)
    p.write_bytes(b"PRECIOUS")
    bad = yard_cli("--uri", uri, "doctor", "--json")
    assert bad.returncode == 1
    report = json.loads(bad.stdout)
    assert report["healthy"] is False and report["corrupt"] == [art.digest]
    text = yard_cli("--uri", uri, "doctor")
    assert text.returncode == 1 and f"corrupt  {art.digest}" in text.stdout and "has problems" in text.stdout
    # reading it through the CLI is a one-line error
    dl = yard_cli("--uri", uri, "runs", "download", run.id, "p.txt", "--dest", str(tmp_path))
    assert dl.returncode == 1
    assert dl.stderr.startswith("Error: Blob ") and "does not match its digest" in dl.stderr
    assert "Traceback" not in dl.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("runs", "show", "abcdef"), "Error: Run 'abcdef' does not exist. List runs with `yard runs list`."),
        (("runs", "list", "-e", "chrun"), "Error: Experiment 'chrun' does not exist. Did you mean 'churn'?"),
        (("runs", "list", "--filter", "metrics.acc >> 1"), "Error: Expected a value"),
        (("runs", "list", "--limit", "0"), "Error: The 'limit' parameter of search_runs must be"),
        (("runs", "metrics", "abcdef", "loss"), "Error: Run 'abcdef' does not exist"),
    ],
)
def test_errors_are_one_line_without_traceback(
    tmp_path: Path, yard_cli, args: tuple[str, ...], message: str
) -> None:
    uri = str(tmp_path / "s")
    with yard.start_run(experiment="churn", uri=uri, capture_env=False):
        pass
    proc = yard_cli("--uri", uri, *args)
    assert proc.returncode == 1
    assert proc.stderr.startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    if "--filter" not in args:
        assert proc.stderr.count("\n") == 1


def test_ambiguous_prefix_is_an_error(two_runs) -> None:
    a, b = two_runs
    n = next(i for i, (x, y) in enumerate(zip(a.id, b.id, strict=True)) if x != y)
    common = a.id[:n]
    if len(common) < 6:
        pytest.skip("the two ids share less than 6 characters")
    result = runner.invoke(app, ["runs", "show", common])
    assert isinstance(result.exception, yard.ModelyardError)
    assert "matches several runs" in str(result.exception) and "Give more characters" in str(result.exception)


def test_filter_error_in_cli_shows_the_caret(tmp_path: Path, yard_cli) -> None:
    uri = str(tmp_path / "s")
    yard.init(uri)
    proc = yard_cli("--uri", uri, "runs", "list", "--filter", "metrics.acc > 0.9 and stauts = 'x'")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("Error: Unknown run attribute 'stauts'")
    assert lines[-1].index("^") - 2 == len("metrics.acc > 0.9 and ")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ftp://x/y", "Error: The store URI 'ftp://x/y' has an unknown scheme 'ftp'."),
        (
            "postgresql://u:pw@127.0.0.1:1/db",
            "Error: Cannot open the metadata store 'postgresql://u:***@127.0.0.1:1/db'",
        ),
    ],
)
def test_unreadable_store_uri_in_cli(uri: str, message: str, yard_cli) -> None:
    proc = yard_cli("--uri", uri, "runs", "list")
    assert proc.returncode == 1 and proc.stderr.startswith(message), proc.stderr
    assert proc.stderr.count("\n") == 1 and "pw" not in proc.stderr


def test_store_uri_that_is_a_file_in_cli(tmp_path: Path, yard_cli) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    proc = yard_subprocess("runs", "list", YARD_URI=str(f))  # a real process: no traceback
    assert (
        proc.returncode == 1
        and "names a file, not a folder" in proc.stderr
        and "Traceback" not in proc.stderr
    )


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path: Path, yard_cli) -> None:
    proc = yard_subprocess("quickstart", cwd=tmp_path, YARD_URI="")
    assert proc.returncode == 0, proc.stderr
    assert "Tracked run" in proc.stdout and "yard runs show" in proc.stdout
    listing = yard_cli("runs", "list", "-e", "quickstart", "--json", cwd=tmp_path, YARD_URI="")
    assert listing.returncode == 0, listing.stderr
    # later chapters (pipelines) add runs to the same experiment: pick the tracking chapter's run
    (run,) = [r for r in json.loads(listing.stdout) if r["name"] == "churn-baseline"]
    assert run["status"] == "finished" and run["metrics"]["accuracy"] > 0.5
    assert set(run["metrics"]) >= {"accuracy", "f1", "roc_auc", "val_loss"}
    paths = {a["path"] for a in run["artifacts"]}
    assert {"data/summary.json", "data/sample.csv", "environment/requirements.txt"} <= paths
    doctor = yard_cli("doctor", "--json", cwd=tmp_path, YARD_URI="")
    assert doctor.returncode == 0 and json.loads(doctor.stdout)["healthy"] is True
