"""Data: dataset versions, lineage, schema inference, mergeable profiles and data validation.

    import modelyard as yard

    ds = yard.data.add("data/train.parquet", name="churn-train")   # churn-train@v1
    df = yard.data.load("churn-train@v1")
    report = yard.validate(new_df, against="churn-train@v1")

Names are imported lazily (numpy and pyarrow only load when a profile or a frame is needed), so
``yard data add`` of plain files starts fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "add": "_api",
    "diff": "_api",
    "get": "_api",
    "list_datasets": "_api",
    "load": "_api",
    "profile": "_api",
    "show": "_api",
    "versions": "_api",
    "ColumnExpectations": "_expectations",
    "Suite": "_expectations",
    "infer_suite": "_expectations",
    "load_suite": "_expectations",
    "ColumnProfile": "_profile",
    "Profile": "_profile",
    "ProfileBuilder": "_profile",
    "PreparedVersion": "_ingest",
    "CheckResult": "_report",
    "ValidationReport": "_report",
    "DataService": "_service",
    "DatasetVersion": "_service",
    "parse_ref": "_service",
    "validate": "_validate",
}

__all__ = sorted([*_EXPORTS, "list"])


def __getattr__(name: str) -> Any:
    if name == "list":  # ``yard.data.list()`` reads naturally
        name_ = "list_datasets"
    else:
        name_ = name
    module = _EXPORTS.get(name_)
    if module is None:
        raise AttributeError(f"module 'modelyard.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"modelyard.data.{module}"), name_)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
