"""Python-function flavor: any object with ``predict``, saved with cloudpickle.

Only used when asked for by name (``flavor="pyfunc"``): unpickling runs code, so loading warns.
"""

from __future__ import annotations

import warnings
from typing import Any

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["PyfuncFlavor"]

FILE = "python_model.cloudpickle"


class PyfuncFlavor(Flavor):
    name = "pyfunc"
    packages = ("cloudpickle",)

    def save(self, model: Any, *, example: Any = None, **_: Any):  # type: ignore[no-untyped-def]
        import cloudpickle

        if not callable(getattr(model, "predict", None)):
            raise SerializationError(
                f"A pyfunc model needs a predict(data) method; {type(model).__name__} has none."
            )
        return {FILE: cloudpickle.dumps(model)}, {"class": f"{type(model).__module__}.{type(model).__qualname__}"}

    def load(self, files: dict[str, bytes], options: dict[str, Any], **_: Any) -> Any:
        import cloudpickle

        warnings.warn(
            f"Loading a pyfunc model ({options.get('class')}) unpickles it, which runs code from the store. "
            "Load pyfunc models only from stores you trust.",
            UserWarning,
            stacklevel=4,
        )
        return cloudpickle.loads(files[FILE])
