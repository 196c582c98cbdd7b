"""Datasets: the same calls, the same answers on SQLite, PostgreSQL and a server over HTTP.

Add, re-add, get, load, show, diff, lineage and errors; on a server the files travel through the
blob API (streamed, digest-verified) and the versions through the ``data`` operations.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import modelyard as yard
from modelyard.errors import InvalidArgumentError, NotFoundError


@pytest.fixture
def workspace(contract_uri: str):  # type: ignore[no-untyped-def]
    """The opened workspace of the contract store, made the default store of the test."""
    yard.set_uri(contract_uri)
    ws = yard.get_workspace(contract_uri).open()
    yield ws
    yard.set_uri(None)


def _frame(n: int = 500, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "charges": rng.normal(70, 20, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )


def test_add_file_readd_get_load_show(workspace, tmp_path: Path) -> None:
    src = tmp_path / "train.parquet"
    _frame().to_parquet(src)
    v1 = yard.data.add(src, name="churn-train")
    assert (v1.ref, v1.created, v1.rows, v1.files, v1.format) == ("churn-train@v1", True, 500, 1, "parquet")
    again = yard.data.add(src, name="churn-train")
    assert (again.ref, again.created) == ("churn-train@v1", False)
    _frame(seed=1).to_parquet(src)
    v2 = yard.data.add(src, name="churn-train")
    assert v2.ref == "churn-train@v2" and v2.manifest_digest != v1.manifest_digest

    out = yard.data.get("churn-train@v1", tmp_path / "out")
    got = pd.read_parquet(out / "train.parquet")
    pd.testing.assert_frame_equal(got, _frame())
    if workspace.blobs.is_local:  # a copy by default; hard links only on request
        blob = workspace.blobs.local_path(yard.data.show("churn-train@v1")["files"][0]["digest"])
        assert os.stat(out / "train.parquet").st_ino != blob.stat().st_ino
        linked = yard.data.get("churn-train@v1", tmp_path / "linked", link=True)
        assert os.stat(linked / "train.parquet").st_ino == blob.stat().st_ino
    pd.testing.assert_frame_equal(yard.data.load("churn-train@v1"), _frame())
    assert yard.data.load("churn-train", engine="polars").shape == (500, 3)  # latest = v2

    info = yard.data.show("churn-train@v1")
    assert info["version"]["ref"] == "churn-train@v1"
    assert [c["name"] for c in info["schema"]["columns"]] == ["tenure", "charges", "plan"]
    plan = next(c for c in info["profile"]["columns"] if c["name"] == "plan")
    assert {k for k, _ in plan["top"]} == {"basic", "pro", "team"}
    assert [v["version"] for v in info["versions"]] == [1, 2]
    [listed] = yard.data.list()
    assert listed["name"] == "churn-train" and listed["versions"] == 2 and listed["latest"]["version"] == 2


def test_add_folder_frame_and_diff(workspace, tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    _frame(200, 1).to_parquet(folder / "a.parquet")
    _frame(300, 2).to_parquet(folder / "b.parquet")
    (folder / "README.txt").write_text("notes")
    v1 = yard.data.add(folder, name="parts")
    assert (v1.files, v1.rows, v1.format) == (3, 500, "mixed")
    _frame(100, 3).to_parquet(folder / "c.parquet")
    (folder / "README.txt").write_text("new notes")
    (folder / "a.parquet").unlink()
    v2 = yard.data.add(folder, name="parts")
    d = yard.data.diff("parts@v1", "parts@v2")
    assert [f["path"] for f in d["files"]["added"]] == ["c.parquet"]
    assert [f["path"] for f in d["files"]["removed"]] == ["a.parquet"]
    assert [f["path"] for f in d["files"]["changed"]] == ["README.txt"]
    assert d["files"]["unchanged"] == 1 and d["rows"] == [500, 400]
    assert {c["column"] for c in d["columns"]} == {"tenure", "charges", "plan"}
    assert v2.version == 2

    frame = _frame(50)
    f1 = yard.data.add(frame, name="frame")
    assert yard.data.add(frame.copy(), name="frame").created is False
    import polars as pl

    assert yard.data.add(pl.from_pandas(frame), name="frame-pl").rows == 50
    pd.testing.assert_frame_equal(yard.data.load(f1.ref), frame)


def test_diff_of_a_random_split_shows_no_shift_and_a_real_shift_is_marked(workspace, tmp_path: Path) -> None:
    """A 70/30 split of 569 rows read PSI 0.2-0.7 per column on the fine grid (red in `yard data diff`)."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from typer.testing import CliRunner

    from modelyard.cli import app

    df = load_breast_cancer(as_frame=True).frame
    train, test = train_test_split(df, test_size=0.3, stratify=df["target"], random_state=0)
    yard.data.add(train, name="bc")
    yard.data.add(test, name="bc")
    d = yard.data.diff("bc@v1", "bc@v2")
    assert len(d["columns"]) == 31
    assert [c["column"] for c in d["columns"] if c["shifted"]] == []
    assert all(c["psi"] < c["psi_limit"] for c in d["columns"]), [
        (c["column"], c["psi"]) for c in d["columns"]
    ]
    yard.data.add(test.assign(**{"mean radius": test["mean radius"] * 1.5}), name="bc")
    d3 = yard.data.diff("bc@v1", "bc@v3")
    assert [c["column"] for c in d3["columns"] if c["shifted"]] == ["mean radius"]
    out = CliRunner().invoke(app, ["data", "diff", "bc@v1", "bc@v3"]).output
    line = next(x for x in out.splitlines() if x.lstrip().startswith("mean radius"))
    assert " > " in line and line.rstrip().endswith("shifted"), out
    assert sum(x.rstrip().endswith("shifted") for x in out.splitlines()) == 1, out


def test_prepare_stores_the_blobs_and_commit_records_the_version(workspace, tmp_path: Path) -> None:
    from modelyard.data import DataService, PreparedVersion

    svc = DataService(workspace)
    f = tmp_path / "train.parquet"
    _frame().to_parquet(f)
    prepared = svc.prepare(f, "staged", description="two steps")
    assert isinstance(prepared, PreparedVersion) and prepared.rows == 500 and prepared.fmt == "parquet"
    assert workspace.blobs.exists(prepared.manifest) and workspace.blobs.exists(prepared.profile_digest)
    assert svc.latest_version("staged") is None  # nothing recorded yet
    v = svc.commit(prepared)
    assert (v.ref, v.created, v.rows, v.description) == ("staged@v1", True, 500, "two steps")
    assert v.manifest_digest == prepared.manifest
    again = svc.prepare(f, "staged")  # the same bytes: the latest version, nothing to commit
    assert isinstance(again, type(v)) and (again.ref, again.created) == ("staged@v1", False)
    assert svc.commit(prepared).created is False  # committing twice records nothing new


def test_lineage_both_ways(workspace, tmp_path: Path) -> None:
    v = yard.data.add(_frame(), name="churn-train")
    with yard.start_run(experiment="churn", name="fit") as run:
        df = run.use_dataset("churn-train@v1")
        assert isinstance(df, pd.DataFrame) and len(df) == 500
        run.use_dataset("churn-train@v1", engine="polars")  # twice: one input row
        assert [x.ref for x in run.inputs()] == ["churn-train@v1"]
        produced = yard.data.add(df.head(10), name="churn-sample")
    assert produced.run_id == run.id
    used = yard.data.show(v.ref)["runs"]
    assert [(r["id"], r["name"], r["experiment"]) for r in used] == [(run.id, "fit", "churn")]
    from modelyard.data import DataService

    assert [x.ref for x in DataService(workspace).inputs_of(run.id)] == ["churn-train@v1"]
    if not workspace.is_remote:  # gc runs where the store is; a server's admin runs it there
        # gc keeps every blob a dataset version references
        from modelyard._maintenance import doctor, gc

        gc(workspace, grace_seconds=0)
        assert doctor(workspace).healthy
    pd.testing.assert_frame_equal(yard.data.load(v.ref), _frame())


def test_bad_input(workspace, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"Cannot add '.*missing\.parquet': no such file or folder"):
        yard.data.add(tmp_path / "missing.parquet", name="x")
    yard.data.add(_frame(), name="churn-train")
    with pytest.raises(
        NotFoundError, match=r"Dataset 'churn-trian' does not exist\. Did you mean 'churn-train'\?"
    ):
        yard.data.load("churn-trian@v1")
    with pytest.raises(
        NotFoundError, match=r"Dataset 'churn-train' has no version v9; the latest is churn-train@v1\."
    ):
        yard.data.show("churn-train@v9")
    with pytest.raises(InvalidArgumentError, match=r"is not a dataset reference"):
        yard.data.show("churn-train@9x")
    with pytest.raises(InvalidArgumentError, match=r"cannot contain '@'"):
        yard.data.add(_frame(), name="a@b")
    bad = tmp_path / "broken.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(
        InvalidArgumentError, match=r"Cannot read '.*broken\.parquet' as parquet: .*valid parquet file"
    ):
        yard.data.add(bad, name="broken")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _frame(10).to_parquet(mixed / "a.parquet")
    pq.write_table(pa.table({"tenure": ["x"], "charges": [1.0], "plan": ["a"]}), mixed / "b.parquet")
    with pytest.raises(
        InvalidArgumentError,
        match=r"Mixed schemas: column 'tenure' is string in 'b\.parquet' but int64 in 'a\.parquet'",
    ):
        yard.data.add(mixed, name="mixed")
    pq.write_table(pa.table({"tenure": [1]}), mixed / "b.parquet")
    with pytest.raises(InvalidArgumentError, match=r"'b\.parquet' lacks column\(s\) 'charges', 'plan'"):
        yard.data.add(mixed, name="mixed")
    csv = tmp_path / "bad.csv"
    csv.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(
        InvalidArgumentError, match=r"Cannot read '.*bad\.csv' as csv: .*Expected 2 columns, got 3"
    ):
        yard.data.add(csv, name="badcsv")
    assert [d["name"] for d in yard.data.list()] == ["churn-train"]  # nothing half-stored
    with pytest.raises(
        InvalidArgumentError, match=r"The 'engine' parameter of yard.data.load must be one of"
    ):
        yard.data.load("churn-train", engine="spark")


def test_folder_versions_round_trip_bytes(workspace, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    (folder / "cats").mkdir(parents=True)
    payload = {
        "cats/a.bin": os.urandom(3000),
        "cats/b.bin": b"",
        "labels.csv": b"file,label\ncats/a.bin,cat\n",
        "big.bin": os.urandom(3 << 20),  # several upload chunks
    }
    for rel, data in payload.items():
        (folder / rel).write_bytes(data)
    v1 = yard.data.add(folder, name="images")
    assert (v1.ref, v1.files, v1.bytes, v1.created) == ("images@v1", 4, sum(map(len, payload.values())), True)
    assert yard.data.add(folder, name="images") == v1.__class__(**{**v1.__dict__, "created": False})
    (folder / "cats" / "a.bin").write_bytes(b"changed")
    v2 = yard.data.add(folder, name="images")
    assert (v2.ref, v2.created) == ("images@v2", True)
    for version, a_bytes in ((v1, payload["cats/a.bin"]), (v2, b"changed")):
        out = yard.data.get(version.ref, tmp_path / f"out{version.version}")
        got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert got == {**payload, "cats/a.bin": a_bytes}
    d = yard.data.diff(v1.ref, v2.ref)
    assert [f["path"] for f in d["files"]["changed"]] == ["cats/a.bin"] and d["files"]["unchanged"] == 3
    assert [v.version for v in yard.data.versions("images")] == [1, 2]
    pd.testing.assert_frame_equal(
        yard.data.load("images"), pd.DataFrame({"file": ["cats/a.bin"], "label": ["cat"]})
    )


def test_cli_add_show_get_over_the_store(workspace, tmp_path: Path) -> None:
    """``yard data add`` asks the read-only unchanged check first; it never applies to a server or
    PostgreSQL, and the full path answers the same there."""
    import json

    from typer.testing import CliRunner

    from modelyard.cli import app
    from modelyard.data._unchanged import unchanged_version

    src = tmp_path / "train.parquet"
    _frame(40).to_parquet(src)
    runner = CliRunner()
    first = runner.invoke(app, ["data", "add", str(src), "--name", "cli-set"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["data", "add", str(src), "--name", "cli-set"])
    assert again.exit_code == 0 and "unchanged" in again.output, again.output
    if workspace.location.dialect != "sqlite":  # (the SQLite fast path: test_data_unchanged_readd.py)
        assert unchanged_version(src, "cli-set", workspace.location.uri) is None
    shown = runner.invoke(app, ["data", "show", "cli-set", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["version"]["ref"] == "cli-set@v1"
    got = runner.invoke(app, ["data", "get", "cli-set@v1", str(tmp_path / "dl")])
    assert got.exit_code == 0, got.output
    assert (tmp_path / "dl" / "train.parquet").read_bytes() == src.read_bytes()
    missing = runner.invoke(app, ["data", "show", "cli-sett"])
    assert missing.exit_code == 1 and "Did you mean 'cli-set'?" in str(missing.exception)


def test_validate_against_a_stored_version(workspace, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from modelyard.cli import app

    yard.data.add(_frame(400), name="ref-set")
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    _frame(300, seed=5).to_parquet(good)
    _frame(300, seed=5).assign(plan="enterprise").to_parquet(bad)
    assert yard.data.validate(good, against="ref-set@v1").ok
    report = yard.data.validate(bad, against="ref-set@v1")
    assert not report.ok
    runner = CliRunner()
    assert runner.invoke(app, ["validate", "data", str(good), "--against", "ref-set@v1"]).exit_code == 0
    failed = runner.invoke(app, ["validate", "data", str(bad), "--against", "ref-set@v1"])
    assert failed.exit_code == 1 and "plan" in failed.output, failed.output


def test_recording_checks_blobs_and_runs(workspace, tmp_path: Path) -> None:
    from modelyard.data import DataService

    svc = DataService(workspace)
    v = yard.data.add(_frame(20), name="base")
    common = {"schema_digest": None, "profile_digest": None, "fmt": "files", "files": 1, "rows": None}
    with pytest.raises(yard.errors.BlobNotFoundError, match=r"its manifest blob 0{64} is not stored"):
        svc.record_version("ghost", manifest="0" * 64, size=1, source=None, **common)
    with pytest.raises(NotFoundError, match=r"made by run 'nope': no such run"):
        svc.record_version("ghost", manifest=v.manifest_digest, size=1, source=None, run_id="nope", **common)
    with pytest.raises(NotFoundError, match=r"Run 'nope' does not exist"):
        svc.record_input("nope", v.ref)
    assert [d["name"] for d in yard.data.list()] == ["base"]  # nothing half-recorded


def test_roles_on_datasets_over_the_server(server_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Readers read datasets; recording a version needs writer on that dataset (a grant gives it)."""
    from modelyard._workspace import Workspace
    from modelyard.data import DataService
    from modelyard.errors import PermissionDeniedError
    from modelyard.server._users import AuthService

    admin = Workspace(server_uri)
    auth = AuthService(admin)
    auth.add_user("ann", "reader")
    token = auth.create_token("ann", expires=None)["token"]
    v = yard.data.add(_frame(20), name="shared", uri=admin)
    monkeypatch.setenv("YARD_TOKEN", token)
    ann = Workspace(server_uri)
    pd.testing.assert_frame_equal(yard.data.load("shared", uri=ann), _frame(20))
    assert [d["name"] for d in yard.data.list(uri=ann)] == ["shared"]
    with pytest.raises(PermissionDeniedError):
        yard.data.add(_frame(10, 1), name="shared", uri=ann)
    same = {
        "manifest": v.manifest_digest,
        "schema_digest": v.schema_digest,
        "profile_digest": v.profile_digest,
        "fmt": v.format,
        "files": v.files,
        "rows": v.rows,
        "size": v.bytes,
        "source": None,
    }
    with pytest.raises(PermissionDeniedError, match=r"record_version needs role 'writer' on dataset 'mine'"):
        DataService(ann).record_version("mine", **same)
    auth.grant("ann", "dataset", "mine", "writer")
    assert DataService(ann).record_version("mine", **same).ref == "mine@v1"
    admin.close()
    ann.close()
