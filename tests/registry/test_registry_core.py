"""Registry core on one store: the audit log is append-only in the database, pyfunc for unknown objects,
gc and doctor keep model blobs. The round trip, aliases, rollback, archive, audit and error tests run on
every backend in tests/contract/test_registry_contract.py."""

from __future__ import annotations

import numpy as np
import pytest

import modelyard as yard
from modelyard.errors import InvalidArgumentError, SerializationError


def _log(workspace, model, X, name="churn-clf", **kw):  # type: ignore[no-untyped-def]
    with yard.start_run(experiment="reg", uri=workspace) as run:
        run.log_metric("auc", 0.8)
        return run, run.log_model(model, name=name, input_example=X[:5], **kw)


def test_audit_log_is_append_only_in_the_database(workspace, churn_frame, sk_model) -> None:
    import sqlalchemy as sa

    X, _ = churn_frame
    _log(workspace, sk_model, X)
    for stmt in ("UPDATE model_audit SET reason = 'x'", "DELETE FROM model_audit"):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            with workspace.store.engine.begin() as conn:
                conn.exec_driver_sql(stmt)
    assert len(yard.registry.audit_log("churn-clf", uri=workspace)) == 2


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
