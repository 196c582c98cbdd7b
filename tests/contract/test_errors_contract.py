"""An error is the same class, with the same attributes, on SQLite, PostgreSQL and a server: the server
names the class in its answer and the client raises that class again (only one of modelyard.errors'
own; an unknown name falls back to the class of the HTTP status)."""

from __future__ import annotations

import pytest

from modelyard import errors
from modelyard._remote import _error_for
from modelyard.errors import FilterSyntaxError, RevisionConflict, RolloutStateError
from modelyard.rollout import RolloutService, RolloutState
from modelyard.tracking import search_runs, start_run


def test_rollout_errors_keep_their_class_and_attributes(contract_uri: str) -> None:
    svc = RolloutService(contract_uri)
    r = svc.create("m", "canary", 1, 2, {}, {}, {"local": True})
    assert r.state is RolloutState.PENDING
    with pytest.raises(RevisionConflict, match=rf"Rollout {r.id} changed while this action ran") as info:
        svc.record_hold("m", r.id, r.revision + 1, "stale read")
    assert type(info.value) is RevisionConflict and info.value.rollout_id == r.id
    with pytest.raises(RolloutStateError, match=r"Cannot pause rollout \d+ of 'm'") as state:
        svc.record_hold("m", r.id, None, "not started")
    assert type(state.value) is RolloutStateError


def test_filter_syntax_error_keeps_its_position(contract_uri: str) -> None:
    with start_run(experiment="e", uri=contract_uri) as run:
        run.log_metric("acc", 0.5)
    with pytest.raises(FilterSyntaxError) as info:
        search_runs("e", filter="metrics.acc >> 0.9", uri=contract_uri)
    assert type(info.value) is FilterSyntaxError
    assert info.value.text == "metrics.acc >> 0.9" and info.value.position > 0
    assert "^" in str(info.value)


def test_only_modelyard_errors_are_rebuilt_from_a_name() -> None:
    # a name outside modelyard.errors' own classes is never looked up: the HTTP status decides
    for name in ("SystemExit", "Exception", "os.system", "UsageError", "TooManyAttempts", "__class__"):
        exc = _error_for(name, "boom", {"report": 1}, 409)
        assert type(exc) is errors.ConflictError and str(exc) == "boom"
    exc = _error_for("GateFailed", "refused", None, 422)
    assert type(exc) is errors.GateFailed and exc.report is None
    exc = _error_for("RevisionConflict", "Rollout 3 changed", {"rollout_id": 3, "other": "x"}, 409)
    assert type(exc) is RevisionConflict and exc.rollout_id == 3 and not hasattr(exc, "other")
