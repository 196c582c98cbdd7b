"""A cached copy of skops' list of scikit-learn estimators, so ``import skops.io`` skips its scan.

When ``skops.io`` is imported it lists scikit-learn's estimators with
``sklearn.utils.all_estimators()``, which imports every subpackage of scikit-learn (and
``sklearn.utils._testing``, hence pytest): about a second per process, paid by every model-server
worker on every start. The list only depends on the installed library versions, so after one real
scan it is written to a cache file keyed by those versions, and later imports of ``skops.io`` get
it from the file instead of scanning.

The cache can never widen what is trusted: a name read from it is used only when it is also in the
reviewed estimator table (:data:`~modelyard.registry.flavors._sklearn_types.ESTIMATOR_TYPES`), whose
every entry modelyard grants anyway. A file that was edited, is from other versions, or does not
parse only costs a real scan. Where: ``$YARD_CACHE_DIR``, else ``$XDG_CACHE_HOME/modelyard``,
else ``~/.cache/modelyard``; a cache that cannot be written is skipped silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from modelyard.registry.flavors._sklearn_types import ESTIMATOR_TYPES

__all__ = ["CACHE_ENV", "cache_dir", "cache_path", "cached_estimators", "skops_import", "write_cache"]

CACHE_ENV = "YARD_CACHE_DIR"
_NAME = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+")
_FORMAT = 1


def cache_dir() -> Path:
    """Where modelyard keeps caches of derived, re-computable data."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "modelyard"


def _key() -> dict[str, str]:
    """The versions the estimator list depends on (scikit-learn is imported by then: it is the floor)."""
    from importlib.metadata import version

    import numpy
    import scipy
    import sklearn

    return {
        "python": sys.version.split()[0],
        "skops": version("skops"),
        "scikit-learn": str(sklearn.__version__),
        "numpy": str(numpy.__version__),
        "scipy": str(scipy.__version__),
        "format": str(_FORMAT),
    }


def cache_path(key: dict[str, str] | None = None) -> Path:
    """The cache file for the installed versions (``key``: those versions, computed when None)."""
    k = key if key is not None else _key()
    digest = hashlib.sha256(json.dumps(k, sort_keys=True).encode()).hexdigest()[:16]
    return cache_dir() / f"skops-estimators-{digest}.json"


def _read() -> dict[str, Any] | None:
    key = _key()
    try:
        doc = json.loads(cache_path(key).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("key") != key:
        return None
    return doc


def cached_estimators(doc: dict[str, Any] | None = None) -> list[str] | None:
    """The cached estimator names for the installed versions, each also in the reviewed table;
    None when there is no usable cache (then skops must scan)."""
    doc = doc if doc is not None else _read()
    names = doc.get("estimators") if doc is not None else None
    if not isinstance(names, list) or not names:
        return None
    # never wider than the reviewed table, whatever the file says
    kept = [n for n in names if isinstance(n, str) and _NAME.fullmatch(n) and n in ESTIMATOR_TYPES]
    return kept or None


def _public_key(module: Any, oftype: type) -> str:
    return f"{module.__name__}|{oftype.__module__}.{oftype.__qualname__}"


def _checked_public(names: Any, module: Any, oftype: type) -> list[str] | None:
    """Cached names of the public ``oftype`` objects of ``module`` (numpy's and SciPy's ufuncs),
    kept only when each resolves to one of those very objects: a name can only be another path to
    an object skops trusts anyway."""
    if not isinstance(names, list):
        return None
    genuine = {id(o) for a in dir(module) if isinstance(o := getattr(module, a), oftype)}
    root = module.__name__.rpartition(".")[0]
    kept = []
    for n in names:
        if not isinstance(n, str) or not n.startswith(root):
            return None
        mod_name, _, attr = n.rpartition(".")
        mod = sys.modules.get(mod_name)
        if mod is None or id(getattr(mod, attr, None)) not in genuine:
            return None
        kept.append(n)
    return kept


def write_cache(estimators: list[str], public: dict[str, list[str]]) -> None:
    """Store skops' lists after a real scan for the installed versions; atomic, best effort."""
    key = _key()
    path = cache_path(key)
    doc = {"key": key, "estimators": list(dict.fromkeys(estimators)), "public": public}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, path)
    except OSError:
        pass


class _Named:
    """What ``all_estimators`` yields, reduced to what skops reads of it: a module and a name."""

    def __init__(self, full: str) -> None:
        self.__module__, self.__name__ = full.rsplit(".", 1)


@contextmanager
def skops_import() -> Iterator[None]:
    """Import ``skops.io`` inside this block: from the cache when there is a usable one (no scan of
    scikit-learn, no search of every module for each ufunc's name), else for real, then cache it."""
    import sklearn.utils as su

    doc = _read()
    names = cached_estimators(doc)
    public_cached = doc.get("public") if doc is not None else None
    real_all = su.all_estimators
    real_public: Any = None
    recorded: dict[str, list[str]] = {}

    def listed(type_filter: Any = None) -> list[tuple[str, Any]]:
        return [(n.rsplit(".", 1)[1], _Named(n)) for n in names or ()]

    def public(module: Any, oftype: type) -> list[str]:
        key = _public_key(module, oftype)
        if isinstance(public_cached, dict):
            kept = _checked_public(public_cached.get(key), module, oftype)
            if kept is not None:
                return kept
        found: list[str] = real_public(module=module, oftype=oftype)  # the search skops does
        recorded[key] = found
        return found

    class _Hook:
        """Just before ``skops.io._trusted_types`` is imported, its helper module is loaded: swap
        the name lister there (``from ._utils import get_public_type_names`` then binds ours)."""

        def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
            nonlocal real_public
            utils: Any = sys.modules.get("skops.io._utils")
            if fullname == "skops.io._trusted_types" and utils is not None and real_public is None:
                real_public = utils.get_public_type_names
                utils.get_public_type_names = public
            return None  # the regular finders import the module

    hook = _Hook()
    if names is not None:
        su.all_estimators = listed  # skops reads it once, at import
    sys.meta_path.insert(0, hook)
    try:
        yield
    finally:
        su.all_estimators = real_all
        sys.meta_path.remove(hook)
        utils: Any = sys.modules.get("skops.io._utils")
        if utils is not None and real_public is not None:
            utils.get_public_type_names = real_public
    if names is None or recorded:
        tt = sys.modules.get("skops.io._trusted_types")
        if tt is not None:
            if isinstance(public_cached, dict):
                recorded = {**public_cached, **recorded}
            write_cache(list(tt.SKLEARN_ESTIMATOR_TYPE_NAMES), recorded)
