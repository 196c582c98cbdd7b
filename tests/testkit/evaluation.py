"""The churn table the evaluation and report tests score models on, registering a model of it, and
the fixtures of both (import them into a conftest)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

FEATURES = ["tenure", "monthly", "calls"]


def churn_data(n: int = 600, seed: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "tenure": rng.integers(0, 72, n),
            "monthly": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(1.5, n),
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    logit = -0.05 * df["tenure"] + 0.03 * (df["monthly"] - 70) + 0.6 * df["calls"] - 0.2
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return df


def register(model, uri, name: str = "churn-clf"):  # type: ignore[no-untyped-def]
    from modelyard.registry import register_model

    cols = list(getattr(model, "feature_names_in_", FEATURES))
    return register_model(model, name, input_example=churn_data(5)[cols], uri=uri)


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
