"""How pytest-xdist deals the suite's tests out to its workers (``tests/conftest.py`` applies it)."""

from __future__ import annotations

from collections.abc import Iterable


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
