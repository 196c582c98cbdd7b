"""Mergeable column profiles, computed on Arrow record batches with numpy (bounded memory).

A :class:`Profile` holds one :class:`ColumnProfile` per column. Every statistic is kept in a
form that merges: ``Profile.merge(other)`` is the profile of the union of the two inputs, so
partitions can be profiled in parallel and combined.

=================  ==========================================================================
statistic          how it is kept, and how exact the merge is
=================  ==========================================================================
count, nulls       integers; exact
min, max           exact
mean, std          count/mean/M2 (Chan et al. parallel variance); exact up to float rounding
histogram          numbers: bins of width ``2**k`` aligned on multiples of the width, at most
                   :data:`MAX_BINS` bins. Coarsening two aligned histograms to a common ``k``
                   is exact, so the merge of two halves equals the histogram of the whole.
quantiles          a DDSketch (relative accuracy :data:`QUANTILE_ACCURACY` = 1 %); mergeable
                   exactly, quantiles are estimates within 1 % relative error
distinct           exact while a column has at most :data:`MAX_TRACKED` distinct values (the
                   value counts are kept); beyond that a HyperLogLog (p=12, ~1.6 % error)
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

import base64
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard._json import json_float

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

#: Most bins a numeric histogram keeps.
MAX_BINS = 64
#: Value counts are exact up to this many distinct values per column.
MAX_TRACKED = 1000
#: Quantiles every numeric column reports.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Relative accuracy of the quantile sketch.
QUANTILE_ACCURACY = 0.01
_GAMMA = (1 + QUANTILE_ACCURACY) / (1 - QUANTILE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_HLL_P = 12
_HLL_M = 1 << _HLL_P
FORMAT = 1


def column_kind(arrow_type: Any) -> str:
    """``numeric``, ``boolean``, ``datetime``, ``categorical`` (strings, dictionaries) or ``other``."""
    import pyarrow as pa

    t = arrow_type
    if pa.types.is_dictionary(t):
        return "categorical"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "numeric"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "datetime"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "categorical"
    return "other"


_ALLOCATOR_TUNED = False


def _keep_freed_memory() -> None:
    """Let glibc keep freed batch-sized blocks instead of returning them to the kernel (once per process).

    Profiling allocates a few arrays of one batch's size per column and frees them right away.
    With glibc's defaults the freed memory is trimmed or unmapped and the next array faults in
    fresh zeroed pages, which made page faults most of the profiling CPU time (2-3x the numeric
    work itself on a virtual machine). Raising the mmap and trim thresholds keeps those blocks
    for reuse: peak memory does not grow, freed memory is simply kept by the process.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_"):
        return  # the user chose their own settings
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)  # the largest glibc accepts; batch columns are ~2 MiB
    mallopt(m_trim_threshold, 512 << 20)


# -- small mergeable sketches -------------------------------------------------------------------
def _mix64_inplace(h: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer over a uint64 array, in place (vectorized)."""
    t = np.empty_like(h)
    with np.errstate(over="ignore"):
        for shift, mul in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(h, np.uint64(shift), out=t)
            h ^= t
            np.multiply(h, np.uint64(mul), out=h)
        np.right_shift(h, np.uint64(31), out=t)
        h ^= t
    return h


def _mix64(x: np.ndarray) -> np.ndarray:
    return _mix64_inplace(np.array(x, dtype=np.uint64, copy=True))


def _hll_update(reg: np.ndarray, hashes: np.ndarray) -> None:
    """Add 64-bit hashes to HyperLogLog registers (consumes ``hashes``: it is modified in place).

    The low :data:`_HLL_P` bits pick the register; the rank is the 1-based position of the first
    1-bit of the high 52 bits (53 when they are all zero), read from the float exponent.
    """
    if hashes.size == 0:
        return
    w = (hashes >> np.uint64(_HLL_P)).astype(np.float64)  # < 2**52: exact
    rank = w.view(np.int64)
    rank >>= 52
    np.subtract(1075, rank, out=rank)
    np.minimum(rank, 64 - _HLL_P + 1, out=rank)
    hashes &= np.uint64(_HLL_M - 1)
    idx = hashes.view(np.int64)
    # only values ranked above their register's current value can change it: once the registers
    # fill up that is a tiny fraction, so the scatter-max below stays small
    better = rank > np.take(reg, idx)
    n_better = int(np.count_nonzero(better))
    if n_better == 0:
        return
    idx, rank = idx[better], rank[better]
    if n_better < 4096:
        np.maximum.at(reg, idx, rank.astype(np.uint8))
        return
    # many updates (empty registers): mark (register, rank) pairs, take the highest per register
    seen = np.bincount(idx * 64 + rank, minlength=_HLL_M * 64).reshape(_HLL_M, 64) > 0
    top = 63 - np.argmax(seen[:, ::-1], axis=1)
    top[~seen.any(axis=1)] = 0
    np.maximum(reg, top.astype(np.uint8), out=reg)


def _hll_floats(reg: np.ndarray, x: np.ndarray) -> None:
    """HyperLogLog update from float64 values (hashing their bit patterns; -0.0 counts as 0.0)."""
    h = (x + 0.0).view(np.uint64)  # a fresh array: safe to mix in place
    _hll_update(reg, _mix64_inplace(h))


def _hll_estimate(reg: np.ndarray) -> float:
    m = float(_HLL_M)
    alpha = 0.7213 / (1 + 1.079 / m)
    est = alpha * m * m / float(np.sum(np.exp2(-reg.astype(np.float64))))
    zeros = int(np.count_nonzero(reg == 0))
    if est <= 2.5 * m and zeros:
        est = m * math.log(m / zeros)
    return est


def _dd_value(key: int) -> float:
    return 2 * _GAMMA**key / (_GAMMA + 1)


# -- per-column state ---------------------------------------------------------------------------
@dataclass
class ColumnProfile:
    """The profile of one column (see the module docstring for the JSON form)."""

    name: str
    type: str
    kind: str
    count: int = 0
    nulls: int = 0
    min: Any = None
    max: Any = None
    mean: float | None = None
    m2: float = 0.0
    # histogram: bin width 2**hist_k, first bin index hist_start (bin i covers [i*w, (i+1)*w))
    hist_k: int | None = None
    hist_start: int = 0
    hist_counts: list[int] = field(default_factory=list)
    dd_pos: dict[int, int] = field(default_factory=dict)
    dd_neg: dict[int, int] = field(default_factory=dict)
    dd_zero: int = 0
    values: dict[str, int] = field(default_factory=dict)
    values_exact: bool = True
    hll: np.ndarray = field(default_factory=lambda: np.zeros(_HLL_M, dtype=np.uint8))
    nan: int = 0
    #: finite values behind mean/m2/histogram
    n_num: int = 0

    # -- derived -------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return self.count + self.nulls

    @property
    def null_fraction(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def std(self) -> float | None:
        if self.mean is None or self.n_num < 2:
            return None if self.mean is None else 0.0
        return math.sqrt(max(self.m2, 0.0) / (self.n_num - 1))

    @property
    def distinct_exact(self) -> bool:
        return self.values_exact and (bool(self.values) or self.count == 0)

    @property
    def distinct(self) -> int:
        if self.distinct_exact:
            return len(self.values)
        return max(len(self.values), round(_hll_estimate(self.hll)))

    @property
    def histogram(self) -> tuple[list[float], list[int]]:
        """``(edges, counts)``: ``len(edges) == len(counts) + 1``."""
        if self.hist_k is None or not self.hist_counts:
            return [], []
        w = 2.0**self.hist_k
        edges = [(self.hist_start + i) * w for i in range(len(self.hist_counts) + 1)]
        return edges, list(self.hist_counts)

    def quantile(self, q: float) -> float | None:
        """Estimated ``q`` quantile (within 1 % relative error), clamped to [min, max]."""
        total = self.dd_zero + sum(self.dd_pos.values()) + sum(self.dd_neg.values())
        if total == 0:
            return None
        rank = q * (total - 1)
        seen = 0
        value = 0.0
        done = False
        for k in sorted(self.dd_neg, reverse=True):  # most negative first
            seen += self.dd_neg[k]
            if seen > rank:
                value, done = -_dd_value(k), True
                break
        if not done:
            seen += self.dd_zero
            if seen > rank:
                value, done = 0.0, True
        if not done:
            for k in sorted(self.dd_pos):
                seen += self.dd_pos[k]
                if seen > rank:
                    value, done = _dd_value(k), True
                    break
        lo, hi = float(self.min), float(self.max)
        return min(max(value, lo), hi)

    @property
    def count_numeric(self) -> int:
        return self.n_num

    @property
    def quantiles(self) -> dict[str, float | None]:
        if self.kind not in ("numeric", "datetime"):
            return {}
        return {str(q): self.quantile(q) for q in QUANTILES}

    def top(self, n: int = 10) -> list[tuple[str, int]]:
        """The ``n`` most frequent values with their counts (categorical and boolean columns)."""
        return sorted(self.values.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    # -- updating --------------------------------------------------------------------------------
    def _add_numeric(self, x: np.ndarray, *, sketch: bool = True) -> None:
        """Add non-null float64 values: NaN counted apart, +-inf in min/max only."""
        bmin, bmax = float(x.min()), float(x.max())  # NaN propagates: one pass tells all-finite
        if not (math.isfinite(bmin) and math.isfinite(bmax)):
            self.nan += int(np.isnan(x).sum())
            inf = x[np.isinf(x)]
            if inf.size:
                self.min = min(self.min, float(inf.min())) if self.min is not None else float(inf.min())
                self.max = max(self.max, float(inf.max())) if self.max is not None else float(inf.max())
            x = x[np.isfinite(x)]
            if x.size == 0:
                return
            bmin, bmax = float(x.min()), float(x.max())
        n = int(x.size)
        self.min = bmin if self.min is None else min(self.min, bmin)
        self.max = bmax if self.max is None else max(self.max, bmax)
        bmean = float(x.mean())
        d = x - bmean
        # not np.dot: BLAS spawns its own threads, which costs more than the sum on a busy machine
        bm2 = float(np.square(d, out=d).sum())
        self._merge_moments(n, bmean, bm2)
        # histogram on the aligned power-of-two grid (x * 2**-k is exact, so bins never disagree)
        k = _hist_k(bmin, bmax)
        inv = 2.0**-k
        start = math.floor(bmin * inv)
        np.multiply(x, inv, out=d)
        np.floor(d, out=d)
        idx = d.astype(np.int64)
        idx -= start
        self._merge_hist(k, start, np.bincount(idx).tolist())
        if sketch:
            self._add_quantile_sketch(x, n, max(abs(bmin), abs(bmax)), has_negative=bmin < 0)

    def _add_quantile_sketch(self, x: np.ndarray, n: int, max_abs: float, has_negative: bool = True) -> None:
        """DDSketch update: one log pass, one bincount over (sign, key)."""
        # float32 logs are ~10x faster; the key they give is deterministic per value, so merges stay exact
        a = np.abs(x, dtype=np.float32) if max_abs < 1e37 else np.abs(x)
        zero = a == 0  # true zeros, and (float32) magnitudes too small to have a key
        n_zero = int(np.count_nonzero(zero))
        negative = (x < 0) if has_negative else None
        if n_zero:
            keep = ~zero
            a = a[keep]
            if negative is not None:
                negative = negative[keep]
        self.dd_zero += n_zero
        if not a.size:
            return
        keys = np.log(a, out=a)
        keys *= 1.0 / _LOG_GAMMA
        np.ceil(keys, out=keys)
        lo = int(keys.min())
        span = int(keys.max()) - lo + 1
        ik = keys.astype(np.intp)
        if lo:
            ik -= lo
        if negative is not None:
            ik += negative * span  # (a masked np.add is ~5x slower)
        counts = np.bincount(ik, minlength=2 * span if negative is not None else span)
        for store, part in ((self.dd_pos, counts[:span]), (self.dd_neg, counts[span:])):
            nz = np.flatnonzero(part)
            for kk, c in zip((nz + lo).tolist(), part[nz].tolist(), strict=True):
                store[kk] = store.get(kk, 0) + c

    def _merge_moments(self, n: int, mean: float, m2: float) -> None:
        if self.mean is None or self.n_num == 0:
            self.mean, self.m2, self.n_num = mean, m2, n
            return
        n_a = self.n_num
        total = n_a + n
        delta = mean - self.mean
        self.mean = self.mean + delta * n / total
        self.m2 = self.m2 + m2 + delta * delta * n_a * n / total
        self.n_num = total

    def _merge_hist(self, k: int, start: int, counts: list[int]) -> None:
        if self.hist_k is None or not self.hist_counts:
            self.hist_k, self.hist_start, self.hist_counts = k, start, list(counts)
            self._coarsen_to_fit()
            return
        k0 = max(self.hist_k, k)
        a_start, a_counts = _coarsen(self.hist_k, self.hist_start, self.hist_counts, k0)
        b_start, b_counts = _coarsen(k, start, counts, k0)
        while True:
            lo = min(a_start, b_start)
            hi = max(a_start + len(a_counts), b_start + len(b_counts))
            if hi - lo <= MAX_BINS:
                break
            a_start, a_counts = _coarsen(k0, a_start, a_counts, k0 + 1)
            b_start, b_counts = _coarsen(k0, b_start, b_counts, k0 + 1)
            k0 += 1
        merged = [0] * (hi - lo)
        for s, cs in ((a_start, a_counts), (b_start, b_counts)):
            for i, c in enumerate(cs):
                merged[s - lo + i] += c
        self.hist_k, self.hist_start, self.hist_counts = k0, lo, merged

    def _coarsen_to_fit(self) -> None:
        assert self.hist_k is not None
        while len(self.hist_counts) > MAX_BINS:
            self.hist_start, self.hist_counts = _coarsen(self.hist_k, self.hist_start, self.hist_counts, self.hist_k + 1)
            self.hist_k += 1

    def _value_hashes(self, keys: Iterable[str]) -> np.ndarray:
        keys = list(keys)
        if self.kind in ("numeric", "datetime"):
            x = np.array([float(k) for k in keys], dtype=np.float64) + 0.0
            return _mix64_inplace(x.view(np.uint64))
        return _hash_strings(keys)

    def _go_inexact(self) -> None:
        """Leave exact value tracking: fold every value seen so far into the HyperLogLog."""
        if self.values_exact:
            _hll_update(self.hll, self._value_hashes(self.values))
            self.values_exact = False

    def _add_values(self, values: list[str], counts: list[int]) -> None:
        tracked = self.values
        for v, c in zip(values, counts, strict=True):
            tracked[v] = tracked.get(v, 0) + c
        if len(tracked) > MAX_TRACKED:
            self._go_inexact()
            keep = sorted(tracked.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_TRACKED]
            self.values = dict(keep)

    # -- merging -----------------------------------------------------------------------------------
    def merge(self, other: ColumnProfile) -> ColumnProfile:
        """A new profile of the union of both columns' values."""
        out = ColumnProfile.from_dict(self.to_dict())
        out._merge_in(other)
        return out

    def _merge_in(self, o: ColumnProfile) -> None:
        if o.kind != self.kind:
            from modelyard.errors import InvalidArgumentError

            raise InvalidArgumentError(
                f"Cannot merge profiles of column {self.name!r}: one is {self.kind} ({self.type}), "
                f"the other {o.kind} ({o.type})."
            )
        if o.type != self.type:
            self.type = _wider_type(self.type, o.type)
        self.nulls += o.nulls
        self.nan += o.nan
        if o.mean is not None and o.n_num:
            self._merge_moments(o.n_num, o.mean, o.m2)
        if o.min is not None:
            self.min = o.min if self.min is None else min(self.min, o.min)
            self.max = o.max if self.max is None else max(self.max, o.max)
        if o.hist_k is not None and o.hist_counts:
            self._merge_hist(o.hist_k, o.hist_start, o.hist_counts)
        for src, dst in ((o.dd_pos, self.dd_pos), (o.dd_neg, self.dd_neg)):
            for k, c in src.items():
                dst[k] = dst.get(k, 0) + c
        self.dd_zero += o.dd_zero
        self.count += o.count
        if not o.values_exact:
            self._go_inexact()
            np.maximum(self.hll, o.hll, out=self.hll)
        elif not self.values_exact:
            _hll_update(self.hll, o._value_hashes(o.values))
        if o.values:
            self._add_values(list(o.values), list(o.values.values()))

    # -- JSON ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The documented JSON form (display fields plus ``_state`` for merging)."""
        edges, counts = self.histogram
        d: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "count": self.count,
            "nulls": self.nulls,
            "null_fraction": self.null_fraction,
            "distinct": self.distinct,
            "distinct_exact": self.distinct_exact,
            "min": _json_num(self.min),
            "max": _json_num(self.max),
            "mean": self.mean,
            "std": self.std,
            "quantiles": self.quantiles,
            "histogram": {"edges": edges, "counts": counts},
            "top": [[v, c] for v, c in self.top(20)] if self.kind in ("categorical", "boolean") else [],
            "top_exact": self.values_exact,
            "nan": self.nan,
            "_state": {
                "m2": self.m2,
                "n_num": self.n_num,
                "hist_k": self.hist_k,
                "hist_start": self.hist_start,
                "dd_pos": {str(k): v for k, v in sorted(self.dd_pos.items())},
                "dd_neg": {str(k): v for k, v in sorted(self.dd_neg.items())},
                "dd_zero": self.dd_zero,
                "values": self.values,
                "hll": base64.b64encode(self.hll.tobytes()).decode(),
            },
        }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        s = d.get("_state") or {}
        hll = np.frombuffer(base64.b64decode(s["hll"]), dtype=np.uint8).copy() if s.get("hll") else np.zeros(_HLL_M, np.uint8)
        return cls(
            name=d["name"],
            type=d["type"],
            kind=d["kind"],
            count=int(d["count"]),
            nulls=int(d["nulls"]),
            min=d.get("min"),
            max=d.get("max"),
            mean=d.get("mean"),
            m2=float(s.get("m2", 0.0)),
            n_num=int(s.get("n_num", 0)),
            hist_k=s.get("hist_k"),
            hist_start=int(s.get("hist_start", 0)),
            hist_counts=list(d.get("histogram", {}).get("counts", [])),
            dd_pos={int(k): int(v) for k, v in (s.get("dd_pos") or {}).items()},
            dd_neg={int(k): int(v) for k, v in (s.get("dd_neg") or {}).items()},
            dd_zero=int(s.get("dd_zero", 0)),
            values=dict(s.get("values") or {}),
            values_exact=bool(d.get("top_exact", True)),
            hll=hll,
            nan=int(d.get("nan", 0)),
        )


def _json_num(v: Any) -> Any:
    return json_float(v) if isinstance(v, float) else v


def _wider_type(a: str, b: str) -> str:
    order = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float", "double"]
    if a in order and b in order:
        return order[max(order.index(a), order.index(b))]
    return a


def _hist_k(lo: float, hi: float) -> int:
    span = hi - lo
    if span <= 0:
        k = math.floor(math.log2(abs(lo))) - 6 if lo != 0 else -20
    else:
        k = math.floor(math.log2(span / MAX_BINS))
    while math.floor(hi / 2.0**k) - math.floor(lo / 2.0**k) + 1 > MAX_BINS:
        k += 1
    return k


def _coarsen(k: int, start: int, counts: list[int], k_new: int) -> tuple[int, list[int]]:
    if k_new == k:
        return start, list(counts)
    f = 1 << (k_new - k)
    new_start = start // f
    out: dict[int, int] = {}
    for i, c in enumerate(counts):
        j = (start + i) // f - new_start
        out[j] = out.get(j, 0) + c
    return new_start, [out.get(j, 0) for j in range(max(out) + 1)] if out else []


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
        if d.get("type") != "modelyard.profile":
            from modelyard.errors import SerializationError

            raise SerializationError("This JSON is not a modelyard profile (its 'type' is not 'modelyard.profile').")
        return cls(rows=int(d["rows"]), columns={c["name"]: ColumnProfile.from_dict(c) for c in d["columns"]})

    def summary(self) -> list[dict[str, Any]]:
        """One display row per column (type, nulls, distinct, min, max, mean, std, top)."""
        out = []
        for c in self.columns.values():
            out.append(
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
            )
        return out


class ProfileBuilder:
    """Feed Arrow record batches with :meth:`add`; :meth:`result` is the profile."""

    def __init__(self, *, threads: int | None = None, sketches: bool = True) -> None:
        self._profile = Profile()
        #: False skips the quantile sketch and distinct counting (validation only needs the rest)
        self.sketches = sketches
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
            _keep_freed_memory()
        if self._threads > 1 and batch.num_rows >= 50_000 and len(work) > 1:
            # numpy and Arrow release the GIL: columns are profiled side by side
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="yard-profile")
            # largest work first (numeric columns), so the pool drains evenly
            work.sort(key=lambda cw: cw[0].kind not in ("numeric", "datetime"))
            self._pending = [self._pool.submit(_add_array, col, arr, pa, self.sketches) for col, arr in work]
        else:
            for col, arr in work:
                _add_array(col, arr, pa, self.sketches)

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


def _add_array(col: ColumnProfile, arr: Any, pa: Any, sketches: bool = True) -> None:
    import pyarrow.compute as pc

    n = len(arr)
    nulls = arr.null_count
    col.nulls += nulls
    col.count += n - nulls
    if n == nulls:
        return
    kind = col.kind
    if kind in ("numeric", "datetime"):
        valid = arr.drop_null() if nulls else arr
        if pa.types.is_decimal(arr.type):
            valid = valid.cast(pa.float64())
        if kind == "datetime":
            if pa.types.is_date(arr.type):
                valid = valid.cast(pa.timestamp("s"))
            x = valid.cast(pa.timestamp("us")).cast(pa.int64()).to_numpy().astype(np.float64) / 1e6
        else:
            x = valid.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        col._add_numeric(x, sketch=sketches)
        if sketches:
            _track_numeric(col, x, integer=pa.types.is_integer(arr.type))
        else:
            col.values_exact = False
    elif kind in ("categorical", "boolean"):
        if pa.types.is_dictionary(arr.type):
            # count dictionary indices: no string is materialized per row
            idx = (arr.indices.drop_null() if nulls else arr.indices).to_numpy(zero_copy_only=False)
            dcounts = np.bincount(idx, minlength=len(arr.dictionary))
            used = np.flatnonzero(dcounts)
            values = arr.dictionary.take(pa.array(used))
            counts = dcounts[used]
            if len(values) != len(pc.unique(values)):  # a dictionary with repeated values: fold them
                vc = pc.value_counts(arr.dictionary_decode().drop_null())
                values, counts = vc.field(0), vc.field(1).to_numpy()
        else:
            vc = pc.value_counts(arr.drop_null() if nulls else arr)
            values = vc.field(0)
            counts = vc.field(1).to_numpy()
        if kind == "boolean":
            vals = ["true" if v else "false" for v in values.to_pylist()]
        else:
            if col.values_exact and len(counts) > MAX_TRACKED:
                col._go_inexact()  # folds the values tracked so far into the HyperLogLog
            if not col.values_exact:
                _hll_update(col.hll, _hash_arrow_strings(values, pa))
                if len(counts) > MAX_TRACKED:
                    top = np.argpartition(-counts, MAX_TRACKED)[:MAX_TRACKED]
                    values = values.take(pa.array(top))
                    counts = counts[top]
            vals = values.cast(pa.string()).to_pylist()
        col._add_values(vals, counts.tolist())  # switches to estimates once past MAX_TRACKED values
    # 'other' kinds: counts and nulls only


def _track_numeric(col: ColumnProfile, x: np.ndarray, *, integer: bool) -> None:
    """Exact value counts while a numeric column has few distinct values, else a HyperLogLog."""
    if x.size == 0 and col.values_exact:
        return
    if col.values_exact:
        keys: list[str] | None = None
        if integer and x.size:
            lo, hi = x.min(), x.max()
            if hi - lo <= 1 << 16:
                counts = np.bincount((x - lo).astype(np.int64))
                nz = np.flatnonzero(counts)
                if len(nz) + len(col.values) <= MAX_TRACKED:
                    keys = [str(int(v)) for v in (nz + lo).tolist()]
                    cs = counts[nz].tolist()
        elif x.size <= 4 * MAX_TRACKED or len(np.unique(x[:2048])) < MAX_TRACKED // 4:
            u, c = np.unique(x, return_counts=True)
            if u.size + len(col.values) <= MAX_TRACKED:
                keys = [repr(float(v)) for v in u.tolist()]
                cs = c.tolist()
        if keys is not None:
            col._add_values(keys, cs)
            if col.values_exact:
                return
        col._go_inexact()
        col.values = {}
    _hll_floats(col.hll, x)


def _hash_strings(vals: list[str]) -> np.ndarray:
    import pandas as pd

    if not vals:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_array(np.asarray(vals, dtype=object)).astype(np.uint64)


def _hash_arrow_strings(values: Any, pa: Any) -> np.ndarray:
    return _hash_strings(values.cast(pa.string()).to_pylist())


def profile_batches(batches: Iterable[Any]) -> Profile:
    """Profile a stream of Arrow record batches (bounded memory: one batch at a time)."""
    b = ProfileBuilder()
    for batch in batches:
        b.add(batch)
    return b.result()


def iter_batches_of(obj: Any, batch_size: int = 262_144) -> Iterator[Any]:
    """Record batches of a pandas/polars frame or an Arrow table."""
    import pyarrow as pa

    if isinstance(obj, pa.RecordBatch):
        yield obj
        return
    if isinstance(obj, pa.Table):
        yield from obj.to_batches(max_chunksize=batch_size)
        return
    mod = type(obj).__module__
    if mod.startswith("polars"):
        yield from obj.to_arrow().to_batches(max_chunksize=batch_size)
        return
    if mod.startswith("pandas"):
        n = len(obj)
        if n == 0:
            yield pa.RecordBatch.from_pandas(obj, preserve_index=False)
            return
        for start in range(0, n, batch_size):
            yield pa.RecordBatch.from_pandas(obj.iloc[start : start + batch_size], preserve_index=False)
        return
    from modelyard.errors import invalid_param

    raise invalid_param("data", "profile", "a pandas or polars DataFrame, an Arrow table or a file path", type(obj).__name__)
