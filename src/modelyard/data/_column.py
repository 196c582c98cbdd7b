"""One column's profile: its mergeable statistics and how an Arrow array feeds them.

:class:`ColumnProfile` keeps the state of every statistic of one column (moments, histogram,
DDSketch buckets, value counts or a HyperLogLog; the table in :mod:`._profile` says how exact
each is) and merges with another; :func:`add_array` feeds it one Arrow array. The two stay in
one module because feeding writes the column's sketch state directly. The table level (the
:class:`~._profile.Profile` of many columns, batches on a thread pool) is :mod:`._profile`;
the sketches themselves (update, merge, stored form) are :mod:`._sketches`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelyard._json import json_float
from modelyard.data import _sketches as sk

__all__ = ["MAX_TRACKED", "QUANTILES", "ColumnProfile", "add_array"]


#: Value counts are exact up to this many distinct values per column.
MAX_TRACKED = 1000
#: Quantiles every numeric column reports.
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


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
    hll: np.ndarray = field(default_factory=sk.hll_new)
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
        return max(len(self.values), round(sk.hll_estimate(self.hll)))

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
        value = sk.dd_quantile(self.dd_pos, self.dd_neg, self.dd_zero, q)
        if value is None:
            return None
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
        self._merge_hist(*sk.hist_of(x, bmin, bmax, scratch=d))
        if sketch:
            self.dd_zero += sk.dd_add(
                self.dd_pos, self.dd_neg, x, max(abs(bmin), abs(bmax)), has_negative=bmin < 0
            )

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
        self.hist_k, self.hist_start, self.hist_counts = sk.hist_merge(
            (self.hist_k, self.hist_start, self.hist_counts), (k, start, counts)
        )

    def _value_hashes(self, keys: Iterable[str]) -> np.ndarray:
        keys = list(keys)
        if self.kind in ("numeric", "datetime"):
            x = np.array([float(k) for k in keys], dtype=np.float64) + 0.0
            return sk.mix64_inplace(x.view(np.uint64))
        return sk.hash_strings(keys)

    def _go_inexact(self) -> None:
        """Leave exact value tracking: fold every value seen so far into the HyperLogLog."""
        if self.values_exact:
            sk.hll_update(self.hll, self._value_hashes(self.values))
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
        sk.dd_merge(self.dd_pos, o.dd_pos)
        sk.dd_merge(self.dd_neg, o.dd_neg)
        self.dd_zero += o.dd_zero
        self.count += o.count
        if not o.values_exact:
            self._go_inexact()
            np.maximum(self.hll, o.hll, out=self.hll)
        elif not self.values_exact:
            sk.hll_update(self.hll, o._value_hashes(o.values))
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
                "dd_pos": sk.dd_dumps(self.dd_pos),
                "dd_neg": sk.dd_dumps(self.dd_neg),
                "dd_zero": self.dd_zero,
                "values": self.values,
                "hll": sk.hll_dumps(self.hll),
            },
        }
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ColumnProfile:
        s = d.get("_state") or {}
        return cls(
            name=d["name"],
            type=d["type"],
            kind=d["kind"],
            count=int(d["count"]),
            nulls=int(d["nulls"]),
            min=_num_from_json(d.get("min")),
            max=_num_from_json(d.get("max")),
            mean=d.get("mean"),
            m2=float(s.get("m2", 0.0)),
            n_num=int(s.get("n_num", 0)),
            hist_k=s.get("hist_k"),
            hist_start=int(s.get("hist_start", 0)),
            hist_counts=list(d.get("histogram", {}).get("counts", [])),
            dd_pos=sk.dd_loads(s.get("dd_pos")),
            dd_neg=sk.dd_loads(s.get("dd_neg")),
            dd_zero=int(s.get("dd_zero", 0)),
            values=dict(s.get("values") or {}),
            values_exact=bool(d.get("top_exact", True)),
            hll=sk.hll_loads(s.get("hll")),
            nan=int(d.get("nan", 0)),
        )


def _json_num(v: Any) -> Any:
    return json_float(v) if isinstance(v, float) else v


def _num_from_json(v: Any) -> Any:
    return (
        {"Infinity": math.inf, "-Infinity": -math.inf, "NaN": math.nan}.get(v, v) if isinstance(v, str) else v
    )


def _wider_type(a: str, b: str) -> str:
    order = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float", "double"]
    if a in order and b in order:
        return order[max(order.index(a), order.index(b))]
    return a


def add_array(col: ColumnProfile, arr: Any, pa: Any, sketches: bool = True) -> None:
    """Add one Arrow array's values to ``col`` (``pa``: the pyarrow module, imported by the caller;
    ``sketches=False`` skips the quantile sketch and distinct counting)."""
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
                sk.hll_update(col.hll, _hash_arrow_strings(values, pa))
                if len(counts) > MAX_TRACKED:
                    values, counts = _most_frequent(values, counts, pa)
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
    sk.hll_floats(col.hll, x)


def _most_frequent(values: Any, counts: np.ndarray, pa: Any) -> tuple[Any, np.ndarray]:
    """The :data:`MAX_TRACKED` most frequent values, ties broken by the smaller value (the order of
    :meth:`ColumnProfile._add_values`). Which values are kept must not depend on the order Arrow's
    ``value_counts`` lists them in nor on numpy's selection algorithm (``argpartition`` picks an
    arbitrary subset of equal counts, different across versions and CPUs), so the same data gives the
    same profile on any install. Values are distinct, so the sort keys are too and ``select_k`` is exact."""
    import pyarrow.compute as pc

    keys = values.cast(pa.string())
    t = pa.table({"c": pa.array(counts, pa.int64()), "v": keys})
    top = pc.select_k_unstable(t, k=MAX_TRACKED, sort_keys=[("c", "descending"), ("v", "ascending")])
    return keys.take(top), counts[top.to_numpy()]


def _hash_arrow_strings(values: Any, pa: Any) -> np.ndarray:
    return sk.hash_strings(values.cast(pa.string()).to_pylist())
