"""Data and helpers shared by the evaluation tests (imported by name: keep this file name unique)."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
