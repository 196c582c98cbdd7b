"""PyTorch flavor: TorchScript (default), or a state dict in safetensors plus the module's class.

A plain ``nn.Module`` is scripted (``torch.jit.script``) or, failing that, traced with the input
example. ``torch_format="state_dict"`` stores the weights as safetensors and the class path; loading
then imports that class (it must be importable) and builds it with ``init_kwargs``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["TorchFlavor"]

SCRIPT = "model.torchscript.pt"
WEIGHTS = "model.safetensors"


class TorchFlavor(Flavor):
    name = "torch"
    packages = ("torch", "safetensors", "numpy")

    def detects(self, model: Any) -> bool:
        mod = type(model).__module__
        if not mod.startswith("torch") and "torch" not in {c.__module__.split(".")[0] for c in type(model).__mro__}:
            return False
        try:
            import torch
        except ImportError:  # pragma: no cover
            return False
        return isinstance(model, torch.nn.Module)

    def save(  # type: ignore[no-untyped-def]
        self, model: Any, *, example: Any = None, torch_format: str = "torchscript", init_kwargs: dict[str, Any] | None = None, **_: Any
    ):
        import torch

        if torch_format == "state_dict":
            from safetensors.torch import save as st_save

            cls = type(model)
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            return {WEIGHTS: st_save(state)}, {
                "format": "state_dict",
                "class": f"{cls.__module__}:{cls.__qualname__}",
                "init_kwargs": dict(init_kwargs or {}),
            }
        if torch_format != "torchscript":
            raise SerializationError(
                f"The 'torch_format' parameter of log_model must be one of ['torchscript', 'state_dict']. "
                f"Got {torch_format!r} instead."
            )
        model.eval()
        if isinstance(model, torch.jit.ScriptModule):
            scripted = model
        else:
            try:
                with _quiet_jit():
                    scripted = torch.jit.script(model)
            except Exception as script_exc:
                if example is None:
                    raise SerializationError(
                        f"torch.jit.script failed ({script_exc}); pass input_example= so the model can be traced, "
                        "or torch_format='state_dict'."
                    ) from script_exc
                with torch.no_grad(), _quiet_jit():
                    scripted = torch.jit.trace(model, _tensor(example))
        buf = io.BytesIO()
        with _quiet_jit():
            torch.jit.save(scripted, buf)
        return {SCRIPT: buf.getvalue()}, {"format": "torchscript"}

    def load(self, files: dict[str, bytes], options: dict[str, Any], **_: Any) -> Any:
        import torch

        if options.get("format") == "state_dict":
            from safetensors.torch import load as st_load

            module, _, qual = str(options["class"]).partition(":")
            try:
                obj: Any = importlib.import_module(module)
                for part in qual.split("."):
                    obj = getattr(obj, part)
            except (ImportError, AttributeError) as exc:
                raise SerializationError(
                    f"The model's class {options['class']} cannot be imported here ({exc}); install the code that "
                    "defines it."
                ) from exc
            model = obj(**options.get("init_kwargs", {}))
            model.load_state_dict(st_load(files[WEIGHTS]))
        else:
            with _quiet_jit():
                model = torch.jit.load(io.BytesIO(files[SCRIPT]), map_location="cpu")
        model.eval()
        return model

    def predict(self, raw: Any, df: Any, options: dict[str, Any]) -> Any:
        import torch

        with torch.no_grad():
            out = raw(_tensor(df))
        return out.detach().cpu().numpy()

    def has_proba(self, raw: Any, options: dict[str, Any]) -> bool:
        return False


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    # torch 2.9+ deprecates TorchScript in favour of torch.export, whose files cannot yet be loaded
    # without the model's code; TorchScript stays the code-free format until then.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.")
        yield


def _tensor(data: Any) -> Any:
    import torch

    if isinstance(data, torch.Tensor):
        return data
    arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
