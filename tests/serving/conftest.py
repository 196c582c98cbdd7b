"""Models the serving tests register themselves: two scikit-learn versions and flaky pyfuncs."""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

COLUMNS = ["x", "y", "z"]


def frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, 3)), columns=COLUMNS)


class Flaky:
    """Doubles ``x``; raises on rows with ``x < 0``; sleeps on rows with ``x > 100``; exits on 666."""

    def __init__(self, sleep_s: float = 0.6) -> None:
        self.sleep_s = sleep_s

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        if (df["x"] == 666).any():
            raise SystemExit(3)
        if (df["x"] < 0).any():
            raise ValueError("x must not be negative")
        if (df["x"] > 100).any():
            time.sleep(self.sleep_s)
        return (df["x"] * 2).to_numpy(dtype=float)


class Halver:
    """A steady fallback: ``x / 2``."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return (df["x"] / 2).to_numpy(dtype=float)


class Warner:
    """Doubles ``x`` and warns like scikit-learn on every call; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        self.calls += 1
        warnings.warn(
            "X does not have valid feature names, but Warner was fitted with feature names",
            UserWarning,
            stacklevel=1,
        )
        return (df["x"] * 2).to_numpy(dtype=float)


class Dated:
    """Days since 2024-01-01 of column ``d`` (a datetime column), plus ``x``."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return ((df["d"] - pd.Timestamp("2024-01-01")).dt.days + df["x"]).to_numpy(dtype=float)


def register_models(uri: str) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from modelyard.registry import register_model, set_alias
    from modelyard.registry._signature import ColSpec, Signature

    X = frame()
    y = (X["x"] + X["y"] > 0).astype(int)
    out: dict[str, Any] = {}
    out["clf1"] = register_model(LogisticRegression().fit(X, y), "clf", input_example=X.head(5), uri=uri)
    out["clf2"] = register_model(LogisticRegression(C=0.1).fit(X, y), "clf", input_example=X.head(5), uri=uri)
    set_alias("clf", "production", out["clf1"].version, uri=uri)
    sig = Signature([ColSpec(c, "float64") for c in COLUMNS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["flaky"] = register_model(Flaky(), "flaky", flavor="pyfunc", signature=sig, uri=uri)
        out["halver"] = register_model(Halver(), "flaky", flavor="pyfunc", signature=sig, uri=uri)
    return out


@pytest.fixture(scope="module")
def served_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store (folder) with clf/1 (@production), clf/2, flaky/1 (raises/sleeps), flaky/2 (x/2)."""
    uri = str(Path(tmp_path_factory.mktemp("serving")) / "store")
    register_models(uri)
    return uri


@pytest.fixture(scope="module")
def backend_store(module_store_uri: str) -> str:
    """The models of ``served_store`` in a store shared by the module's tests, once on SQLite and
    once on the real PostgreSQL."""
    register_models(module_store_uri)
    return module_store_uri


@pytest.fixture
def metric() -> Any:
    """``metric(server_or_url, "yard_serving_spec_swaps_total", outcome="ok")``: the sum of the
    samples of that name carrying those labels in the server's ``GET /metrics`` answer (0 when
    none: an unlabelled counter child that never counted). A URL is scraped over HTTP, a server
    object in process over ASGI."""
    import asyncio
    import re

    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    def value(target: Any, sample: str, **labels: str) -> float:
        if isinstance(target, str):
            r = httpx.get(target + "/metrics", timeout=60)
        else:

            async def get() -> httpx.Response:
                async with httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=target), base_url="http://t"
                ) as c:
                    return await c.get("/metrics")

            r = asyncio.run(get())
        assert r.status_code == 200, r.text
        families = list(text_string_to_metric_families(r.text))
        family = re.sub(r"_(total|count|sum|bucket)$", "", sample)
        assert family in {f.name for f in families}, (
            f"no metric family {family!r} on /metrics"
        )  # no typo passes
        return sum(
            s.value
            for fam in families
            for s in fam.samples
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
        )

    return value


@pytest.fixture(autouse=True)
def _quiet_pyfunc_warning() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Loading a pyfunc model")
        yield


@pytest.fixture
def register_extra(tmp_path: Path) -> Any:
    """``register_extra("warner" | "dated")`` registers that pyfunc in a fresh store; returns the uri."""
    from modelyard.registry import register_model
    from modelyard.registry._signature import ColSpec, Signature

    uri = str(tmp_path / "extra-store")

    def register(kind: str) -> str:
        if kind == "warner":
            model, sig = Warner(), Signature([ColSpec(c, "float64") for c in COLUMNS])
        else:
            model, sig = Dated(), Signature([ColSpec("d", "datetime"), ColSpec("x", "float64")])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            register_model(model, kind, flavor="pyfunc", signature=sig, uri=uri)
        return uri

    return register
