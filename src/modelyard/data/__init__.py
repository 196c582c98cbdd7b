"""Data: dataset versions, lineage, schema inference, mergeable profiles and data validation.

    import modelyard as yard

    ds = yard.data.add("data/train.parquet", name="churn-train")   # churn-train@v1
    df = yard.data.load("churn-train@v1")
    report = yard.validate(new_df, against="churn-train@v1")
"""

from modelyard.data._api import add, diff, get, list_datasets, load, profile, show, versions
from modelyard.data._profile import ColumnProfile, Profile, ProfileBuilder
from modelyard.data._service import DataService, DatasetVersion, parse_ref

list = list_datasets  # ``yard.data.list()`` reads naturally

__all__ = [
    "ColumnProfile",
    "DataService",
    "DatasetVersion",
    "Profile",
    "ProfileBuilder",
    "add",
    "diff",
    "get",
    "list",
    "list_datasets",
    "load",
    "parse_ref",
    "profile",
    "show",
    "versions",
]
