"""``evaluate``: score a model on labelled data, overall and per slice, and store the record."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modelyard.errors import InvalidArgumentError, did_you_mean
from modelyard.evaluation._metrics import (
    METRICS,
    TASKS,
    compute_metrics,
    default_metrics,
    metric_spec,
    prepare_targets,
)
from modelyard.evaluation._slices import parse_slices, slice_codes
from modelyard.evaluation._sources import DataSource, ModelSource, load_data, load_model_ref, model_outputs

__all__ = ["Evaluation", "evaluate", "get_evaluation", "infer_task", "list_evaluations", "split_label"]

_LABEL_GUESSES = ("label", "target", "y", "class")


@dataclass
class Evaluation:
    """The outcome of one evaluation: metrics overall and per slice, and what was evaluated on what."""

    task: str
    label: str
    n_rows: int
    metrics: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    classes: list[Any] | None = None
    model_name: str | None = None
    model_version: int | None = None
    dataset_name: str | None = None
    dataset_version: str | None = None
    data_source: str | None = None
    data_digest: str | None = None
    id: str | None = None
    created_at: int | None = None
    duration_ms: int = 0
    user: str | None = None
    modelyard_version: str = ""

    @property
    def model(self) -> str | None:
        return f"{self.model_name}/{self.model_version}" if self.model_name else None

    @property
    def data(self) -> str:
        if self.dataset_name:
            return f"{self.dataset_name}@{self.dataset_version}"
        return self.data_source or "frame"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["model"] = self.model
        d["data"] = self.data
        classes = [c.item() if isinstance(c, np.generic) else c for c in (self.classes or [])]
        d["classes"] = [c if isinstance(c, (int, float, str, bool)) else str(c) for c in classes] or None
        return d


def infer_task(y_true: Any, y_pred: Any, has_scores: bool) -> str:
    """binary, multiclass or regression from the label, the predictions and whether scores exist."""
    yt = np.asarray(y_true)
    kind = yt.dtype.kind
    if kind in "f" and not has_scores:
        return "regression"
    if kind in "iu" and not has_scores:
        pred = np.asarray(y_pred)
        if pred.dtype.kind == "f" and not np.all(np.mod(pred[:10_000], 1) == 0):
            return "regression"
        import pandas as pd

        n_unique = len(pd.unique(yt[:100_000]))
        if n_unique > 50:
            return "regression"
        return "binary" if n_unique <= 2 else "multiclass"
    import pandas as pd

    n_unique = len(pd.unique(pd.Series(yt).dropna()))
    return "binary" if n_unique <= 2 else "multiclass"


def split_label(frame: Any, label: str | None) -> tuple[Any, Any, str]:
    """``(X, y, label)``: the features without the label column, and the label column."""
    cols = [str(c) for c in frame.columns]
    if label is None:
        guesses = [c for c in cols if c.lower() in _LABEL_GUESSES]
        if len(guesses) != 1:
            raise InvalidArgumentError(
                f"Name the label column with label=... (--label). The data has columns: {', '.join(cols)}."
            )
        label = guesses[0]
    if label not in cols:
        raise InvalidArgumentError(
            f"The label column {label!r} is not in the evaluation data.{did_you_mean(label, cols)} "
            f"Columns: {', '.join(cols)}."
        )
    y = frame[label]
    if y.isna().any():
        raise InvalidArgumentError(
            f"The label column {label!r} has {int(y.isna().sum())} missing values; drop those rows "
            f"before evaluating."
        )
    return frame.drop(columns=[label]), y.to_numpy(), label


def _features(model: Any, X: Any) -> Any:
    names = getattr(model, "feature_names_in_", None)
    if names is not None and all(n in X.columns for n in names):
        return X[list(names)]
    return X


def data_digest(frame: Any) -> str:
    """blake3 of the frame's row hashes (order-sensitive) and column names."""
    import blake3
    import pandas as pd

    h = blake3.blake3("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def evaluate(
    model: Any,
    data: Any,
    *,
    label: str | None = None,
    slices: str | Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    task: str | None = None,
    log: bool = True,
    allow_pickle: bool = False,
    uri: Any = None,
) -> Evaluation:
    """Evaluate ``model`` on labelled ``data``, overall and per slice.

    ``model``: a registry reference (``"churn-clf/8"``, ``"churn-clf@production"``) or a loaded model.
    ``data``: a dataset reference (``"churn-test@v2"``), a file (csv, parquet, json) or a DataFrame.
    ``slices``: columns to slice by (``"plan,region"``; ``"tenure:4"`` for quantile bins).
    When the model comes from the registry and ``log`` is true, the evaluation is stored and linked
    to the model version and the dataset version. ``allow_pickle=True`` lets a ``pyfunc``
    (cloudpickle) version load, which runs code from the store: only if you trust who can write to it.
    """
    t0 = time.perf_counter()
    ms = load_model_ref(model, uri, allow_pickle=allow_pickle)
    ds = load_data(data, uri)
    result = _evaluate_loaded(ms, ds, label=label, slices=slices, metrics=metrics, task=task)
    result.duration_ms = int((time.perf_counter() - t0) * 1000)
    if log and ms.name is not None:
        from modelyard.evaluation._service import EvaluationService

        EvaluationService(uri).record_evaluation(result)
    return result


def _evaluate_loaded(
    ms: ModelSource,
    ds: DataSource,
    *,
    label: str | None,
    slices: str | Sequence[str] | None,
    metrics: Sequence[str] | None,
    task: str | None,
    extra_metrics: Sequence[str] = (),
    on_task: Any = None,
) -> Evaluation:
    from modelyard._version import __version__

    if task is not None and task not in TASKS:
        raise InvalidArgumentError(
            f"The 'task' parameter of evaluate must be one of {list(TASKS)}. Got {task!r} instead."
        )
    for name in metrics or ():
        if (
            task is not None or name in METRICS
        ):  # an unknown name waits for the inferred task: suggestions fit it
            metric_spec(name, task)
    frame = ds.frame
    if len(frame) == 0:
        raise InvalidArgumentError(f"The evaluation data {ds.label!r} has no rows.")
    X, y, label = split_label(frame, label)
    slice_specs = parse_slices(slices)
    coded = {}
    for spec in slice_specs:
        name, codes, labels = slice_codes(frame, spec)
        coded[name] = (codes, labels)
    want_scores = task != "regression"
    pred, scores, classes = model_outputs(ms.model, _features(ms.model, X), want_scores=want_scores)
    task = task or infer_task(y, pred, scores is not None)
    if on_task is not None:
        on_task(task)
    if task == "regression":
        scores = None
    prepared = prepare_targets(task, y, pred, scores, classes=classes)
    names = list(metrics) if metrics else default_metrics(task, has_scores=scores is not None)
    names = list(dict.fromkeys([*names, *extra_metrics]))
    values = compute_metrics(prepared, names, coded)
    return Evaluation(
        task=task,
        label=label,
        n_rows=len(frame),
        metrics=values.overall,
        slices=values.slices,
        classes=prepared.classes or None,
        model_name=ms.name,
        model_version=ms.version,
        dataset_name=ds.dataset_name,
        dataset_version=ds.dataset_version,
        data_source=ds.source if ds.dataset_name is None else None,
        data_digest=data_digest(frame),
        modelyard_version=__version__,
    )


def list_evaluations(model: str, *, limit: int = 50, uri: Any = None) -> list[Evaluation]:
    """Stored evaluations of a model (``churn-clf``) or one version (``churn-clf/8``), newest first."""
    from modelyard.evaluation._service import EvaluationService

    return EvaluationService(uri).list_evaluations(model, limit=limit)


def get_evaluation(evaluation_id: str, *, uri: Any = None) -> Evaluation:
    """One stored evaluation by id (or a unique prefix of at least 6 characters)."""
    from modelyard.evaluation._service import EvaluationService

    return EvaluationService(uri).get_evaluation(evaluation_id)


def _metric_names() -> list[str]:  # pragma: no cover - convenience for shells
    return sorted(METRICS)


def _dumps(obj: Any) -> str:
    def clean(o: Any) -> Any:
        if isinstance(o, float) and (o != o or o in (float("inf"), float("-inf"))):
            return None
        if isinstance(o, dict):
            return {str(k): clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        if isinstance(o, np.generic):
            return clean(o.item())
        return o

    return json.dumps(clean(obj), sort_keys=False, separators=(",", ":"))
