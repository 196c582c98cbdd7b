"""Lineage lookups: model version → run → training dataset version; the version's metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelyard._workspace import Workspace
from modelyard.errors import NotFoundError

if TYPE_CHECKING:
    from modelyard.registry._service import ModelVersion

__all__ = ["model_version_metrics", "training_dataset"]


def _version(ws: Workspace, model_name: str, version: int | str | None = None) -> ModelVersion:
    from modelyard.registry._api import get_model_version

    return get_model_version(model_name, int(version) if version not in (None, "") else None, uri=ws)


def training_dataset(ws: Workspace, model_name: str, version: int | str | None = None) -> str:
    """``name@vN`` of the dataset the model version's run trained on (its first input)."""
    from modelyard.data._service import DataService

    mv = _version(ws, model_name, version)
    if not mv.run_id:
        raise NotFoundError(
            f"Model {model_name!r} version {mv.version} was registered without a run, so its training "
            "data is unknown. Pass --reference name@vN (or a Parquet/CSV file)."
        )
    inputs = DataService(ws).inputs_of(mv.run_id)
    if not inputs:
        raise NotFoundError(
            f"The run {mv.run_id} of model {model_name!r} version {mv.version} recorded no dataset input "
            "(run.use_dataset(...)). Pass --reference name@vN (or a Parquet/CSV file)."
        )
    dv = inputs[0]
    return f"{dv.name}@v{dv.version}"


def model_version_metrics(
    ws: Workspace, model_name: str, version: int | str | None = None
) -> dict[str, float]:
    """The evaluation metrics recorded with the model version (its run's metrics)."""
    mv = _version(ws, model_name, version)
    aliases = {"roc_auc": "auc", "f1_score": "f1", "acc": "accuracy"}
    out: dict[str, float] = {}
    for k, v in (mv.metrics or {}).items():
        key = aliases.get(k, k)
        if key in ("accuracy", "f1", "auc", "mae", "rmse"):
            out[key] = float(v)
    return out
