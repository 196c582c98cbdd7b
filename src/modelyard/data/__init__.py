"""Data: dataset versions, lineage, schema inference, mergeable profiles and data validation.

    import modelyard as yard

    ds = yard.data.add("data/train.parquet", name="churn-train")   # churn-train@v1
    df = yard.data.load("churn-train@v1")
    report = yard.validate(new_df, against="churn-train@v1")
"""

from modelyard.data._api import add, diff, get, list_datasets, load, profile, show, versions
from modelyard.data._expectations import ColumnExpectations, Suite, infer_suite, load_suite
from modelyard.data._profile import ColumnProfile, Profile, ProfileBuilder
from modelyard.data._report import CheckResult, ValidationReport
from modelyard.data._service import DataService, DatasetVersion, parse_ref
from modelyard.data._validate import validate

list = list_datasets  # ``yard.data.list()`` reads naturally

__all__ = [
    "CheckResult",
    "ColumnExpectations",
    "ColumnProfile",
    "DataService",
    "DatasetVersion",
    "Profile",
    "ProfileBuilder",
    "Suite",
    "ValidationReport",
    "add",
    "diff",
    "get",
    "infer_suite",
    "list",
    "list_datasets",
    "load",
    "load_suite",
    "parse_ref",
    "profile",
    "show",
    "validate",
    "versions",
]
