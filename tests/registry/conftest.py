"""Small models and data the registry tests train themselves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def churn_frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    n = 300
    X = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n),
            "monthly": rng.normal(70, 20, n).round(2),
            "calls": rng.poisson(1.5, n),
        }
    )
    y = ((X["monthly"] - 70) / 20 + X["calls"] * 0.5 - X["tenure"] / 36 + rng.normal(0, 0.5, n) > 0).astype(
        int
    )
    return X, y.to_numpy()


@pytest.fixture(scope="session")
def sk_model(churn_frame):  # type: ignore[no-untyped-def]
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = churn_frame
    return GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0).fit(X, y)
