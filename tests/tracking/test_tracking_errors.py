"""Bad input: each raises a modelyard error naming the problem and the fix; nothing stored changes."""

from __future__ import annotations

from pathlib import Path

import pytest

import modelyard as yard
from modelyard.errors import (
    ConfigError,
    ConflictError,
    InvalidArgumentError,
    InvalidKeyError,
    ModelyardError,
    NotFoundError,
    StoreError,
)
from modelyard.tracking import RunStatus, TrackingService


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", r"The param name is empty\. Give it a name"),
        ("   ", r"The param name is empty"),
        ("k" * 251, r"is 251 characters long; the limit is 250\. Use a shorter name"),
        ("a/../b", r"contains '\.\.', which is not allowed"),
        ("bad\nkey", r"contains a control character"),
        ("tab\tkey", r"contains a control character"),
        ("nul\x00", r"contains a control character"),
        ("/abs", r"starts with '/'"),
        (3, r"The param name must be a string\. Got int 3"),
    ],
)
def test_invalid_param_keys(key, message) -> None:
    with yard.start_run(experiment="e", params={"ok": 1}, capture_env=False) as run:
        with pytest.raises(InvalidKeyError, match=message):
            run.log_params({"fine": 1, key: 2})
    # the rejected call stored nothing, not even its valid part
    assert yard.get_run(run.id).params == {"ok": "1"}


def test_key_of_exactly_250_characters_is_fine(workspace) -> None:
    with yard.start_run(experiment="e", capture_env=False) as run:
        run.log_param("k" * 250, 1)
        run.log_metric("m" * 250, 1)
        run.set_tag("t" * 250, 1)
    rec = yard.get_run(run.id)
    assert "k" * 250 in rec.params and "m" * 250 in rec.metrics and "t" * 250 in rec.tags


@pytest.mark.parametrize("what", ["metric", "tag", "artifact"])
def test_invalid_keys_for_metrics_tags_artifacts(workspace, what, tmp_path: Path) -> None:
    with yard.start_run(experiment="e", capture_env=False) as run:
        if what == "metric":
            for key, msg in (
                ("", "metric name is empty"),
                ("x" * 300, "limit is 250"),
                ("a..b", "'..'"),
                ("a\rb", "control"),
            ):
                with pytest.raises(InvalidKeyError, match=msg):
                    run.log_metric(key, 1.0)
            with pytest.raises(InvalidKeyError, match="metric name is empty"):
                run.log_metrics({"good": 1.0, "": 2.0})
        elif what == "tag":
            with pytest.raises(InvalidKeyError, match=r"tag name .* contains '\.\.'"):
                run.set_tags({"ok": 1, "../x": 2})
        else:
            with pytest.raises(InvalidKeyError, match=r"artifact path .* contains '\.\.'"):
                run.log_text("x", "../escape.txt")
            f = tmp_path / "f.txt"
            f.write_text("x")
            with pytest.raises(InvalidKeyError, match="artifact path"):
                run.log_artifact(f, "a/../..")
    rec = yard.get_run(run.id)
    assert rec.metrics == {} and rec.tags == {} and rec.artifacts == []


def test_too_long_values(workspace) -> None:
    with yard.start_run(experiment="e", params={"p": "short"}, capture_env=False) as run:
        with pytest.raises(
            InvalidArgumentError,
            match=r"value of param 'long' is 6001 characters long; the limit is 6000.*log_text",
        ):
            run.log_params({"other": 1, "long": "x" * 6001})
        with pytest.raises(InvalidArgumentError, match=r"value of tag 't' is 7000 characters long"):
            run.set_tag("t", "y" * 7000)
        run.log_param("max", "z" * 6000)
    rec = yard.get_run(run.id)
    assert set(rec.params) == {"p", "max"} and rec.tags == {}


def test_bad_metric_values_and_steps(workspace) -> None:
    with yard.start_run(experiment="e", capture_env=False) as run:
        with pytest.raises(
            InvalidArgumentError, match=r"value of metric 'm' must be a number\. Got str 'high'"
        ):
            run.log_metric("m", "high")
        with pytest.raises(
            InvalidArgumentError, match=r"step of metric 'm' must be a whole number\. Got float 1.5"
        ):
            run.log_metric("m", 1.0, step=1.5)
        with pytest.raises(InvalidArgumentError, match="must be a number"):
            run.log_metrics({"a": 1.0, "b": None})
        with pytest.raises(
            InvalidArgumentError,
            match=r"The 'values' parameter of log_metrics must be a mapping of name to number",
        ):
            run.log_metrics([("a", 1.0)])
        run.log_metric("m", 2, step=3.0)  # a whole float step is accepted
    assert yard.get_run(run.id).metrics == {"m": 2.0}


def test_logging_to_a_finished_run(workspace, tmp_path: Path) -> None:
    with yard.start_run(experiment="e", params={"a": 1}, capture_env=False) as run:
        run.log_metric("m", 1.0)
    f = tmp_path / "f.txt"
    f.write_text("x")
    for call in (
        lambda: run.log_metric("m", 2.0),
        lambda: run.log_param("b", 2),
        lambda: run.log_artifact(f),
        lambda: run.log_text("x", "y.txt"),
    ):
        with pytest.raises(
            ConflictError,
            match=rf"Run {run.id} is finished; nothing more can be logged.*start_run\(run_id=\.\.\.\)",
        ):
            call()
    with pytest.raises(ConflictError, match="already finished; it cannot become failed"):
        run.end("failed")
    with pytest.raises(
        InvalidArgumentError,
        match=r"The 'status' parameter of Run.end must be one of 'finished', 'failed', 'killed'\. Got "
        r"'bogus' instead\.",
    ):
        run.end("bogus")
    with pytest.raises(InvalidArgumentError, match="Got 'running' instead"):
        run.end("running")
    rec = yard.get_run(run.id)
    assert rec.status is RunStatus.FINISHED and rec.params == {"a": "1"} and rec.metrics == {"m": 1.0}
    assert rec.artifacts == []


def test_service_rejects_writes_to_ended_run(workspace) -> None:
    svc = TrackingService(workspace)
    rec = svc.create_run(experiment="e")
    svc.end_run(rec.id, RunStatus.FAILED, "boom")
    with pytest.raises(ConflictError, match="is failed; nothing more can be logged"):
        svc.log_params(rec.id, {"x": 1})
    with pytest.raises(ConflictError, match="already failed"):
        svc.end_run(rec.id, RunStatus.FINISHED)
    assert svc.get_run(rec.id).error == "boom"


def test_param_logged_twice_with_another_value(workspace) -> None:
    with yard.start_run(experiment="e", params={"lr": 0.01}, capture_env=False) as run:
        run.log_param("lr", 0.01)  # the same value again is fine
        with pytest.raises(
            ConflictError,
            match=r"Param 'lr' of run \w+ is already '0.01'; it cannot change to '0.02'\. Params are "
            r"fixed once logged",
        ):
            run.log_params({"new": 1, "lr": 0.02})
    assert yard.get_run(run.id).params == {"lr": "0.01"}


def test_unknown_experiment_suggests(workspace) -> None:
    with yard.start_run(experiment="churn", capture_env=False):
        pass
    with pytest.raises(NotFoundError, match=r"Experiment 'chrun' does not exist\. Did you mean 'churn'\?"):
        yard.search_runs("chrun")
    with pytest.raises(NotFoundError, match=r"Experiment 'zzz' does not exist\. Known experiments: churn\."):
        yard.search_runs("zzz")


def test_unknown_experiment_in_empty_store(workspace) -> None:
    with pytest.raises(NotFoundError, match="No experiment exists yet"):
        yard.search_runs("churn")


def test_unknown_run(workspace) -> None:
    with pytest.raises(
        NotFoundError, match=r"Run 'abcdef123' does not exist\. List runs with `yard runs list`"
    ):
        yard.get_run("abcdef123")
    with pytest.raises(NotFoundError, match="does not exist"):
        yard.start_run(run_id="0" * 32)


def test_search_limit_validated(workspace) -> None:
    with pytest.raises(
        InvalidArgumentError,
        match=r"The 'limit' parameter of search_runs must be an int in the range \[1, 50000\]\. Got 0",
    ):
        yard.search_runs(limit=0)


def test_store_uri_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("hi")
    with pytest.raises(ConfigError, match=r"names a file, not a folder\. Pass a folder"):
        yard.search_runs(uri=str(f))
    assert f.read_text() == "hi"


def test_store_uri_unknown_scheme() -> None:
    with pytest.raises(ConfigError, match=r"unknown scheme 'ftp'\. Use a folder path"):
        yard.get_workspace("ftp://host/x")
    with pytest.raises(ConfigError, match="carries credentials; a modelyard server takes a token"):
        yard.get_workspace("http://user:secret@host/x")
    with pytest.raises(ConfigError, match="needs a database file"):
        yard.get_workspace("sqlite:///:memory:")
    with pytest.raises(ConfigError, match="The store URI is empty"):
        yard.get_workspace("   ")


def test_store_uri_unreachable_postgres() -> None:
    # port 1 on loopback: nothing listens there; the password must not leak into the message
    uri = "postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2"
    with pytest.raises(
        StoreError,
        match=r"^Cannot open the metadata store .postgresql://u:\*\*\*@127.0.0.1:1/db.*refused.*\. Check "
        r"that the database server runs and the URI is right\.$",
    ) as info:
        yard.search_runs(uri=uri)
    assert "secret" not in str(info.value)
    assert "\n" not in str(info.value)  # one line for the CLI


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "yard.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="is not a modelyard database"):
        yard.search_runs(uri=str(tmp_path / "store"))


def test_all_errors_share_one_hierarchy() -> None:
    import modelyard.errors as e

    for name in e.__all__:
        obj = getattr(e, name)
        if isinstance(obj, type) and name != "UsageError":
            assert issubclass(obj, ModelyardError), name


def test_rejected_start_run_creates_nothing(workspace) -> None:
    with pytest.raises(InvalidKeyError):
        yard.start_run(experiment="brand-new", params={"": 1}, capture_env=False)
    with pytest.raises(InvalidArgumentError):
        yard.start_run(experiment="brand-new", tags={"t": "x" * 7000}, capture_env=False)
    with pytest.raises(InvalidKeyError):
        yard.start_run(experiment="brand-new", name="a\nb", capture_env=False)
    assert TrackingService(workspace).list_experiments() == []
    assert yard.active_run() is None


def test_rejected_resume_leaves_the_run_ended(workspace) -> None:
    with yard.start_run(experiment="e", params={"lr": 0.1}, capture_env=False) as run:
        pass
    before = yard.get_run(run.id)
    with pytest.raises(ConflictError, match=r"Param 'lr' .* is already '0.1'; it cannot change to '0.2'"):
        yard.start_run(run_id=run.id, params={"lr": 0.2})
    with pytest.raises(InvalidKeyError):
        yard.start_run(run_id=run.id, tags={"..": 1})
    after = yard.get_run(run.id)
    assert after == before and after.status is RunStatus.FINISHED
    assert yard.active_run() is None


def test_empty_experiment_name_is_an_error_not_the_default(
    workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(InvalidKeyError, match="The experiment name is empty"):
        yard.start_run(experiment="", capture_env=False)
    monkeypatch.setenv("YARD_EXPERIMENT", "from-env")
    with yard.start_run(capture_env=False) as run:
        pass
    assert yard.get_run(run.id).experiment == "from-env"
    monkeypatch.delenv("YARD_EXPERIMENT")
    with yard.start_run(capture_env=False) as run:
        pass
    assert yard.get_run(run.id).experiment == "default"


def test_a_full_disk_at_store_open_says_so(tmp_path: Path, full_disk) -> None:  # type: ignore[no-untyped-def]
    full_disk(tmp_path / "store" / "yard.db", 2)  # the migrations need far more
    with pytest.raises(
        StoreError,
        match=r"^Cannot open the metadata store '.*/store': the disk is full \(database or disk is "
        r"full\)\. Free some space and try again\.$",
    ) as info:
        yard.search_runs(uri=str(tmp_path / "store"))
    assert "database server" not in str(info.value)


def test_a_sqlite_store_that_cannot_open_does_not_mention_a_server(tmp_path: Path) -> None:
    (tmp_path / "store" / "yard.db").mkdir(parents=True)  # a folder where the database file goes
    with pytest.raises(
        StoreError,
        match=r"^Cannot open the metadata store '.*/store': unable to open database file\. Check that "
        r"the folder exists, is writable, and the disk has space\.$",
    ):
        yard.search_runs(uri=str(tmp_path / "store"))


def test_a_full_disk_while_writing_says_so(tmp_path: Path, full_disk) -> None:  # type: ignore[no-untyped-def]
    ws = yard.get_workspace(str(tmp_path / "store")).open()
    with yard.start_run(experiment="e", uri=ws, capture_env=False) as run:
        pass
    ws.store.dispose()
    with ws.store.read() as conn:  # open and migrate before the disk fills
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar())
    ws.store.dispose()
    free_disk = full_disk(tmp_path / "store" / "yard.db", pages)
    svc = TrackingService(ws)
    with pytest.raises(
        StoreError,
        match=r"^The metadata store could not write: the disk is full \(database or disk is full\)\. "
        r"Free some space and try again; nothing was recorded\.$",
    ):
        svc.set_tags(run.id, {f"big{i}": "x" * 5000 for i in range(100)})
    free_disk()
    ws.store.dispose()
    assert "big0" not in TrackingService(ws).get_run(run.id).tags
