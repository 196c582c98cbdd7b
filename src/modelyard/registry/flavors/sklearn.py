"""scikit-learn flavor: the skops format, loaded with an explicit list of trusted types.

Never pickle. At load, skops lists every type and function the file would instantiate or
reference. Trusted are what skops trusts by default, the reviewed classes of
:data:`~modelyard.registry.flavors._sklearn_types.TRUSTED_TYPES` (estimators, their fitted state,
arrays and dtypes) and what the caller passes as ``trusted_types``; anything else (any function, any
other class, even one under ``sklearn.`` or ``numpy.``) is refused before anything is built.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor
from modelyard.registry.flavors._sklearn_types import TRUSTED_TYPES

__all__ = ["TRUSTED_TYPES", "SklearnFlavor"]

FILE = "model.skops"


def _skops_io() -> Any:
    """Import ``skops.io`` without importing PyTorch.

    skops lists scikit-learn's estimators with ``sklearn.utils.all_estimators``, whose
    ``pkgutil.walk_packages`` imports every subpackage, including
    ``sklearn.externals.array_api_compat.torch`` — which imports all of torch when it is installed
    (seconds per process). Empty stand-ins for those shim packages are seen while skops imports, and
    removed afterwards so real array-API use still gets the real modules. After one such scan the
    estimator list is cached per library versions (:mod:`._skops_cache`) and later processes skip it.
    """
    import sys
    import types

    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    stubs = {}
    for lib in ("torch", "cupy", "dask", "jax", "paddle"):
        name = f"sklearn.externals.array_api_compat.{lib}"
        if name not in sys.modules:
            stub = types.ModuleType(name)
            stub.__path__ = []  # a package with no submodules: walk_packages stops here
            stubs[name] = stub
    from modelyard.registry.flavors._skops_cache import skops_import

    sys.modules.update(stubs)
    try:
        with skops_import():  # skops' trusted-type lists from the cache when there is one
            import skops.io as sio
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
    return sio


def _untrusted(types: list[str], extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    allowed = set(extra)
    return sorted(t for t in types if t not in TRUSTED_TYPES and t not in allowed)


def _how_to_trust(bad: list[str], call: str) -> str:
    return (
        f"Inspect them (a function can run any code when the model predicts); if you trust the "
        f"model's author, "
        f"pass trusted_types={bad!r} to {call}."
    )


class SklearnFlavor(Flavor):
    name = "sklearn"
    packages = ("scikit-learn", "numpy", "scipy", "skops")

    def detects(self, model: Any) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:  # pragma: no cover
            return False
        return isinstance(model, BaseEstimator)

    def save(
        self, model: Any, *, example: Any = None, trusted_types: list[str] | None = None, **_: Any
    ) -> tuple[dict[str, bytes], dict[str, Any]]:
        sio = _skops_io()

        try:
            data = sio.dumps(model)
        except Exception as exc:
            raise SerializationError(
                f"skops cannot save this {type(model).__name__}: {exc}. Use flavor='pyfunc' for custom code."
            ) from exc
        bad = _untrusted(sio.get_untrusted_types(data=data), trusted_types or [])
        if bad:
            raise SerializationError(
                f"The model contains types and functions that modelyard does not trust by default: {bad}. "
                + _how_to_trust(bad, "log_model (and the same to load_model)")
                + " Or use flavor='pyfunc'."
            )
        return {FILE: data}, {"format": "skops", "trusted_types": list(trusted_types or [])}

    def load(
        self,
        files: dict[str, bytes],
        options: dict[str, Any],
        *,
        trusted_types: list[str] | None = None,
        **_: Any,
    ) -> Any:
        sio = _skops_io()
        from skops.io.exceptions import UntrustedTypesFoundException

        data = files.get(FILE)
        if data is None:
            raise SerializationError(
                f"The model folder has no {FILE}; it was not saved by the sklearn flavor."
            )
        try:
            found = _schema_types(data)
        except Exception as exc:
            raise SerializationError(
                f"{FILE} is not a valid skops file ({type(exc).__name__}: {exc}). modelyard never unpickles "
                "scikit-learn models; re-log the model with run.log_model()."
            ) from exc
        # Grant only the names the file holds that are in the reviewed table (or trusted by the caller);
        # skops itself refuses anything else, so a name this quick scan misses is refused, never trusted.
        extra = set(trusted_types or [])
        grant = sorted(t for t in found if t in TRUSTED_TYPES or t in extra)
        try:
            return sio.loads(data, trusted=grant)
        except UntrustedTypesFoundException:
            pass  # the scan missed a name, or a type is really untrusted: ask skops for the exact list
        except Exception as exc:
            raise SerializationError(f"skops failed to load {FILE}: {exc}") from exc
        found_exact = sio.get_untrusted_types(data=data)
        bad = _untrusted(found_exact, trusted_types or [])
        if bad:
            raise SerializationError(
                f"Refusing to load {FILE}: it would instantiate untrusted types {bad}. "
                + _how_to_trust(bad, "load_model()")
            )
        try:  # every name skops reports is in the table or trusted by the caller
            return sio.loads(data, trusted=found_exact)
        except Exception as exc:
            raise SerializationError(f"skops failed to load {FILE}: {exc}") from exc

    def predict(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        return raw.predict(_input(raw, df))

    def predict_proba(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        return raw.predict_proba(_input(raw, df))


def _input(raw: Any, df: Any) -> Any:
    # A model fitted on a DataFrame knows its column names; one fitted on an array gets an array.
    if hasattr(raw, "feature_names_in_"):
        return df
    return df.to_numpy()


_TYPE_RE = re.compile(rb'"__class__":\s*"([^"\\]+)",\s*"__module__":\s*"([^"\\]+)"')


def _schema_types(data: bytes) -> set[str]:
    """The ``module.Class`` names in a skops file's schema (a fast scan; skops re-checks every type)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        raw = z.read("schema.json")
    return {f"{m.decode()}.{c.decode()}" for c, m in _TYPE_RE.findall(raw)}
