"""Resolve ``path/to/file.py:name`` (or ``package.module:name``) to a ``@yard.pipeline`` function."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidArgumentError, NotFoundError, did_you_mean
from modelyard.pipelines._spec import get_pipeline_spec

__all__ = ["load_pipeline"]


def _import_file(path: Path) -> Any:
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    existing = sys.modules.get(name)
    if existing is not None:
        if os.path.realpath(getattr(existing, "__file__", "") or "") == str(path):
            return existing
        name = f"yard_user_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"Cannot import {str(path)!r}: it is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_pipeline(ref: str) -> Any:
    """The pipeline function named by ``file.py:name`` or ``module:name``."""
    if not isinstance(ref, str) or ":" not in ref:
        raise InvalidArgumentError(
            f"A pipeline is named as file.py:function or package.module:function. Got {ref!r} instead."
        )
    where, _, name = ref.rpartition(":")
    if where.endswith(".py") or os.sep in where:
        path = Path(where)
        if not path.is_file():
            raise NotFoundError(f"Pipeline file {where!r} does not exist.")
        module = _import_file(path)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise NotFoundError(f"Cannot import module {where!r} for pipeline {ref!r}: {exc}.") from None
    obj = getattr(module, name, None)
    if obj is None:
        pipelines = [k for k, v in vars(module).items() if hasattr(v, "__yard_pipeline__")]
        raise NotFoundError(
            f"{where} has no {name!r}.{did_you_mean(name, pipelines)} "
            f"Pipelines defined there: {', '.join(pipelines) or '(none)'}."
        )
    get_pipeline_spec(obj)
    return obj
