"""Mergeable column profiles, computed on Arrow record batches with numpy (bounded memory).

A :class:`Profile` holds one :class:`ColumnProfile` per column. Every statistic is kept in a
form that merges: ``Profile.merge(other)`` is the profile of the union of the two inputs, so
partitions can be profiled in parallel and combined. The sketches themselves (update, merge,
stored form) are in :mod:`._sketches`; one column's set and how an Arrow array feeds it are
:mod:`._column` (:class:`ColumnProfile`); this module is the table level: the :class:`Profile` of
many columns and the :class:`ProfileBuilder` that feeds it record batches.

=================  ==========================================================================
statistic          how it is kept, and how exact the merge is
=================  ==========================================================================
count, nulls       integers; exact
min, max           exact
mean, std          count/mean/M2 (Chan et al. parallel variance); exact up to float rounding
histogram          numbers: at most :data:`MAX_BINS` aligned power-of-two bins; merge exact
quantiles          a DDSketch; merge exact, estimates within 1 % relative error
distinct           exact while a column has at most :data:`MAX_TRACKED` distinct values (the
                   value counts are kept); beyond that a HyperLogLog (~1.6 % error)
top values         exact value counts for categorical columns while distinct values are at most
                   :data:`MAX_TRACKED`; beyond that the :data:`MAX_TRACKED` most frequent are kept
                   and ``top_exact`` is false (counts are then lower bounds)
=================  ==========================================================================

The JSON form (``Profile.to_dict()``, stored as a blob per dataset version)::

    {"type": "modelyard.profile", "format": 1, "modelyard_version": "...", "rows": 1000,
     "columns": [{"name": "tenure", "type": "int64", "kind": "numeric", "count": 990,
                  "nulls": 10, "distinct": 72, "distinct_exact": true, "min": 0, "max": 71,
                  "mean": 35.2, "std": 20.1, "quantiles": {"0.01": 0.0, ..., "0.99": 70.0},
                  "histogram": {"edges": [0, 2, 4, ...], "counts": [31, 28, ...]},
                  "top": [["12", 21], ...], "top_exact": true, "_state": {...}}]}

``_state`` holds the mergeable sketches (HyperLogLog registers, DDSketch buckets, full value
counts); readers that only display a profile can ignore it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from modelyard.data import _allocator
from modelyard.data import _sketches as sk
from modelyard.data._column import MAX_TRACKED, QUANTILES, ColumnProfile, add_array
from modelyard.data._io import iter_batches_of  # noqa: F401  (re-exported: callers import it from here)
from modelyard.data._kinds import column_kind
from modelyard.data._sketches import MAX_BINS, QUANTILE_ACCURACY

__all__ = [
    "MAX_BINS",
    "MAX_TRACKED",
    "QUANTILES",
    "QUANTILE_ACCURACY",
    "ColumnProfile",
    "Profile",
    "ProfileBuilder",
    "column_kind",
    "profile_batches",
]

FORMAT = 1
#: re-exported: :mod:`._drift` aligns histograms with it
_coarsen = sk.coarsen


# -- the profile ------------------------------------------------------------------------------------
@dataclass
class Profile:
    """Per-column profiles of a table plus its row count. ``merge`` combines partitions."""

    rows: int = 0
    columns: dict[str, ColumnProfile] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ColumnProfile:
        return self.columns[name]

    def merge(self, other: Profile) -> Profile:
        """The profile of the union of the rows both profiles describe (columns matched by name)."""
        out = Profile.from_dict(self.to_dict())
        out.rows += other.rows
        for name, col in other.columns.items():
            if name in out.columns:
                out.columns[name]._merge_in(col)
            else:
                c = ColumnProfile.from_dict(col.to_dict())
                c.nulls += self.rows  # the column was absent (all null) in self
                out.columns[name] = c
        for name, col in out.columns.items():
            if name not in other.columns:
                col.nulls += other.rows
        return out

    def to_dict(self) -> dict[str, Any]:
        from modelyard._version import __version__

        return {
            "type": "modelyard.profile",
            "format": FORMAT,
            "modelyard_version": __version__,
            "rows": self.rows,
            "columns": [c.to_dict() for c in self.columns.values()],
        }

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), sort_keys=False, allow_nan=False, default=str)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Profile:
        from modelyard.errors import SerializationError

        if not isinstance(d, dict) or d.get("type") != "modelyard.profile":
            raise SerializationError(
                "This JSON is not a modelyard profile (its 'type' is not 'modelyard.profile')."
            )
        try:  # stored bytes are untrusted: a missing or mistyped field is a damaged profile, not a crash
            return cls(
                rows=int(d["rows"]), columns={c["name"]: ColumnProfile.from_dict(c) for c in d["columns"]}
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SerializationError(
                f"This modelyard profile is damaged ({type(exc).__name__}: {exc}); profile the data again."
            ) from exc

    def summary(self) -> list[dict[str, Any]]:
        """One display row per column (type, nulls, distinct, min, max, mean, std, top)."""
        return [
            {
                "column": c.name,
                "type": c.type,
                "kind": c.kind,
                "nulls": c.nulls,
                "distinct": c.distinct,
                "min": c.min,
                "max": c.max,
                "mean": c.mean,
                "std": c.std,
                "top": c.top(3),
            }
            for c in self.columns.values()
        ]


class ProfileBuilder:
    """Feed Arrow record batches with :meth:`add`; :meth:`result` is the profile.

    ``tune_allocator``: raise glibc's process-wide mmap/trim thresholds on the first large batch
    (faster on VMs, see :mod:`._allocator`); None (default) follows ``YARD_TUNE_MALLOC`` and
    the ``yard`` command line's opt-in, so a library user's process is left alone.
    """

    def __init__(
        self, *, threads: int | None = None, sketches: bool = True, tune_allocator: bool | None = None
    ) -> None:
        self._profile = Profile()
        #: False skips the quantile sketch and distinct counting (validation only needs the rest)
        self.sketches = sketches
        self.tune_allocator = tune_allocator
        self._threads = threads if threads is not None else min(4, os.cpu_count() or 1)
        self._pool: Any = None
        self._pending: list[Any] = []

    def add(self, batch: Any) -> None:
        """Add one record batch. Large batches are profiled on a thread pool, one column per task,
        and :meth:`add` returns before they finish: the caller reads (decodes) the next batch
        meanwhile. At most one batch is in flight; :meth:`result` waits for it."""
        import pyarrow as pa

        self._wait()  # the previous batch's columns are done before any column is touched again
        p = self._profile
        work = []
        for i, name in enumerate(batch.schema.names):
            arr = batch.column(i)
            col = p.columns.get(name)
            if col is None:
                t = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type  # the logical type
                col = ColumnProfile(name=name, type=str(t), kind=column_kind(arr.type))
                col.nulls += p.rows  # absent from earlier batches
                p.columns[name] = col
            work.append((col, arr))
        names = set(batch.schema.names)
        for name, col in p.columns.items():
            if name not in names:
                col.nulls += batch.num_rows
        p.rows += batch.num_rows
        if batch.num_rows >= 50_000:
            _allocator.maybe_tune(self.tune_allocator)
        if self._threads > 1 and batch.num_rows >= 50_000 and len(work) > 1:
            # numpy and Arrow release the GIL: columns are profiled side by side
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="yard-profile")
            # largest work first (numeric columns), so the pool drains evenly
            work.sort(key=lambda cw: cw[0].kind not in ("numeric", "datetime"))
            self._pending = [self._pool.submit(add_array, col, arr, pa, self.sketches) for col, arr in work]
        else:
            for col, arr in work:
                add_array(col, arr, pa, self.sketches)

    @property
    def profile(self) -> Profile:
        """The profile of every batch added so far (waits for the one in flight)."""
        self._wait()
        return self._profile

    def _wait(self) -> None:
        pending, self._pending = self._pending, []
        error: BaseException | None = None
        for f in pending:
            try:
                f.result()
            except BaseException as exc:  # wait for every task before reporting the first failure
                error = error or exc
        if error is not None:
            raise error

    def result(self) -> Profile:
        try:
            self._wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None
        return self._profile


def profile_batches(batches: Iterable[Any]) -> Profile:
    """Profile a stream of Arrow record batches (bounded memory: one batch at a time)."""
    b = ProfileBuilder()
    for batch in batches:
        b.add(batch)
    return b.result()
