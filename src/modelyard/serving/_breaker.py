"""A circuit breaker per model version: closed → open → half-open → closed, as an enum.

The breaker watches the outcome of the last ``window`` requests. When at least
``min_requests`` were seen and the share of failures reaches ``error_rate`` it opens: requests
go straight to the fallback. After ``open_s`` seconds it half-opens and lets
``half_open_probes`` requests through; if they all succeed it closes, one failure reopens it.
Every transition is checked against :data:`TRANSITIONS`, logged, and reported to ``on_transition``
(the server counts them in Prometheus).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from modelyard.errors import UsageError

__all__ = ["BreakerState", "CircuitBreaker", "check_transition"]

log = logging.getLogger("modelyard.serving")


class BreakerState(enum.StrEnum):
    """Where a circuit breaker is in its lifecycle."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


#: Allowed transitions; anything else is a bug and raises :class:`UsageError`.
TRANSITIONS: dict[BreakerState, frozenset[BreakerState]] = {
    BreakerState.CLOSED: frozenset({BreakerState.OPEN}),
    BreakerState.OPEN: frozenset({BreakerState.HALF_OPEN}),
    BreakerState.HALF_OPEN: frozenset({BreakerState.CLOSED, BreakerState.OPEN}),
}


def check_transition(frm: BreakerState, to: BreakerState, name: str = "") -> None:
    """Raise :class:`UsageError` naming both states when :data:`TRANSITIONS` forbids ``frm`` → ``to``."""
    if to not in TRANSITIONS[frm]:
        raise UsageError(f"The circuit breaker {name!r} cannot go from {frm.value} to {to.value}.")


class CircuitBreaker:
    """Thread-safe breaker; ``allow()`` before a call, ``record(ok)`` after it.

    ``clock`` (seconds, monotonic) times how long the breaker stays open; it is a public attribute,
    so a test or a simulation may hold the time of a running server's breaker still.
    """

    def __init__(
        self,
        *,
        name: str = "",
        error_rate: float = 0.5,
        window: int = 20,
        min_requests: int = 10,
        open_s: float = 5.0,
        half_open_probes: int = 3,
        enabled: bool = True,
        on_transition: Callable[[BreakerState, BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.error_rate = error_rate
        self.window = window
        self.min_requests = min(min_requests, window)
        self.open_s = open_s
        self.half_open_probes = half_open_probes
        self.enabled = enabled
        self.on_transition = on_transition
        self.clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._failures = 0
        self._opened_at = 0.0
        self._probes_started = 0
        self._probes_ok = 0
        self.transitions = 0

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past ``open_s`` reads as open until the next allow())."""
        return self._state

    def _move(self, to: BreakerState) -> None:
        frm = self._state
        check_transition(frm, to, self.name)
        self._state = to
        self.transitions += 1
        if to is BreakerState.OPEN:
            self._opened_at = self.clock()
        if to is BreakerState.HALF_OPEN:
            self._probes_started = 0
            self._probes_ok = 0
        if to is BreakerState.CLOSED:
            self._outcomes.clear()
            self._failures = 0
        log.warning("circuit breaker %s: %s -> %s", self.name, frm.value, to.value)
        if self.on_transition is not None:
            try:
                self.on_transition(frm, to)
            except Exception:  # pragma: no cover - a metrics failure must not break serving
                log.exception("breaker transition hook failed")

    def allow(self) -> bool:
        """True when a request may go to the model; False sends it to the fallback."""
        if not self.enabled or self._state is BreakerState.CLOSED:  # closed: no lock to read it
            return True
        with self._lock:  # another thread may have moved it since
            if self._state is BreakerState.CLOSED:  # type: ignore[comparison-overlap]
                return True
            if self._state is BreakerState.OPEN:
                if self.clock() - self._opened_at < self.open_s:
                    return False
                self._move(BreakerState.HALF_OPEN)
            if self._probes_started < self.half_open_probes:
                self._probes_started += 1
                return True
            return False

    def record(self, ok: bool) -> None:
        """Report the outcome of a request that :meth:`allow` let through."""
        if not self.enabled:
            return
        with self._lock:
            if self._state is BreakerState.HALF_OPEN:
                if not ok:
                    self._move(BreakerState.OPEN)
                    return
                self._probes_ok += 1
                if self._probes_ok >= self.half_open_probes:
                    self._move(BreakerState.CLOSED)
                return
            if self._state is BreakerState.OPEN:
                return  # a late answer from before the breaker opened
            if len(self._outcomes) == self._outcomes.maxlen and not self._outcomes[0]:
                self._failures -= 1
            self._outcomes.append(ok)
            if not ok:
                self._failures += 1
                n = len(self._outcomes)
                if n >= self.min_requests and self._failures / n >= self.error_rate:
                    self._move(BreakerState.OPEN)

    def to_dict(self) -> dict[str, object]:
        n = len(self._outcomes)
        return {
            "state": self._state.value,
            "window_requests": n,
            "window_failures": self._failures,
            "transitions": self.transitions,
        }
