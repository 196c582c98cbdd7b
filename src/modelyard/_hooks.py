"""Extension points: a higher layer adds to a lower one by registering, never by being imported from below.

The layers (DEVELOPING.md, enforced by ``tests/test_layers.py``) let a module import only its own
layer and the ones below it. When a lower layer offers something a higher one implements, the
lower layer names an extension point and calls :func:`load` where it needs the extensions; the
package root (``modelyard/__init__.py``, the top of the import graph) declares with :func:`extend`
what extends each point, as ``"module"`` (importing it does the extending: the registry sets
``Run.log_model``) or ``"module:attr"`` (a function the lower layer calls: the evaluation feature's
check before a registry alias moves). Nothing is imported until a point is first loaded.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["extend", "load"]

_EXTENDERS: dict[str, list[str]] = {}


def extend(point: str, *targets: str) -> None:
    """Declare that each of ``targets`` (``"module"`` or ``"module:attr"``) extends ``point``, in this
    order."""
    names = _EXTENDERS.setdefault(point, [])
    names.extend(t for t in targets if t not in names)


def load(point: str) -> list[Any]:
    """Import what extends ``point``: the modules, or the attributes named ``"module:attr"``."""
    out = []
    for target in list(_EXTENDERS.get(point, ())):
        module, _, attr = target.partition(":")
        loaded = importlib.import_module(module)
        out.append(getattr(loaded, attr) if attr else loaded)
    return out
