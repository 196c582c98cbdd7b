"""Models the build tests bake: clf/1 (@production), clf/2 and a pyfunc, in a store of their own."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

COLUMNS = ["tenure", "charges"]


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"tenure": rng.uniform(0, 60, n), "charges": rng.uniform(20, 120, n)})


class Doubler:
    """A pyfunc model: twice the tenure."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return (df["tenure"] * 2).to_numpy(dtype=float)


def register_models(uri: str) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import register_model, set_alias
    from modelyard.registry._signature import ColSpec, Signature

    X = frame()
    y = (X["tenure"] < 12).astype(int)
    out: dict[str, Any] = {
        "clf1": register_model(LogisticRegression().fit(X, y), "clf", input_example=X.head(5), uri=uri),
        "clf2": register_model(LogisticRegression(C=0.1).fit(X, y), "clf", input_example=X.head(5), uri=uri),
    }
    set_alias("clf", "production", out["clf1"].version, uri=uri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sig = Signature([ColSpec(c, "float64") for c in COLUMNS])
        out["pyfunc"] = register_model(Doubler(), "doubler", flavor="pyfunc", signature=sig, uri=uri)
    return out


def make_build_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """(store folder, the registered versions): a test module's ``build_store`` fixture, which its
    tests only read."""
    uri = str(Path(tmp_path_factory.mktemp("build")) / "store")
    return uri, register_models(uri)
