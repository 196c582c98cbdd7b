"""XGBoost flavor: the native JSON model format (``save_model``/``load_model``)."""

from __future__ import annotations

import os
import tempfile
from typing import Any

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["XGBoostFlavor"]

FILE = "model.xgb.json"
_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor", "Booster")


class XGBoostFlavor(Flavor):
    name = "xgboost"
    packages = ("xgboost", "numpy")

    def detects(self, model: Any) -> bool:
        return type(model).__module__.startswith("xgboost.")

    def save(self, model: Any, *, example: Any = None, **_: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        cls = type(model).__name__
        if cls not in _CLASSES:
            raise SerializationError(f"The xgboost flavor saves {list(_CLASSES)}; got {cls}.")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, FILE)
            model.save_model(path)
            with open(path, "rb") as f:
                data = f.read()
        return {FILE: data}, {"class": cls}

    def load(self, files: dict[str, bytes], options: dict[str, Any], **_: Any) -> Any:
        import xgboost

        cls = options.get("class", "Booster")
        if cls not in _CLASSES:
            raise SerializationError(f"Unknown xgboost class {cls!r} in the model options.")
        model = getattr(xgboost, cls)()  # one of the fixed _CLASSES, never an arbitrary stored name
        try:  # the JSON/UBJSON model format: parsed, never executed
            model.load_model(bytearray(files[FILE]))
        except Exception as exc:
            raise SerializationError(f"XGBoost cannot load {FILE}: {str(exc).splitlines()[0][:300]}") from exc
        return model

    def predict(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        if options.get("class") == "Booster":
            import xgboost

            return raw.predict(xgboost.DMatrix(df))
        return raw.predict(df)

    def has_proba(self, raw: Any, options: dict[str, Any]) -> bool:
        return hasattr(raw, "predict_proba")
