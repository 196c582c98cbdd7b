"""scikit-learn flavor: the skops format, loaded with an explicit list of trusted types.

Never pickle. At load, skops lists every type the file would instantiate; types outside
scikit-learn, NumPy and SciPy (and those the caller passes as ``trusted_types``) are refused
before anything is built.
"""

from __future__ import annotations

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

        data = files.get(FILE)
        if data is None:
            raise SerializationError(f"The model folder has no {FILE}; it was not saved by the sklearn flavor.")
        try:
            found = sio.get_untrusted_types(data=data)
        except Exception as exc:
            raise SerializationError(
                f"{FILE} is not a valid skops file ({type(exc).__name__}: {exc}). modelyard never unpickles "
                "scikit-learn models; re-log the model with run.log_model()."
            ) from exc
        bad = _untrusted(found, trusted_types or [])
        if bad:
            raise SerializationError(
                f"Refusing to load {FILE}: it would instantiate untrusted types {bad}. If you trust the "
                f"model's author, pass trusted_types={bad!r} to load_model()."
            )
        try:
            return sio.loads(data, trusted=found)
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
