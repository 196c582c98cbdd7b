"""The tracking API on SQLite and PostgreSQL: params, metrics, tags, artifacts, nesting, search."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

import modelyard as yard
from modelyard.errors import ConflictError
from modelyard.tracking import RunList, RunStatus, TrackingService


def test_params_metrics_tags_roundtrip(workspace) -> None:
    with yard.start_run(
        experiment="churn", name="baseline", params={"lr": 0.01, "depth": 6, "flag": True}
    ) as run:
        run.log_param("opt", "adam")
        run.log_metric("loss", 0.5, step=0)
        run.log_metric("loss", 0.25, step=1)
        run.log_metrics({"acc": 0.91, "f1": 0.88})
        run.set_tags({"team": "risk"})
        run.set_tag("team", "fraud")  # tags may change
        assert run.status is RunStatus.RUNNING
    rec = yard.get_run(run.id)
    assert rec.experiment == "churn" and rec.name == "baseline"
    assert rec.status is RunStatus.FINISHED and rec.end_time is not None and rec.end_time >= rec.start_time
    assert rec.params == {"depth": "6", "flag": "True", "lr": "0.01", "opt": "adam"}
    assert rec.metrics == {"acc": 0.91, "f1": 0.88, "loss": 0.25}
    assert rec.tags == {"team": "fraud"}
    assert rec.user
    # an id prefix of 6+ characters resolves
    assert yard.get_run(run.id[:-4]).id == run.id
    assert run.id == rec.id and len(run.id) == 32


def test_run_ids_sort_by_creation_time(workspace) -> None:
    ids = []
    for _ in range(5):
        with yard.start_run(experiment="e", capture_env=False) as run:
            pass
        ids.append(run.id)
    assert ids == sorted(ids)
    assert len(set(ids)) == 5


def test_default_step_auto_increments_and_history(workspace) -> None:
    with yard.start_run(experiment="e") as run:
        for v in (3.0, 2.0, 1.0):
            run.log_metric("loss", v)
        run.log_metric("loss", 0.5, step=10)
        run.log_metric("loss", 0.4)  # one past the last step of that key
        run.log_metric("other", 7)  # its own counter starts at 0
    svc = TrackingService(workspace)
    hist = svc.metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in hist] == [(0, 3.0), (1, 2.0), (2, 1.0), (10, 0.5), (11, 0.4)]
    assert all(p.timestamp > 0 for p in hist)
    assert [(p.step, p.value) for p in svc.metric_history(run.id, "other")] == [(0, 7.0)]
    assert svc.metric_keys(run.id) == ["loss", "other"]
    assert yard.get_run(run.id).metrics["loss"] == 0.4


def test_latest_metric_is_highest_step_not_last_logged(workspace) -> None:
    with yard.start_run(experiment="e") as run:
        run.log_metric("m", 5.0, step=5)
        run.flush()
        run.log_metric("m", 1.0, step=1)  # an older step logged later does not win
    assert yard.get_run(run.id).metrics["m"] == 5.0


def test_nan_and_inf_are_kept(workspace) -> None:
    with yard.start_run(experiment="e") as run:
        run.log_metric("nan", float("nan"))
        run.log_metric("inf", float("inf"))
        run.log_metric("ninf", float("-inf"))
        run.log_metric("seq", 1.0, step=0)
        run.log_metric("seq", float("nan"), step=1)
        run.log_metric("seq", 2.0, step=2)
    rec = yard.get_run(run.id)
    assert math.isnan(rec.metrics["nan"])
    assert rec.metrics["inf"] == math.inf and rec.metrics["ninf"] == -math.inf
    hist = TrackingService(workspace).metric_history(run.id, "seq")
    assert hist[0].value == 1.0 and math.isnan(hist[1].value) and hist[2].value == 2.0
    # the infinite latest values are searchable as numbers
    assert [r.id for r in yard.search_runs("e", filter="metrics.inf > 1e308")] == [run.id]


def test_run_info_flushes_buffer(workspace) -> None:
    with yard.start_run(experiment="e") as run:
        for i in range(100):
            run.log_metric("x", i)
        assert run.info().metrics["x"] == 99


def test_nested_runs_inherit_experiment(workspace) -> None:
    with yard.start_run(experiment="churn", name="parent") as parent:
        assert yard.active_run() is parent
        with yard.start_run(name="fold-1", nested=True) as child:
            assert yard.active_run() is child
            child.log_metric("acc", 0.9)
        with yard.start_run(name="fold-2", nested=True, experiment="other") as other:
            pass
        assert yard.active_run() is parent
    assert yard.active_run() is None
    c = yard.get_run(child.id)
    assert c.experiment == "churn" and c.parent_id == parent.id
    assert yard.get_run(other.id).experiment == "other"
    children = TrackingService(workspace).search_runs("churn", parent_id=parent.id)
    assert [r.id for r in children] == [child.id]


def test_second_top_level_run_needs_nested(workspace) -> None:
    with yard.start_run(experiment="e") as run:
        with pytest.raises(RuntimeError, match=r"already active.*nested=True"):
            yard.start_run(experiment="e")
    assert yard.get_run(run.id).status is RunStatus.FINISHED


def test_artifacts_files_and_folders(workspace, tmp_path: Path) -> None:
    f = tmp_path / "confusion.png"
    f.write_bytes(b"\x89PNG fake image")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(os.urandom(1000))
    (folder / "sub" / "config.json").write_text('{"a": 1}')
    os.chmod(folder / "sub" / "config.json", 0o600)
    with yard.start_run(experiment="e") as run:
        a1 = run.log_artifact(f)
        a2 = run.log_artifact(folder, "models")
        a3 = run.log_text("hello", "notes/readme.txt")
        a4 = run.log_dict({"k": [1, 2]}, "cfg/params.yaml")
    assert (a1.path, a1.kind, a1.size) == ("confusion.png", "file", f.stat().st_size)
    assert (a2.path, a2.kind, a2.size) == ("models/model", "dir", 1000 + len('{"a": 1}'))
    assert a3.path == "notes/readme.txt" and a4.path == "cfg/params.yaml"
    rec = yard.get_run(run.id)
    paths = [a.path for a in rec.artifacts]
    assert paths == sorted(paths)
    assert {
        "confusion.png",
        "models/model",
        "notes/readme.txt",
        "cfg/params.yaml",
        "environment/requirements.txt",
    } == set(paths)
    entries = {e.path: e for e in workspace.blobs.read_manifest(a2.digest)}
    assert set(entries) == {"weights.bin", "sub/config.json"}
    assert entries["sub/config.json"].mode == 0o600 and entries["weights.bin"].size == 1000
    # download back: the file, the folder, verified
    svc = TrackingService(workspace)
    out = svc.download_artifact(run.id, "confusion.png", tmp_path / "dl")
    assert out.read_bytes() == f.read_bytes()
    tree = svc.download_artifact(run.id, "models/model", tmp_path / "tree")
    assert (tree / "weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()
    assert (tree / "sub" / "config.json").read_text() == '{"a": 1}'
    assert workspace.blobs.read_bytes(a3.digest) == b"hello"
    import yaml

    assert yaml.safe_load(workspace.blobs.read_bytes(a4.digest)) == {"k": [1, 2]}
    with pytest.raises(
        yard.ModelyardError, match=r"has no artifact 'confusion.pgn'.*Did you mean 'confusion.png'"
    ):
        svc.download_artifact(run.id, "confusion.pgn", tmp_path)


def test_relogging_an_artifact_path_replaces_it(workspace, tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    with yard.start_run(experiment="e", capture_env=False) as run:
        f.write_text("one")
        run.log_artifact(f)
        f.write_text("two")
        run.log_artifact(f)
    (art,) = yard.get_run(run.id).artifacts
    assert workspace.blobs.read_bytes(art.digest) == b"two"


def test_resume_with_run_id(workspace) -> None:
    with yard.start_run(experiment="e", params={"lr": 0.1}) as run:
        run.log_metric("loss", 1.0)
    with yard.start_run(run_id=run.id, params={"lr": 0.1, "extra": 1}) as again:
        assert again.id == run.id and again.experiment == "e"
        again.log_metric("loss", 0.5)
    rec = yard.get_run(run.id)
    assert rec.status is RunStatus.FINISHED and rec.params == {"extra": "1", "lr": "0.1"}
    hist = TrackingService(workspace).metric_history(run.id, "loss")
    assert [(p.step, p.value) for p in hist] == [(0, 1.0), (1, 0.5)]  # default steps carry on
    with pytest.raises(ConflictError, match="cannot change"):
        yard.start_run(run_id=run.id, params={"lr": 0.2})
    assert yard.get_run(run.id).params["lr"] == "0.1"


def test_search_runs_returns_runlist_and_pandas(workspace) -> None:
    for i, lr in enumerate(["0.1", "0.01", "0.001"]):
        with yard.start_run(
            experiment="churn", name=f"r{i}", params={"lr": lr}, tags={"team": "risk" if i else "ml"}
        ) as run:
            run.log_metric("acc", 0.8 + i * 0.05)
    with yard.start_run(experiment="other"):
        pass
    runs = yard.search_runs(
        "churn",
        filter="metrics.acc > 0.82 and params.lr = '0.01' or tags.team = 'ml'",
        order_by=["metrics.acc desc"],
    )
    assert isinstance(runs, RunList)
    assert [r.name for r in runs] == ["r1", "r0"]
    assert [r.name for r in yard.search_runs("churn", limit=2)] == ["r2", "r1"]  # newest first
    assert len(yard.search_runs()) == 4
    assert len(yard.search_runs(["churn", "other"])) == 4
    df = yard.search_runs("churn", order_by="name").to_pandas()
    assert list(df["name"]) == ["r0", "r1", "r2"]
    assert list(df["params.lr"]) == ["0.1", "0.01", "0.001"]
    assert df["metrics.acc"].tolist() == pytest.approx([0.8, 0.85, 0.9])
    assert str(df["start_time"].dtype).startswith("datetime64")
    assert set(df["status"]) == {"finished"}
    assert RunList().to_pandas().empty


def test_delete_and_restore(workspace) -> None:
    with yard.start_run(experiment="e", name="p") as parent:
        with yard.start_run(name="c", nested=True) as child:
            pass
    yard.delete_run(parent.id)
    assert yard.search_runs("e") == []
    assert {r.id for r in yard.search_runs("e", include_deleted=True)} == {parent.id, child.id}
    assert yard.get_run(child.id).deleted
    TrackingService(workspace).delete_run(parent.id, restore=True)
    assert {r.id for r in yard.search_runs("e")} == {parent.id, child.id}
    assert not yard.get_run(child.id).deleted


def test_to_dict_is_json_ready(workspace) -> None:
    import json

    with yard.start_run(experiment="e", capture_env=False) as run:
        run.log_metric("n", float("nan"))
    d = json.loads(yard.get_run(run.id).to_json())
    assert d["metrics"] == {"n": "NaN"} and d["status"] == "finished" and d["start"].endswith("+00:00")


def test_uri_argument_picks_the_store(tmp_path: Path) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    with yard.start_run(experiment="e", uri=a, capture_env=False) as run:
        pass
    assert [r.id for r in yard.search_runs(uri=a)] == [run.id]
    assert yard.search_runs(uri=b) == []
    assert (tmp_path / "a" / "yard.db").exists()


def test_threads_logging_into_one_run_lose_nothing(workspace) -> None:
    import threading

    with yard.start_run(experiment="e", capture_env=False) as run:

        def work(t: int) -> None:
            for i in range(2000):
                run.log_metric(f"t{t}", float(i), step=i)
                if i % 500 == 0:
                    run.flush()

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    svc = TrackingService(workspace)
    for t in range(4):
        hist = svc.metric_history(run.id, f"t{t}")
        assert [p.step for p in hist] == list(range(2000))
    assert yard.get_run(run.id).metrics == {f"t{t}": 1999.0 for t in range(4)}


def test_a_failed_flush_keeps_the_points_for_the_next_one(tmp_path: Path, full_disk) -> None:  # type: ignore[no-untyped-def]
    from modelyard.errors import StoreError
    from modelyard.tracking._run import _flusher

    ws = yard.get_workspace(str(tmp_path / "store")).open()
    with yard.start_run(experiment="e", uri=ws, capture_env=False) as run:
        with _flusher.lock:  # only explicit flushes in this test (the background one would race)
            _flusher.runs.discard(run)
        with ws.store.read() as conn:
            pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar())
        ws.store.dispose()
        free_disk = full_disk(tmp_path / "store" / "yard.db", pages)  # a real SQLITE_FULL
        for i in range(3000):  # more points than the free room of the store's pages
            run.log_metric("x", float(i), step=i)
        with pytest.raises(StoreError, match="the disk is full"):
            run.flush()
        free_disk()
        ws.store.dispose()
        run.log_metric("x", 3000.0, step=3000)
    # the failed batch is sent again with the next flush, once, then the new point
    history = TrackingService(ws).metric_history(run.id, "x")
    assert [(p.step, p.value) for p in history] == [(i, float(i)) for i in range(3001)]
    assert yard.get_run(run.id, uri=ws).metrics == {"x": 3000.0}
