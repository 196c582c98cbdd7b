"""A small project for automation tests: a pipeline that trains and registers a scikit-learn
model from a dataset, a gate policy, the training data as a dataset."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

PIPELINE = """
import pandas as pd
import modelyard as yard


@yard.step
def train(table: pd.DataFrame, name: str, c: float) -> dict:
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import register_model

    X, y = table[["x1", "x2"]], table["label"]
    mv = register_model(LogisticRegression(C=c).fit(X, y), name, input_example=X.head(3))
    return {"model": mv.name, "version": mv.version}


@yard.pipeline(experiment="automation-test")
def train_pipeline(data: str = "train@latest", name: str = "clf", c: float = 1.0):
    return train(yard.pipelines.dataset(data), name, c)


@yard.pipeline(experiment="automation-test")
def no_version(data: str = "train@latest"):
    return train_nothing(yard.pipelines.dataset(data))


@yard.step
def train_nothing(table: pd.DataFrame) -> dict:
    return {"rows": len(table)}
"""


def frame(seed: int, n: int = 300, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, n)
    x2 = rng.normal(0, 1, n)
    label = ((x1 - shift) + 0.5 * x2 + rng.normal(0, 0.3, n) > 0).astype(int)
    return pd.DataFrame({"x1": x1, "x2": x2, "label": label})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with pipelines/train.py and gates.yaml (min accuracy 0.6 on the dataset 'test')."""
    root = tmp_path / "project"
    (root / "pipelines").mkdir(parents=True)
    (root / "pipelines" / "train.py").write_text(textwrap.dedent(PIPELINE))
    (root / "gates.yaml").write_text(
        "data: {dataset: test@latest, label: label}\nmetrics:\n  accuracy: {min: 0.6}\n"
    )
    (root / "strict.yaml").write_text(
        "data: {dataset: test@latest, label: label}\nmetrics:\n  accuracy: {min: 0.999}\n"
    )
    return root


def add_data(uri: str, name: str = "train", seed: int = 1, shift: float = 0.0) -> Any:
    from modelyard.data import add

    return add(frame(seed, shift=shift), name=name, uri=uri)


def write(root: Path, text: str, name: str = "automations.yaml") -> Path:
    p = root / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


class Clock:
    """An injected clock (ms) that tests move by hand."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms
