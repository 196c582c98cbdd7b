from __future__ import annotations

import pytest

from modelyard.errors import UsageError
from modelyard.serving import BreakerState, CircuitBreaker
from modelyard.serving._breaker import TRANSITIONS, check_transition


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_breaker_opens_half_opens_and_closes() -> None:
    seen: list[tuple[str, str]] = []
    clock = Clock()
    b = CircuitBreaker(
        name="m/1",
        error_rate=0.5,
        window=4,
        min_requests=4,
        open_s=10,
        half_open_probes=2,
        on_transition=lambda a, c: seen.append((a.value, c.value)),
        clock=clock,
    )
    for ok in (True, False, True):
        assert b.allow()
        b.record(ok)
    assert b.state is BreakerState.CLOSED
    b.record(False)  # 2 of 4 failed
    assert b.state is BreakerState.OPEN
    assert not b.allow()
    clock.t = 11
    assert b.allow() and b.allow()  # two probes
    assert not b.allow()  # a third waits
    assert b.state is BreakerState.HALF_OPEN
    b.record(True)
    b.record(False)  # a failed probe reopens
    assert b.state is BreakerState.OPEN
    clock.t = 22
    assert b.allow() and b.allow()
    b.record(True)
    b.record(True)
    assert b.state is BreakerState.CLOSED
    assert seen == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert b.transitions == 5


def test_breaker_window_forgets_old_failures() -> None:
    b = CircuitBreaker(error_rate=0.5, window=4, min_requests=4)
    for ok in (False, True, True, True, True, False, True):
        b.record(ok)
    assert b.state is BreakerState.CLOSED
    assert b.to_dict()["window_failures"] == 1


def test_invalid_transition_names_the_state() -> None:
    with pytest.raises(UsageError, match=r"^The circuit breaker 'm/1' cannot go from closed to half_open\.$"):
        check_transition(BreakerState.CLOSED, BreakerState.HALF_OPEN, "m/1")
    with pytest.raises(UsageError, match=r"cannot go from open to closed"):
        check_transition(BreakerState.OPEN, BreakerState.CLOSED)
    allowed = {(a, b) for a in BreakerState for b in BreakerState if b in TRANSITIONS[a]}
    for a, b in allowed:
        check_transition(a, b)  # every allowed move passes
    assert len(allowed) == 4


def test_disabled_breaker_always_allows() -> None:
    b = CircuitBreaker(enabled=False, window=2, min_requests=1)
    for _ in range(5):
        b.record(False)
    assert b.allow() and b.state is BreakerState.CLOSED
