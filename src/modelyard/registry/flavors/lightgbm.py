"""LightGBM flavor: the native text model format of the booster."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["LightGBMFlavor"]

FILE = "model.lgb.txt"


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    packages = ("lightgbm", "numpy")

    def detects(self, model: Any) -> bool:
        return type(model).__module__.startswith("lightgbm.")

    def save(self, model: Any, *, example: Any = None, **_: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        cls = type(model).__name__
        booster = model if cls == "Booster" else getattr(model, "booster_", None)
        if booster is None:
            raise SerializationError(f"This {cls} is not fitted; fit it before logging it.")
        options: dict[str, Any] = {"class": cls}
        if hasattr(model, "classes_"):
            classes = np.asarray(model.classes_)
            options["classes"] = classes.tolist()
            options["classes_dtype"] = str(classes.dtype)
        return {FILE: booster.model_to_string().encode()}, options

    def load(self, files: dict[str, bytes], options: dict[str, Any], **_: Any) -> Any:
        import lightgbm

        try:  # the booster's text format: parsed, never executed
            return lightgbm.Booster(model_str=files[FILE].decode())
        except Exception as exc:
            raise SerializationError(f"LightGBM cannot load {FILE}: {type(exc).__name__}: {exc}") from exc

    def predict(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        out = raw.predict(df)
        if "classes" not in options:
            return out
        classes = np.asarray(options["classes"], dtype=options.get("classes_dtype"))
        return classes[np.argmax(self._proba(out), axis=1)]

    def has_proba(self, raw: Any, options: dict[str, Any]) -> bool:
        return "classes" in options

    def predict_proba(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        if "classes" not in options:
            raise AttributeError("This LightGBM model is not a classifier; it has no predict_proba.")
        return self._proba(raw.predict(df))

    @staticmethod
    def _proba(out: Any) -> Any:
        out = np.asarray(out)
        if out.ndim == 1:  # binary: probability of the positive class
            return np.vstack((1.0 - out, out)).T
        return out
