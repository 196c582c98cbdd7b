"""A small churn pipeline. Run it twice and the second run is fully cached:

    yard pipeline run examples/pipelines/churn.py:churn --executor local
    yard pipeline status examples/pipelines/churn.py:churn --param lr=0.05
    yard pipeline run examples/pipelines/churn.py:churn --param lr=0.05
    yard pipeline dag examples/pipelines/churn.py:churn --svg churn.svg
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingClassifier

import modelyard as yard


@yard.step
def load(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = rng.gamma(2.0, 30.0, rows)
    tenure = rng.integers(0, 60, rows)
    churned = (rng.random(rows) < 1 / (1 + np.exp(0.05 * tenure - 0.01 * spend))).astype(int)
    return pd.DataFrame({"spend": spend, "tenure": tenure, "churned": churned})


@yard.step(retries=2, resources={"num_cpus": 1})
def featurize(df: pd.DataFrame, window: int = 7) -> pd.DataFrame:
    return df.assign(avg=df["spend"].rolling(window, min_periods=1).mean())


@yard.step(env=["scikit-learn"])
def train(features: pd.DataFrame, lr: float = 0.1) -> GradientBoostingClassifier:
    X, y = features.drop(columns="churned"), features["churned"]
    return GradientBoostingClassifier(learning_rate=lr, n_estimators=50, random_state=0).fit(X, y)


@yard.step
def evaluate(model: GradientBoostingClassifier, features: pd.DataFrame) -> dict:
    X, y = features.drop(columns="churned"), features["churned"]
    return {"accuracy": float(model.score(X, y))}


@yard.pipeline(experiment="churn")
def churn(rows: int = 5000, lr: float = 0.1):
    features = featurize(load(rows))
    return evaluate(train(features, lr=lr), features)
