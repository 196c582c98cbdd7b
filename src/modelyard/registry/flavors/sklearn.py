"""scikit-learn flavor: the skops format, loaded with an explicit list of trusted types.

Never pickle. At load, skops lists every type the file would instantiate; types outside
scikit-learn, NumPy and SciPy (and those the caller passes as ``trusted_types``) are refused
before anything is built.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["TRUSTED_PREFIXES", "SklearnFlavor"]

#: Type-name prefixes trusted without asking: scikit-learn, NumPy and SciPy classes.
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.")
FILE = "model.skops"


def _untrusted(types: list[str], extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    return [t for t in types if not t.startswith(TRUSTED_PREFIXES) and t not in set(extra)]


class SklearnFlavor(Flavor):
    name = "sklearn"
    packages = ("scikit-learn", "numpy", "scipy", "skops")

    def detects(self, model: Any) -> bool:
        try:
            from sklearn.base import BaseEstimator
        except ImportError:  # pragma: no cover
            return False
        return isinstance(model, BaseEstimator)

    def save(self, model: Any, *, example: Any = None, trusted_types: list[str] | None = None, **_: Any):  # type: ignore[no-untyped-def]
        import skops.io as sio

        try:
            data = sio.dumps(model)
        except Exception as exc:
            raise SerializationError(
                f"skops cannot save this {type(model).__name__}: {exc}. Use flavor='pyfunc' for custom code."
            ) from exc
        bad = _untrusted(sio.get_untrusted_types(data=data), trusted_types or [])
        if bad:
            raise SerializationError(
                f"The model contains types outside scikit-learn/NumPy/SciPy that loading would have to trust: "
                f"{bad}. Pass trusted_types={bad!r} to log_model (loaders pass the same to load_model), or "
                "use flavor='pyfunc'."
            )
        return {FILE: data}, {"format": "skops", "trusted_types": list(trusted_types or [])}

    def load(self, files: dict[str, bytes], options: dict[str, Any], *, trusted_types: list[str] | None = None, **_: Any) -> Any:
        import skops.io as sio
        from skops.io.exceptions import UntrustedTypesFoundException

        data = files.get(FILE)
        if data is None:
            raise SerializationError(f"The model folder has no {FILE}; it was not saved by the sklearn flavor.")
        try:
            found = _schema_types(data)
        except Exception as exc:
            raise SerializationError(
                f"{FILE} is not a valid skops file ({type(exc).__name__}: {exc}). modelyard never unpickles "
                "scikit-learn models; re-log the model with run.log_model()."
            ) from exc
        # Grant only the types the file names that pass the allow-list; skops itself refuses anything else,
        # so a type this quick scan misses is refused rather than trusted.
        extra = set(trusted_types or [])
        grant = sorted(t for t in found if t.startswith(TRUSTED_PREFIXES) or t in extra)
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
                f"Refusing to load {FILE}: it would instantiate untrusted types {bad}. If you trust the "
                f"model's author, pass trusted_types={bad!r} to load_model()."
            )
        try:
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
