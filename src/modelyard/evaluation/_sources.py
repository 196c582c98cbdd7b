"""Where evaluation inputs come from: registered models and dataset versions or files.

The only places this feature talks to the registry and the data features.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidArgumentError, NotFoundError

__all__ = [
    "DataSource",
    "ModelSource",
    "load_data",
    "load_dataset",
    "load_model_ref",
    "model_outputs",
    "validate_frame",
]

_FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson", ".feather", ".arrow")


@dataclass
class ModelSource:
    """A loaded model and, when it came from the registry, its name and version."""

    model: Any
    name: str | None = None
    version: int | None = None
    ref: str | None = None

    @property
    def label(self) -> str:
        if self.name is not None:
            return f"{self.name}/{self.version}"
        return self.ref or type(self.model).__name__


@dataclass
class DataSource:
    """An evaluation frame and its lineage: a dataset version, or a file, or an in-memory frame."""

    frame: Any
    dataset_name: str | None = None
    dataset_version: str | None = None
    source: str | None = None

    @property
    def label(self) -> str:
        if self.dataset_name is not None:
            return f"{self.dataset_name}@{self.dataset_version}"
        return self.source or "frame"


def load_model_ref(model: Any, uri: Any = None, *, allow_pickle: bool = False) -> ModelSource:
    """A registered model reference (``churn-clf/8``, ``churn-clf@production``) or a model object.

    ``allow_pickle`` is passed to :func:`modelyard.registry.load_model`: a ``pyfunc`` (cloudpickle)
    version loads only with it, because loading it runs code from the store."""
    if isinstance(model, ModelSource):
        return model
    if isinstance(model, str):
        from modelyard.registry import load_model

        m = load_model(model, uri=uri, allow_pickle=allow_pickle)
        return ModelSource(m, getattr(m, "name", None), getattr(m, "version", None), model)
    if not hasattr(model, "predict"):
        raise InvalidArgumentError(
            f"The 'model' parameter of evaluate must be a model reference such as 'churn-clf/8' or "
            f"'churn-clf@production', or an object with predict(). Got {type(model).__name__!r} instead."
        )
    name, version = getattr(model, "name", None), getattr(model, "version", None)
    if not isinstance(name, str) or not isinstance(version, int):
        name, version = None, None
    return ModelSource(model, name, version)


def _read_file(path: Path) -> Any:
    import pandas as pd

    suffix = path.suffix.lower()
    try:
        if suffix in (".csv",):
            return pd.read_csv(path)
        if suffix == ".tsv":
            return pd.read_csv(path, sep="\t")
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix == ".json":
            return pd.read_json(path)
        if suffix in (".feather", ".arrow"):
            return pd.read_feather(path)
    except Exception as exc:
        raise InvalidArgumentError(f"Cannot read the evaluation data {str(path)!r}: {exc}") from exc
    raise InvalidArgumentError(
        f"Cannot read {str(path)!r}: unknown file type {suffix!r}. Use one of {', '.join(_FILE_SUFFIXES)}."
    )


def load_data(data: Any, uri: Any = None) -> DataSource:
    """A DataFrame, a file (csv, parquet, json...), or a dataset reference (``churn-test@v2``)."""
    if isinstance(data, DataSource):
        return data
    if isinstance(data, (str, os.PathLike)):
        text = os.fspath(data)
        path = Path(text).expanduser()
        if path.is_file():
            return DataSource(_read_file(path), source=str(path))
        if path.suffix.lower() in _FILE_SUFFIXES and "@" not in text:
            raise NotFoundError(f"The evaluation data file {text!r} does not exist.")
        return _load_dataset(text, uri)
    if hasattr(data, "to_pandas") and not hasattr(data, "iloc"):
        data = data.to_pandas()
    if hasattr(data, "columns") and hasattr(data, "iloc"):
        return DataSource(data, source="frame")
    raise InvalidArgumentError(
        "The 'data' parameter of evaluate must be a DataFrame, a file path or a dataset reference "
        f"such as 'churn-test@v2'. Got {type(data).__name__!r} instead."
    )


def load_dataset(ref: str, uri: Any, *, refuse: Callable[[], Exception]) -> DataSource:
    """A registered dataset (``NAME@VERSION``) only: never a file, whatever the reference looks like
    (``refuse()`` is raised for a reference that names a path)."""
    looks_like_file = "@" not in ref and Path(ref).suffix.lower() in _FILE_SUFFIXES
    if ref.startswith(("/", "\\", "~", "./", "../")) or looks_like_file:
        raise refuse()
    return _load_dataset(ref, uri)


def _load_dataset(ref: str, uri: Any) -> DataSource:
    from modelyard.data._service import DataService

    svc = DataService(uri)
    version = svc.resolve(ref)  # NotFoundError with did-you-mean for unknown names
    frame = svc.load(version)
    return DataSource(frame, version.name, f"v{version.version}", None)


def model_outputs(model: Any, X: Any, *, want_scores: bool) -> tuple[Any, Any, list[Any] | None]:
    """``(predictions, scores or None, classes or None)`` of ``model`` on ``X``."""
    pred = model.predict(X)
    scores = None
    classes = _classes(model)
    if want_scores and hasattr(model, "predict_proba"):
        try:
            scores = model.predict_proba(X)
        except (AttributeError, NotImplementedError):
            scores = None
    import numpy as np

    if hasattr(pred, "to_numpy"):
        pred = pred.to_numpy()
    pred = np.asarray(pred)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if scores is not None:
        if hasattr(scores, "to_numpy"):
            scores = scores.to_numpy()
        scores = np.asarray(scores, dtype=np.float64)
    return pred, scores, classes


def _classes(model: Any) -> list[Any] | None:
    for obj in (model, *(getattr(model, a, None) for a in ("raw", "model", "_model", "estimator"))):
        cls = getattr(obj, "classes_", None) if obj is not None else None
        if cls is not None:
            return list(cls)
    named: Any = getattr(model, "classes", None)
    return list(named) if isinstance(named, (list, tuple)) or hasattr(named, "tolist") else None


def validate_frame(frame: Any, suite: str | dict[str, Any], uri: Any = None) -> tuple[bool, int, list[str]]:
    """Validate ``frame`` with the data feature's expectation suite: ``(passed, checks run, failures)``."""
    from modelyard.data._validate import validate

    report = validate(frame, suite=suite, uri=uri)
    failures = []
    for r in report.failures:
        text = f"{r.name}: observed {r.observed!r}, expected {r.expected!r}"
        failures.append(f"{text} ({r.detail})" if r.detail else text)
    return bool(report.ok), len(report.results), failures
