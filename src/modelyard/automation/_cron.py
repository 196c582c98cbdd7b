"""Cron schedules in a time zone, DST included.

A schedule is a 5-field cron expression read on the *wall clock* of its time zone (IANA name,
default UTC). croniter enumerates wall-clock times; :mod:`zoneinfo` turns each into an instant:

* a wall time that does not exist (the hour skipped when clocks spring forward) fires at the
  first instant after the gap (``30 2 * * *`` in Europe/Paris on 2026-03-29 fires at 03:00 CEST);
  several ticks in one gap fire once;
* a wall time that occurs twice (the hour repeated when clocks fall back) fires once, at its first
  occurrence (``fold=0``).

Times are integer milliseconds since the epoch (UTC), like everywhere in the store.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from modelyard.errors import InvalidArgumentError

__all__ = ["CronError", "Schedule", "in_zone", "zoned_text"]

_UTC = dt.UTC
#: most ticks enumerated by one call (a catch-up after a long downtime looks back no further)
MAX_TICKS = 10_000


class CronError(InvalidArgumentError):
    """An invalid cron expression or time zone (the message says which)."""


@functools.cache
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r} (use an IANA name such as Europe/Paris or UTC)") from exc


def _check(expr: str) -> None:
    from croniter import croniter

    fields = expr.split()
    if len(fields) != 5:
        raise CronError(
            f"cron expression {expr!r} has {len(fields)} fields; it needs 5 (minute hour day-of-month "
            "month day-of-week)"
        )
    try:
        croniter(expr, dt.datetime(2000, 1, 1))
    except Exception as exc:  # croniter raises its own CroniterBadCronError / ValueError / KeyError
        raise CronError(f"invalid cron expression {expr!r}: {exc}") from None


@dataclass(frozen=True)
class Schedule:
    """A cron expression on the wall clock of ``timezone``."""

    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        _check(self.cron)
        _zone(self.timezone)

    def describe(self) -> str:
        return f"{self.cron} ({self.timezone})"

    # -- wall clock <-> instants -----------------------------------------------------------------
    def _instant(self, wall: dt.datetime) -> int:
        """The instant (ms) a naive wall time of the zone fires at (see the module docstring)."""
        tz = _zone(self.timezone)
        first = wall.replace(tzinfo=tz, fold=0)
        utc = first.astimezone(_UTC)
        if utc.astimezone(tz).replace(tzinfo=None) != wall:
            # in a gap: fire at the first instant whose wall time is past ``wall`` (the transition).
            # fold=1 maps a gap time with the offset after the change, an instant before the gap;
            # step from there a minute at a time (zone transitions fall on whole minutes, gaps < 1 day)
            probe = wall.replace(tzinfo=tz, fold=1).astimezone(_UTC).replace(second=0, microsecond=0)
            while probe.astimezone(tz).replace(tzinfo=None) < wall:
                probe += dt.timedelta(minutes=1)
            utc = probe
        return int(utc.timestamp() * 1000)

    def _wall(self, ms: int) -> dt.datetime:
        return (
            dt.datetime.fromtimestamp(ms / 1000, _UTC).astimezone(_zone(self.timezone)).replace(tzinfo=None)
        )

    # -- ticks -----------------------------------------------------------------------------------
    def ticks(self, after_ms: int, until_ms: int, *, limit: int = MAX_TICKS) -> list[int]:
        """Instants (ms) the schedule fires at in ``(after_ms, until_ms]``, oldest first, each once;
        at most ``limit`` of them (the latest ones when there are more)."""
        from croniter import croniter

        if until_ms <= after_ms:
            return []
        # start two hours early on the wall clock: a fall-back makes wall time go backwards
        it = croniter(self.cron, self._wall(after_ms) - dt.timedelta(hours=2))
        out: list[int] = []
        last = after_ms
        for _ in range(limit + 200):
            wall = it.get_next(dt.datetime)
            at = self._instant(wall)
            if at > until_ms:
                return out
            if at > last:
                out.append(at)
                last = at
        # more than `limit` ticks: keep the latest ones, found backwards from the end
        back = croniter(self.cron, self._wall(until_ms) + dt.timedelta(minutes=1))
        tail: list[int] = []
        while len(tail) < limit:
            at = self._instant(back.get_prev(dt.datetime))
            if at <= after_ms:
                break
            if at <= until_ms and (not tail or at < tail[-1]):
                tail.append(at)
        return sorted(tail)

    def next_after(self, ms: int) -> int:
        """The first instant the schedule fires at after ``ms``."""
        from croniter import croniter

        it = croniter(self.cron, self._wall(ms) - dt.timedelta(hours=2))
        while True:
            at = self._instant(it.get_next(dt.datetime))
            if at > ms:
                return at


def in_zone(ms: int, timezone: str) -> dt.datetime:
    """The instant ``ms`` on the wall clock of ``timezone`` (aware: its offset is part of it)."""
    return dt.datetime.fromtimestamp(ms / 1000, _UTC).astimezone(_zone(timezone))


def zoned_text(ms: int, timezone: str) -> str:
    """``2026-12-07 03:00 Europe/Paris (UTC+01:00)``: a time as people of that zone read it, named."""
    t = in_zone(ms, timezone)
    offset = t.strftime("%z")
    return f"{t:%Y-%m-%d %H:%M} {timezone} (UTC{offset[:3]}:{offset[3:]})"
