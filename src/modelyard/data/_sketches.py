"""The mergeable sketches behind column profiles: HyperLogLog, DDSketch, aligned histograms.

Each sketch is plain data (a numpy array, dicts of counts, a list) plus functions that update,
merge, query and (de)serialize it, vectorized with numpy over one record-batch column at a time.
:mod:`._profile` keeps one of each per column; nothing here knows about columns or Arrow.

=================  ==========================================================================
sketch             state, merge, accuracy
=================  ==========================================================================
HyperLogLog        :data:`HLL_M` uint8 registers (p = :data:`HLL_P` = 12, ~1.6 % error) over
                   splitmix64-mixed 64-bit hashes; merge is the element-wise max (exact)
DDSketch           ``{key: count}`` for positive and negative magnitudes plus a zero count,
                   key ``ceil(log(|x|) / log(gamma))``; merge adds counts (exact); quantiles
                   within :data:`QUANTILE_ACCURACY` (1 %) relative error
histogram          bins of width ``2**k`` aligned on multiples of the width, at most
                   :data:`MAX_BINS` bins; coarsening two aligned histograms to a common ``k`` is
                   exact, so the merge of two halves equals the histogram of the whole
=================  ==========================================================================

The stored form (inside a profile's ``_state``) is unchanged since profile format 1: HyperLogLog
registers as base64 of the 4,096 bytes, DDSketch buckets as ``{"key": count}`` with string keys.
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

import numpy as np

__all__ = [
    "HLL_M",
    "HLL_P",
    "MAX_BINS",
    "QUANTILE_ACCURACY",
    "coarsen",
    "coarsen_to_fit",
    "dd_add",
    "dd_dumps",
    "dd_loads",
    "dd_merge",
    "dd_quantile",
    "hash_strings",
    "hist_k",
    "hist_merge",
    "hist_of",
    "hll_dumps",
    "hll_estimate",
    "hll_floats",
    "hll_loads",
    "hll_new",
    "hll_update",
    "mix64_inplace",
]

#: Most bins a numeric histogram keeps.
MAX_BINS = 64
#: Relative accuracy of the quantile sketch.
QUANTILE_ACCURACY = 0.01
_GAMMA = (1 + QUANTILE_ACCURACY) / (1 - QUANTILE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
#: HyperLogLog precision (register index bits) and register count.
HLL_P = 12
HLL_M = 1 << HLL_P


# -- hashing ------------------------------------------------------------------------------------
def mix64_inplace(h: np.ndarray) -> np.ndarray:
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


def hash_strings(vals: list[str]) -> np.ndarray:
    """64-bit hashes of strings (pandas' ``hash_array``: stable across processes and versions)."""
    import pandas as pd

    if not vals:
        return np.zeros(0, dtype=np.uint64)
    hashes: np.ndarray = pd.util.hash_array(np.asarray(vals, dtype=object)).astype(np.uint64)
    return hashes


# -- HyperLogLog --------------------------------------------------------------------------------
def hll_new() -> np.ndarray:
    """Empty HyperLogLog registers."""
    return np.zeros(HLL_M, dtype=np.uint8)


def hll_update(reg: np.ndarray, hashes: np.ndarray) -> None:
    """Add 64-bit hashes to HyperLogLog registers (consumes ``hashes``: it is modified in place).

    The low :data:`HLL_P` bits pick the register; the rank is the 1-based position of the first
    1-bit of the high 52 bits (53 when they are all zero), read from the float exponent.
    """
    if hashes.size == 0:
        return
    w = (hashes >> np.uint64(HLL_P)).astype(np.float64)  # < 2**52: exact
    rank = w.view(np.int64)
    rank >>= 52
    np.subtract(1075, rank, out=rank)
    np.minimum(rank, 64 - HLL_P + 1, out=rank)
    hashes &= np.uint64(HLL_M - 1)
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
    seen = np.bincount(idx * 64 + rank, minlength=HLL_M * 64).reshape(HLL_M, 64) > 0
    top = 63 - np.argmax(seen[:, ::-1], axis=1)
    top[~seen.any(axis=1)] = 0
    np.maximum(reg, top.astype(np.uint8), out=reg)


def hll_floats(reg: np.ndarray, x: np.ndarray) -> None:
    """HyperLogLog update from float64 values (hashing their bit patterns; -0.0 counts as 0.0)."""
    h = (x + 0.0).view(np.uint64)  # a fresh array: safe to mix in place
    hll_update(reg, mix64_inplace(h))


def hll_estimate(reg: np.ndarray) -> float:
    """Estimated number of distinct hashes added (linear counting while registers are empty)."""
    m = float(HLL_M)
    alpha = 0.7213 / (1 + 1.079 / m)
    est = alpha * m * m / float(np.sum(np.exp2(-reg.astype(np.float64))))
    zeros = int(np.count_nonzero(reg == 0))
    if est <= 2.5 * m and zeros:
        est = m * math.log(m / zeros)
    return est


def hll_dumps(reg: np.ndarray) -> str:
    """The stored form of the registers: base64 of their bytes."""
    return base64.b64encode(reg.tobytes()).decode()


def hll_loads(text: Any) -> np.ndarray:
    """Registers from :func:`hll_dumps` output (untrusted: length and ranks are checked); empty for
    ``None``/``""``."""
    if not text:
        return hll_new()
    from modelyard.errors import SerializationError

    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    reg = np.frombuffer(raw, dtype=np.uint8).copy()
    if reg.size != HLL_M or (reg.size and int(reg.max()) > 64 - HLL_P + 1):
        raise SerializationError(
            f"This profile's HyperLogLog state is damaged (expected base64 of {HLL_M} registers of at most "
            f"{64 - HLL_P + 1}); profile the data again."
        )
    return reg


# -- DDSketch -----------------------------------------------------------------------------------
def dd_value(key: int) -> float:
    """The representative value of a DDSketch bucket (within the relative accuracy of all its values)."""
    return 2 * _GAMMA**key / (_GAMMA + 1)


def dd_add(
    pos: dict[int, int], neg: dict[int, int], x: np.ndarray, max_abs: float, has_negative: bool = True
) -> int:
    """Add finite float64 values to the buckets; returns how many were zero (kept apart by the caller).

    One log pass, one bincount over (sign, key).
    """
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
    if not a.size:
        return n_zero
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
    for store, part in ((pos, counts[:span]), (neg, counts[span:])):
        nz = np.flatnonzero(part)
        for kk, c in zip((nz + lo).tolist(), part[nz].tolist(), strict=True):
            store[kk] = store.get(kk, 0) + c
    return n_zero


def dd_quantile(pos: dict[int, int], neg: dict[int, int], zero: int, q: float) -> float | None:
    """The estimated ``q`` quantile (within 1 % relative error), None when the sketch is empty."""
    total = zero + sum(pos.values()) + sum(neg.values())
    if total == 0:
        return None
    rank = q * (total - 1)
    seen = 0
    for k in sorted(neg, reverse=True):  # most negative first
        seen += neg[k]
        if seen > rank:
            return -dd_value(k)
    seen += zero
    if seen > rank:
        return 0.0
    for k in sorted(pos):
        seen += pos[k]
        if seen > rank:
            return dd_value(k)
    return 0.0


def dd_merge(dst: dict[int, int], src: dict[int, int]) -> None:
    """Add ``src``'s bucket counts into ``dst`` (exact)."""
    for k, c in src.items():
        dst[k] = dst.get(k, 0) + c


def dd_dumps(buckets: dict[int, int]) -> dict[str, int]:
    """The stored form of one side's buckets: string keys in key order."""
    return {str(k): v for k, v in sorted(buckets.items())}


def dd_loads(stored: Any) -> dict[int, int]:
    """Buckets from :func:`dd_dumps` output."""
    return {int(k): int(v) for k, v in (stored or {}).items()}


# -- aligned power-of-two histograms ----------------------------------------------------------
def hist_k(lo: float, hi: float) -> int:
    """The finest bin width exponent ``k`` that covers ``[lo, hi]`` with at most :data:`MAX_BINS` bins."""
    span = hi - lo
    if span <= 0:
        k = math.floor(math.log2(abs(lo))) - 6 if lo != 0 else -20
    else:
        k = math.floor(math.log2(span / MAX_BINS))
    while math.floor(hi / 2.0**k) - math.floor(lo / 2.0**k) + 1 > MAX_BINS:
        k += 1
    return k


def hist_of(
    x: np.ndarray, lo: float, hi: float, scratch: np.ndarray | None = None
) -> tuple[int, int, list[int]]:
    """The aligned histogram of finite values ``x`` with min ``lo`` and max ``hi``: ``(k, start, counts)``.

    ``scratch``, a float64 array of ``x``'s size, is overwritten (saves an allocation).
    """
    k = hist_k(lo, hi)
    inv = 2.0**-k  # x * 2**-k is exact, so bins never disagree between batches
    start = math.floor(lo * inv)
    d = np.multiply(x, inv, out=scratch)
    np.floor(d, out=d)
    idx = d.astype(np.int64)
    idx -= start
    return k, start, np.bincount(idx).tolist()


def coarsen(k: int, start: int, counts: list[int], k_new: int) -> tuple[int, list[int]]:
    """The same histogram on the coarser grid of width ``2**k_new``: ``(start, counts)``."""
    if k_new == k:
        return start, list(counts)
    f = 1 << (k_new - k)
    new_start = start // f
    out: dict[int, int] = {}
    for i, c in enumerate(counts):
        j = (start + i) // f - new_start
        out[j] = out.get(j, 0) + c
    return new_start, [out.get(j, 0) for j in range(max(out) + 1)] if out else []


def coarsen_to_fit(k: int, start: int, counts: list[int]) -> tuple[int, int, list[int]]:
    """Coarsen until at most :data:`MAX_BINS` bins remain: ``(k, start, counts)``."""
    while len(counts) > MAX_BINS:
        start, counts = coarsen(k, start, counts, k + 1)
        k += 1
    return k, start, counts


def hist_merge(
    a: tuple[int | None, int, list[int]], b: tuple[int, int, list[int]]
) -> tuple[int, int, list[int]]:
    """The histogram of both inputs' values, ``(k, start, counts)`` each; ``a`` may be empty (k None)."""
    a_k, a_start, a_counts = a
    k, start, counts = b
    if a_k is None or not a_counts:
        return coarsen_to_fit(k, start, list(counts))
    k0 = max(a_k, k)
    a_start, a_counts = coarsen(a_k, a_start, a_counts, k0)
    b_start, b_counts = coarsen(k, start, counts, k0)
    while True:
        lo = min(a_start, b_start)
        hi = max(a_start + len(a_counts), b_start + len(b_counts))
        if hi - lo <= MAX_BINS:
            break
        a_start, a_counts = coarsen(k0, a_start, a_counts, k0 + 1)
        b_start, b_counts = coarsen(k0, b_start, b_counts, k0 + 1)
        k0 += 1
    merged = [0] * (hi - lo)
    for s, cs in ((a_start, a_counts), (b_start, b_counts)):
        for i, c in enumerate(cs):
            merged[s - lo + i] += c
    return k0, lo, merged
