"""Small churn data and models the evaluation tests train and register themselves."""

from __future__ import annotations

import pandas as pd
import pytest
from evaluation_helpers import FEATURES, churn_data


@pytest.fixture(scope="session")
def churn() -> pd.DataFrame:
    return churn_data()


@pytest.fixture(scope="session")
def good_model(churn):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(churn[FEATURES], churn["churned"])


@pytest.fixture(scope="session")
def weak_model(churn):  # type: ignore[no-untyped-def]
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=500).fit(churn[["monthly"]], churn["churned"])
