"""Run names made from run ids (``_default_name``); run ids and the clock are re-exported here
for older imports: they live in :mod:`modelyard._shared`."""

from __future__ import annotations

from modelyard._shared import new_run_id, now_ms

__all__ = ["new_run_id", "now_ms"]

_ADJ = [
    "amber",
    "brisk",
    "calm",
    "dapper",
    "eager",
    "fuzzy",
    "gentle",
    "hazy",
    "keen",
    "lucid",
    "mellow",
    "nimble",
    "proud",
    "quiet",
    "rapid",
    "sunny",
    "tidy",
    "vivid",
    "witty",
    "zesty",
]
_NOUN = [
    "otter",
    "falcon",
    "maple",
    "comet",
    "badger",
    "cedar",
    "heron",
    "lynx",
    "orca",
    "panda",
    "quail",
    "raven",
    "salmon",
    "tiger",
    "walrus",
    "yak",
    "zebra",
    "koala",
    "ibis",
    "gecko",
]


def _default_name(run_id: str) -> str:
    n = int(run_id[-6:], 16)
    return f"{_ADJ[n % len(_ADJ)]}-{_NOUN[(n // 20) % len(_NOUN)]}-{n % 1000:03d}"
