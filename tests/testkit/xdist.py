"""How pytest-xdist deals the suite's tests out to its workers (``tests/conftest.py`` applies it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def dist_mode(current: str, given: Iterable[str]) -> str:
    """The distribution mode to use, ``current`` being the one xdist chose from ``given`` (the command
    line, ``addopts`` and ``PYTEST_ADDOPTS`` words).

    ``-n N`` alone means xdist's ``load``, which deals tests out round-robin in small batches, so both
    workers build each module-scoped fixture (seeded stores, servers, a browser). ``worksteal`` gives
    each worker one contiguous half of the suite and moves tests from the end of one queue to the other
    only when a worker runs dry: module fixtures are built about once, and the two workers still end
    together. An explicit ``--dist`` (or ``-d``) is kept.
    """
    explicit = any(a == "--dist" or a.startswith(("--dist=", "-d")) for a in given)
    return "worksteal" if current == "load" and not explicit else current


#: Modules that hold a test marked ``slow`` or one that drives a real browser run first (each module's
#: tests stay together and in order), except these, which run right after them: the Airflow test waits
#: for its venv, whose build starts with the session (testkit.airflow), so it goes as late as a slow
#: test can go without ending the run on one worker.
LATE_HEAVY = ("test_airflow_dags.py",)


def _heavy(item: Any) -> bool:
    return item.get_closest_marker("slow") is not None or "browser" in getattr(item, "fixturenames", ())


def heavy_first(items: list[Any]) -> list[Any]:
    """``items`` with the modules of heavy tests first, the ``LATE_HEAVY`` ones after them, then the rest.

    Longest jobs first is what lets two workers end together: ``worksteal`` moves queued tests from one
    worker to the other when one runs dry, but it cannot split a test that is already running, so a
    3-minute test at the end of a queue is 3 minutes with one core idle.
    """
    groups: dict[str, list[Any]] = {}
    for item in items:
        groups.setdefault(str(item.path), []).append(item)

    def rank(path: str) -> int:
        if not any(_heavy(i) for i in groups[path]):
            return 2
        return 1 if path.endswith(LATE_HEAVY) else 0

    order = sorted(groups, key=rank)  # stable: collection order within each rank
    return [item for path in order for item in groups[path]]
