"""The churn traffic the monitoring tests log, train on and compare (``shift`` moves it: drift)."""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["tenure", "monthly", "plan"]


def churn_traffic(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "tenure": rng.integers(0, 72, n).astype(float) + shift * 30,
            "monthly": rng.normal(70, 20, n) + shift * 25,
            "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.35, 0.15]),
        }
    )
    df["churned"] = (rng.random(n) < 1 / (1 + np.exp(0.05 * (df.tenure - 30)))).astype(int)
    return df
