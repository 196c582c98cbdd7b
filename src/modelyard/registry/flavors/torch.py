"""PyTorch flavor: TorchScript (default), or a state dict in safetensors plus the module's class.

A plain ``nn.Module`` is scripted (``torch.jit.script``) or, failing that, traced with the input
example. ``torch_format="state_dict"`` stores the weights as safetensors and, for information, the
class path. Loading never imports or calls a class named by the stored file: the caller passes the
class (``load_model(..., model_class=TinyNet)``) or registers it in code
(:func:`register_torch_class`), and it is built with the stored ``init_kwargs`` (JSON values only).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from modelyard.errors import SerializationError
from modelyard.registry.flavors._base import Flavor

__all__ = ["TorchFlavor", "register_torch_class"]

SCRIPT = "model.torchscript.pt"
WEIGHTS = "model.safetensors"

#: "module:qualname" → class, registered in code by :func:`register_torch_class`.
_CLASSES: dict[str, type] = {}


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_torch_class(cls: type) -> type:
    """Let state-dict models saved from ``cls`` load without passing ``model_class=`` (usable as a decorator).

    Registration is code you run; a stored model only names the class it was saved from, and a
    name that was not registered is refused.
    """
    if not isinstance(cls, type):
        raise SerializationError(f"register_torch_class takes a class; got {type(cls).__name__}.")
    _CLASSES[_class_path(cls)] = cls
    return cls


class TorchFlavor(Flavor):
    name = "torch"
    packages = ("torch", "safetensors", "numpy")

    def detects(self, model: Any) -> bool:
        mod = type(model).__module__
        if not mod.startswith("torch") and "torch" not in {
            c.__module__.split(".")[0] for c in type(model).__mro__
        }:
            return False
        try:
            import torch
        except ImportError:  # pragma: no cover
            return False
        return isinstance(model, torch.nn.Module)

    def save(
        self,
        model: Any,
        *,
        example: Any = None,
        torch_format: str = "torchscript",
        init_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> tuple[dict[str, bytes], dict[str, Any]]:
        import torch

        if torch_format == "state_dict":
            from safetensors.torch import save as st_save

            cls = type(model)
            state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
            return {WEIGHTS: st_save(state)}, {
                "format": "state_dict",
                "class": _class_path(cls),
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
                        f"torch.jit.script failed ({script_exc}); pass input_example= so the model "
                        f"can be traced, "
                        "or torch_format='state_dict'."
                    ) from script_exc
                with torch.no_grad(), _quiet_jit():
                    scripted = _untyped(torch.jit.trace)(model, _tensor(example))
        buf = io.BytesIO()
        with _quiet_jit():
            torch.jit.save(scripted, buf)
        return {SCRIPT: buf.getvalue()}, {"format": "torchscript"}

    def load(
        self, files: dict[str, bytes], options: dict[str, Any], *, model_class: Any = None, **_: Any
    ) -> Any:
        import torch

        if options.get("format") == "state_dict":
            from safetensors.torch import load as st_load

            stored = str(options.get("class", "?"))
            cls = model_class if model_class is not None else _CLASSES.get(stored)
            if cls is None:
                raise SerializationError(
                    f"This PyTorch model is a state dict saved from class {stored}; modelyard "
                    f"never imports or calls "
                    "a class named by a stored file. Pass the class to load_model(..., "
                    "model_class=YourNet), or "
                    "register it in code with modelyard.registry.register_torch_class(YourNet)."
                )
            if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
                raise SerializationError(
                    f"The 'model_class' parameter of load_model must be a torch.nn.Module "
                    f"subclass. Got {cls!r} instead."
                )
            init_kwargs = options.get("init_kwargs", {})
            if not isinstance(init_kwargs, dict) or not all(isinstance(k, str) for k in init_kwargs):
                raise SerializationError(
                    "The stored init_kwargs of this PyTorch model are not a mapping of names to values."
                )
            model = cls(**init_kwargs)
            if WEIGHTS not in files:
                raise SerializationError(
                    f"The model folder has no {WEIGHTS}; it is not a PyTorch state dict."
                )
            model.load_state_dict(st_load(files[WEIGHTS]))
        else:
            if SCRIPT not in files:
                raise SerializationError(f"The model folder has no {SCRIPT}; it is not a TorchScript model.")
            try:  # a TorchScript archive: torch's own restricted unpickler and interpreter, no Python code
                with _quiet_jit():
                    model = _untyped(torch.jit.load)(io.BytesIO(files[SCRIPT]), map_location="cpu")
            except Exception as exc:
                raise SerializationError(
                    f"torch.jit.load cannot load {SCRIPT}: {str(exc).splitlines()[0]}"
                ) from exc
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


def _untyped(fn: Any) -> Callable[..., Any]:
    """``fn`` as a callable of unknown signature: ``torch.jit.trace``/``load`` carry no annotations
    (a call to them would be an untyped call under ``--strict``), whatever torch version is installed."""
    return fn  # type: ignore[no-any-return]


def _tensor(data: Any) -> Any:
    import torch

    if isinstance(data, torch.Tensor):
        return data
    arr = data.to_numpy() if hasattr(data, "to_numpy") else np.asarray(data)
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
