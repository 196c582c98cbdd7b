"""Pipeline tests' user modules: written to files, (re)loaded from source; the cache tests' pipeline.

Fixtures (``modules``, ``pipe_files``): import them into a conftest.
"""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class ModuleFiles:
    """Writes modules into a folder on sys.path and reloads them fresh from source."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, name: str, source: str) -> Path:
        """Write module ``MOD_<name>``; ``MOD_`` in the source becomes this folder's prefix."""
        path = self.folder / f"{self.prefix}_{name}.py"
        path.write_text(textwrap.dedent(source).replace("MOD_", self.prefix + "_"))
        return path

    def ref(self, name: str, attr: str = "pipe") -> str:
        return f"{self.folder / self.prefix}_{name}.py:{attr}"

    def load(self, name: str, attr: str = "pipe") -> Any:
        """Import ``MOD_<name>`` (and the modules it imports) afresh from source."""
        from modelyard.pipelines import load_pipeline

        for mod in [m for m in sys.modules if m.startswith(self.prefix)]:
            del sys.modules[mod]
        return load_pipeline(self.ref(name, attr))

    @property
    def prefix(self) -> str:
        return self.folder.name


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleFiles]:
    """A folder of user modules whose names start with a unique prefix (the folder's name)."""
    folder = tmp_path / f"m{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield ModuleFiles(folder)
    for mod in [m for m in sys.modules if m.startswith(folder.name)]:
        del sys.modules[mod]


HELPERS = """
def double(x):
    return x * 2
"""

PIPE = """
import pandas as pd
import modelyard as yard
from MOD_helpers import double

OFFSET = 1

@yard.step
def load(n: int) -> pd.DataFrame:
    print("loading", n)
    return pd.DataFrame({"a": list(range(n))})

@yard.step
def featurize(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    out["b"] = double(out["a"]) + OFFSET
    return out

@yard.step
def train(features: pd.DataFrame, lr: float = 0.1) -> dict:
    return {"lr": lr, "total": int(features["b"].sum())}

@yard.pipeline(experiment="cache-test")
def pipe(n: int = 5, lr: float = 0.1):
    return train(featurize(load(n)), lr=lr)
"""


def states(result: Any) -> dict[str, str]:
    return {n: s.state.value for n, s in result.steps.items()}


def reasons(outcomes: Any) -> dict[str, str]:
    items = outcomes.steps.values() if hasattr(outcomes, "steps") else outcomes
    return {s.node: s.reason for s in items}


@pytest.fixture
def pipe_files(modules: ModuleFiles) -> ModuleFiles:
    """``MOD_helpers`` and ``MOD_pipe`` (:data:`HELPERS`, :data:`PIPE`) written."""
    modules.write("helpers", HELPERS)
    modules.write("pipe", PIPE)
    return modules
