"""Model flavors: how each kind of model is saved, loaded and called.

:data:`FLAVORS` is the visible table of flavor name → ``"module:attribute"``; each target is a
small class with ``save``, ``load`` and ``predict``. Detection walks :data:`DETECTION_ORDER`
(most specific first) and asks each flavor whether it ``detects`` the object; ``pyfunc`` is never
detected, only chosen by name, because loading it runs pickled code (``allow_pickle=True``).
"""

from __future__ import annotations

import importlib
from typing import Any

from modelyard.errors import InvalidArgumentError, SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["DETECTION_ORDER", "FLAVORS", "Flavor", "detect_flavor", "get_flavor"]

#: Flavor name → "module:attribute" of its implementation.
FLAVORS: dict[str, str] = {
    "sklearn": "modelyard.registry.flavors.sklearn:SklearnFlavor",
    "xgboost": "modelyard.registry.flavors.xgboost:XGBoostFlavor",
    "lightgbm": "modelyard.registry.flavors.lightgbm:LightGBMFlavor",
    "onnx": "modelyard.registry.flavors.onnx:OnnxFlavor",
    "torch": "modelyard.registry.flavors.torch:TorchFlavor",
    "pyfunc": "modelyard.registry.flavors.pyfunc:PyfuncFlavor",
}

#: Flavors tried, in order, when none is named (xgboost/lightgbm before sklearn: they subclass it).
DETECTION_ORDER = ("xgboost", "lightgbm", "torch", "onnx", "sklearn")

_cache: dict[str, Flavor] = {}


def get_flavor(name: str) -> Flavor:
    """The flavor implementation registered under ``name``."""
    if name not in FLAVORS:
        raise InvalidArgumentError(
            f"The 'flavor' parameter must be one of {sorted(FLAVORS)}. Got {name!r} instead."
        )
    if name not in _cache:
        module, attr = FLAVORS[name].split(":")
        _cache[name] = getattr(importlib.import_module(module), attr)()
    return _cache[name]


def detect_flavor(model: Any) -> Flavor:
    """The first flavor in :data:`DETECTION_ORDER` that recognizes ``model``."""
    for name in DETECTION_ORDER:
        flavor = get_flavor(name)
        if flavor.detects(model):
            return flavor
    raise SerializationError(
        f"modelyard does not know how to save a {type(model).__module__}.{type(model).__qualname__} safely. "
        f"Supported: scikit-learn estimators, XGBoost, LightGBM, ONNX ModelProto, PyTorch modules. "
        "For custom code (an object with a predict method) pass flavor='pyfunc': it is saved with "
        "cloudpickle, and loading it runs code: load_model then needs allow_pickle=True."
    )
