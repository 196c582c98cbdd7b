"""pytest plugin: test models like code, with models and datasets loaded from the store.

Installed with modelyard (entry point ``pytest11``), so the fixtures are there in any project::

    def test_candidate_beats_champion(yard_model, yard_dataset, yard_evaluate):
        data = yard_dataset("churn-test@v2")
        cand = yard_evaluate("churn-clf@candidate", data, label="churned")
        champ = yard_evaluate("churn-clf@production", data, label="churned")
        assert cand.metrics["roc_auc"] >= champ.metrics["roc_auc"] - 0.005

The store is ``--yard-uri`` or ``YARD_URI`` (else ./.yard). Loaded models and datasets are
cached for the session; evaluations made through ``yard_evaluate`` are not stored unless
``--yard-log-evaluations`` is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

__all__ = ["yard_dataset", "yard_evaluate", "yard_model", "yard_uri"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("modelyard", "modelyard model tests")
    group.addoption(
        "--yard-uri",
        default=None,
        help="modelyard store for the yard_* fixtures (default: YARD_URI or ./.yard).",
    )
    group.addoption(
        "--yard-log-evaluations",
        action="store_true",
        default=False,
        help="Store evaluations made by yard_evaluate.",
    )


@pytest.fixture(scope="session")
def yard_uri(request: pytest.FixtureRequest) -> str | None:
    """The store URI the yard_* fixtures read (``--yard-uri``, else YARD_URI, else ./.yard)."""
    uri: str | None = request.config.getoption("--yard-uri")
    return uri


@pytest.fixture(scope="session")
def _yard_cache() -> dict[tuple[str, str], Any]:
    return {}


@pytest.fixture
def yard_model(yard_uri: str | None, _yard_cache: dict[tuple[str, str], Any]) -> Callable[[str], Any]:
    """``yard_model("churn-clf@production")`` → the loaded model (digests verified), cached per session."""

    def load(ref: str) -> Any:
        key = ("model", ref)
        if key not in _yard_cache:
            from modelyard.registry import load_model

            _yard_cache[key] = load_model(ref, uri=yard_uri)
        return _yard_cache[key]

    return load


@pytest.fixture
def yard_dataset(yard_uri: str | None, _yard_cache: dict[tuple[str, str], Any]) -> Callable[[str], Any]:
    """``yard_dataset("churn-test@v2")`` → a pandas DataFrame (a copy: tests may change it)."""

    def load(ref: str) -> Any:
        key = ("data", ref)
        if key not in _yard_cache:
            from modelyard.evaluation._sources import load_data

            _yard_cache[key] = load_data(ref, yard_uri).frame
        return _yard_cache[key].copy()

    return load


@pytest.fixture
def yard_evaluate(
    request: pytest.FixtureRequest, yard_uri: str | None, yard_model: Callable[[str], Any]
) -> Callable[..., Any]:
    """``yard_evaluate(ref_or_model, data, label=..., slices=..., metrics=...)`` → an Evaluation."""
    log = bool(request.config.getoption("--yard-log-evaluations"))

    def run(model: Any, data: Any, **kwargs: Any) -> Any:
        from modelyard.evaluation import evaluate

        if isinstance(model, str):
            model = yard_model(model)
        return evaluate(model, data, log=log, uri=yard_uri, **kwargs)

    return run
