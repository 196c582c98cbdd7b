"""Python-function flavor: any object with ``predict``, saved with cloudpickle.

Only used when asked for by name (``flavor="pyfunc"``): unpickling runs code, so loading needs the
caller's ``allow_pickle=True`` (checked by ``load_package`` and again here).
"""

from __future__ import annotations

from typing import Any

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["PyfuncFlavor"]

FILE = "python_model.cloudpickle"


class PyfuncFlavor(Flavor):
    name = "pyfunc"
    packages = ("cloudpickle",)
    runs_code = True

    def save(self, model: Any, *, example: Any = None, **_: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        import cloudpickle

        if not callable(getattr(model, "predict", None)):
            raise SerializationError(
                f"A pyfunc model needs a predict(data) method; {type(model).__name__} has none."
            )
        return {FILE: cloudpickle.dumps(model)}, {
            "class": f"{type(model).__module__}.{type(model).__qualname__}"
        }

    def load(
        self, files: dict[str, bytes], options: dict[str, Any], *, allow_pickle: bool = False, **_: Any
    ) -> Any:
        if not allow_pickle:
            raise SerializationError(
                "Refusing to unpickle a pyfunc model: it runs code from the store. Pass "
                "allow_pickle=True only if "
                "you trust whoever can write to this store."
            )
        import cloudpickle

        return cloudpickle.loads(files[FILE])
