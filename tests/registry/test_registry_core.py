"""Registry core: log/load round trip, references, aliases, rollback, archive, audit log, errors."""

from __future__ import annotations

import numpy as np
import pytest

import modelyard as yard
from modelyard.errors import ConflictError, InvalidArgumentError, NotFoundError, SerializationError


def _log(workspace, model, X, name="churn-clf", **kw):  # type: ignore[no-untyped-def]
    with yard.start_run(experiment="reg", uri=workspace) as run:
        run.log_metric("auc", 0.8)
        return run, run.log_model(model, name=name, input_example=X[:5], **kw)


def test_log_and_load_round_trip(workspace, churn_frame, sk_model) -> None:
    X, _ = churn_frame
    run, mv = _log(workspace, sk_model, X)
    assert (mv.name, mv.version, mv.flavor, mv.status) == ("churn-clf", 1, "sklearn", "ready")
    assert mv.run_id == run.id and mv.metrics == {"auc": 0.8}
    assert mv.requirements["scikit-learn"]
    assert [c.name for c in mv.signature.inputs] == ["tenure", "monthly", "calls"]
    assert [c.dtype for c in mv.signature.inputs] == ["int64", "float64", "int64"]
    for ref in ("churn-clf/1", "churn-clf@latest", "churn-clf", f"runs:/{run.id}/model"):
        m = yard.load_model(ref, uri=workspace)
        np.testing.assert_array_equal(m.predict(X), sk_model.predict(X))
        np.testing.assert_array_equal(m.predict_proba(X), sk_model.predict_proba(X))
    m = yard.load_model("churn-clf/1", uri=workspace)
    assert (m.name, m.version, m.flavor, m.run_id) == ("churn-clf", 1, "sklearn", run.id)
    # every input form gives the same predictions
    expected = sk_model.predict(X[:4])
    np.testing.assert_array_equal(m.predict(X[:4].to_dict("records")), expected)
    np.testing.assert_array_equal(m.predict(X[:4].to_dict("list")), expected)
    np.testing.assert_array_equal(m.predict(X[:4].to_numpy()), expected)
    # run artifact is recorded
    assert any(a.path == "model" and a.kind == "dir" for a in yard.get_run(run.id, uri=workspace).artifacts)


def test_versions_aliases_rollback_archive_and_audit(workspace, churn_frame, sk_model) -> None:
    X, _ = churn_frame
    for _ in range(3):
        _log(workspace, sk_model, X)
    reg = yard.registry
    assert [v.version for v in reg.list_versions("churn-clf", uri=workspace)] == [3, 2, 1]
    reg.set_alias("churn-clf", "production", version=1, reason="first", uri=workspace)
    reg.set_alias("churn-clf", "production", version=2, reason="beats v1", uri=workspace)
    assert yard.get_model_version("churn-clf@production", uri=workspace).version == 2
    assert yard.get_model_version("churn-clf", "production", uri=workspace).aliases == ["production"]
    assert yard.load_model("churn-clf@production", uri=workspace).version == 2
    back = reg.rollback("churn-clf", "production", reason="v2 regressed", uri=workspace)
    assert back.version == 1
    assert reg.get_model("churn-clf", uri=workspace).aliases == {"production": 1}

    with pytest.raises(ConflictError, match=r"target of alias\(es\) \['production'\]"):
        reg.archive("churn-clf", 1, uri=workspace)
    reg.archive("churn-clf", 3, reason="bad data", uri=workspace)
    assert yard.get_model_version("churn-clf", 3, uri=workspace).status == "archived"
    assert yard.get_model_version("churn-clf@latest", uri=workspace).version == 2
    with pytest.raises(
        ConflictError,
        match="Version 3 of 'churn-clf' is archived; an alias can only point at a ready version",
    ):
        reg.set_alias("churn-clf", "staging", version=3, uri=workspace)
    reg.restore("churn-clf", 3, uri=workspace)
    reg.set_alias("churn-clf", "staging", version=3, uri=workspace)

    log = reg.audit_log("churn-clf", uri=workspace)
    actions = [(e.action, e.version) for e in log]
    assert actions == [
        ("model.create", None),
        ("version.register", 1),
        ("version.register", 2),
        ("version.register", 3),
        ("alias.set", 1),
        ("alias.set", 2),
        ("alias.rollback", 1),
        ("version.archive", 3),
        ("version.restore", 3),
        ("alias.set", 3),
    ]
    assert log[5].detail == {"alias": "production", "from": 1, "to": 2} and log[5].reason == "beats v1"
    assert log[6].detail == {"alias": "production", "from": 2, "to": 1} and log[6].reason == "v2 regressed"
    assert all(e.actor and e.at > 0 for e in log)


def test_audit_log_is_append_only_in_the_database(workspace, churn_frame, sk_model) -> None:
    import sqlalchemy as sa

    X, _ = churn_frame
    _log(workspace, sk_model, X)
    for stmt in ("UPDATE model_audit SET reason = 'x'", "DELETE FROM model_audit"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with workspace.store.engine.begin() as conn:
                conn.exec_driver_sql(stmt)
    assert len(yard.registry.audit_log("churn-clf", uri=workspace)) == 2


def test_unknown_names_suggest_close_matches(workspace, churn_frame, sk_model) -> None:
    X, _ = churn_frame
    _log(workspace, sk_model, X)
    yard.registry.set_alias("churn-clf", "production", version=1, uri=workspace)
    with pytest.raises(
        NotFoundError, match=r"Model 'churn-cfl' is not registered\. Did you mean 'churn-clf'\?"
    ):
        yard.load_model("churn-cfl@production", uri=workspace)
    with pytest.raises(NotFoundError, match=r"Model 'churn-clf' has no version 7; it has versions \[1\]"):
        yard.load_model("churn-clf/7", uri=workspace)
    with pytest.raises(NotFoundError, match=r"has no alias 'prodution'\. Did you mean 'production'\?"):
        yard.get_model_version("churn-clf@prodution", uri=workspace)
    with pytest.raises(NotFoundError, match=r"has no alias 'staging'.*nothing to roll back"):
        yard.registry.rollback("churn-clf", "staging", uri=workspace)
    with pytest.raises(ConflictError, match="has pointed only at version 1; there is no earlier version"):
        yard.registry.rollback("churn-clf", "production", uri=workspace)
    with pytest.raises(InvalidArgumentError, match="The alias 'latest' is reserved"):
        yard.registry.set_alias("churn-clf", "latest", version=1, uri=workspace)
    with pytest.raises(InvalidArgumentError, match="The model name 'bad name' is not valid"):
        yard.load_model("bad name@production", uri=workspace)
    with pytest.raises(InvalidArgumentError, match="The version in 'churn-clf/x' must be a whole number"):
        yard.load_model("churn-clf/x", uri=workspace)


def test_unsupported_object_names_pyfunc(workspace) -> None:
    class Custom:
        def predict(self, X):  # type: ignore[no-untyped-def]
            return X

    with yard.start_run(experiment="reg", uri=workspace) as run:
        with pytest.raises(
            SerializationError, match=r"does not know how to save a .*Custom safely.*flavor='pyfunc'"
        ):
            run.log_model(Custom(), name="m")
        with pytest.raises(InvalidArgumentError, match="The 'flavor' parameter must be one of"):
            run.log_model(Custom(), name="m", flavor="tensorflow")


def test_gc_keeps_model_blobs_and_doctor_checks_them(workspace, churn_frame, sk_model) -> None:
    from modelyard._maintenance import doctor, gc

    X, _ = churn_frame
    mv = yard.registry.register_model(sk_model, "kept", input_example=X[:5], uri=workspace)
    report = gc(workspace, grace_seconds=0)
    assert report.blobs_removed == 0
    np.testing.assert_array_equal(yard.load_model("kept/1", uri=workspace).predict(X), sk_model.predict(X))
    entry = workspace.blobs.read_manifest(mv.manifest_digest)[0]
    workspace.blobs.delete(entry.digest)
    assert entry.digest in doctor(workspace).missing
