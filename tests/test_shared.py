"""The helpers below every layer (modelyard._shared) and the extension points (modelyard._hooks)."""

from __future__ import annotations

import math
import sys
import types

import pytest

from modelyard import _hooks
from modelyard._shared import format_when, new_run_id, now_ms, parse_duration_ms, parse_duration_s
from modelyard.errors import InvalidArgumentError


def test_durations_in_seconds_and_milliseconds() -> None:
    assert parse_duration_s("500ms") == 0.5
    assert parse_duration_s(" 2m ") == 120.0
    assert parse_duration_s(90) == 90.0
    assert parse_duration_ms("5m") == 300_000
    assert parse_duration_ms("1.5s") == 1500
    assert parse_duration_ms("7d") == 7 * 86_400_000
    assert parse_duration_ms("1w") == 604_800_000
    assert parse_duration_ms(2) == 2000


@pytest.mark.parametrize("value", ["2", "soon", "0s", "-1m", "5 minutes", True])
def test_a_duration_needs_a_positive_number_and_a_unit(value: object) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        parse_duration_ms(value, what="The window")
    assert str(err.value) == (
        f"The window must be a positive duration with a unit, like 500ms, 30s, 2m or 1h. Got "
        f"{value!r} instead."
    )


@pytest.mark.parametrize("value", [0, -3, math.inf, math.nan])
def test_a_number_of_seconds_must_be_positive_and_finite(value: float) -> None:
    # inf used to reach int(inf * 1000) in monitoring (OverflowError), nan int(nan) (ValueError)
    with pytest.raises(InvalidArgumentError) as err:
        parse_duration_s(value, what="The interval")
    assert str(err.value) == (
        f"The interval must be a positive number of seconds or a duration like 30s or 2m. Got "
        f"{value!r} instead."
    )
    assert isinstance(err.value, ValueError)  # pydantic validators turn it into a field error


def test_format_when_and_ids() -> None:
    assert format_when(None) == "-"
    assert format_when(0) == "-"
    assert format_when(86_400_000) == "1970-01-02 00:00:00"
    assert format_when(86_400_000, "%H:%M") == "00:00"
    before = now_ms()
    ids = [new_run_id() for _ in range(200)]
    assert ids == sorted(ids) and len(set(ids)) == 200
    assert all(len(i) == 32 for i in ids)
    assert int(ids[0][:12], 16) >= before


def test_an_extension_point_imports_what_the_root_declares(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = types.ModuleType("yard_test_extension")
    mod.hook = lambda: "hooked"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "yard_test_extension", mod)
    monkeypatch.setattr(_hooks, "_EXTENDERS", {})
    assert _hooks.load("test.point") == []
    _hooks.extend("test.point", "yard_test_extension:hook", "yard_test_extension")
    _hooks.extend("test.point", "yard_test_extension:hook")  # declared twice, loaded once
    assert [x() if callable(x) else x for x in _hooks.load("test.point")] == ["hooked", mod]


def test_run_methods_come_from_the_registry_and_data() -> None:
    import modelyard  # the root declares the extensions
    from modelyard.tracking._run import Run

    assert "modelyard.registry._run" in _hooks._EXTENDERS["tracking.Run"]
    for module in _hooks.load("tracking.Run"):
        assert module.__name__ in ("modelyard.registry._run", "modelyard.data._run")
    assert Run.log_model.__module__ == "modelyard.registry._run"
    assert Run.use_dataset.__module__ == "modelyard.data._run"
    assert Run.inputs.__module__ == "modelyard.data._run"
    assert modelyard.__name__ == "modelyard"
