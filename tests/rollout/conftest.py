"""Models the rollout tests register (pyfuncs over x, y, z) and a bounded loopback load generator."""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

COLUMNS = ["x", "y", "z"]


class Doubler:
    """Stable: ``2x``."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return (df["x"] * 2).to_numpy(dtype=float)


class Erratic:
    """``2x``, but raises on about one request in 10, chosen by its row (the sixth decimal of ``x``
    ends in 3), so the error rate the analysis sees does not depend on how requests were batched:
    the server retries a failing batch request by request. Counting calls instead made the rate
    depend on batching (a failed batch of k requests cost k + 1 calls), and a random 10% gave no
    error at all in a canary's first 30 samples about once in 25 runs."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        x = df["x"].to_numpy(dtype=float)
        if (np.floor(np.abs(x) * 1e6) % 10 == 3).any():
            raise RuntimeError("erratic candidate")
        return x * 2


class Slow:
    """``2x`` after 60 ms."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        time.sleep(0.06)
        return (df["x"] * 2).to_numpy(dtype=float)


class Drifting:
    """``2x + 40``: predictions move to another range."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        return (df["x"] * 2 + 40).to_numpy(dtype=float)


class Hanging:
    """Never answers in time."""

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        time.sleep(3)
        return (df["x"] * 2).to_numpy(dtype=float)


#: version → model, registered in this order under the name ``m``.
VERSIONS = {1: Doubler, 2: Doubler, 3: Erratic, 4: Slow, 5: Drifting, 6: Hanging}


def register(uri: str) -> None:
    from modelyard.registry import register_model, set_alias
    from modelyard.registry._signature import ColSpec, Signature

    sig = Signature([ColSpec(c, "float64") for c in COLUMNS])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for cls in VERSIONS.values():
            register_model(cls(), "m", flavor="pyfunc", signature=sig, uri=uri)
    set_alias("m", "production", 1, uri=uri)


@pytest.fixture(scope="module")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A folder store with ``m`` versions 1..6 (see VERSIONS); production → 1."""
    uri = str(Path(tmp_path_factory.mktemp("rollout")) / "store")
    register(uri)
    return uri


def fill_store(store_uri: str, model_store: str) -> str:
    """``store_uri`` (the ``store_uri`` fixture: a fresh SQLite folder or PostgreSQL schema) with the
    models of ``model_store``: the folder copied on SQLite, the models registered anew on PostgreSQL."""
    import shutil

    if "://" in store_uri:
        register(store_uri)
    else:
        shutil.copytree(model_store, store_uri)
    return store_uri


@pytest.fixture
def store(model_store: str, tmp_path: Path) -> str:
    """A fresh copy of the model store for one test (rollouts and aliases start clean)."""
    import shutil

    dst = tmp_path / "store"
    shutil.copytree(model_store, dst)
    return str(dst)


@pytest.fixture(autouse=True)
def _quiet() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Loading a pyfunc model")
        yield


#: ``timeout_ms`` is generous: on a busy machine a slow answer must not become a timeout (an error).
BASE = {
    "models": {"primary": {"ref": "m/1", "warmup": 0}},
    "fallback": {"constant": -1},
    "timeout_ms": 30_000,
    "batching": {"max_latency_ms": 1},
    "breaker": {"enabled": False},
    "prediction_log": {"enabled": False},
    "allow_pickle": True,
}  # the models are pyfuncs (cloudpickle)


class Load:
    """Concurrent clients posting one-row requests to ``url`` until stopped (at most ``limit``)."""

    def __init__(self, url: str, clients: int = 3, limit: int = 20_000, headers: Any = None) -> None:
        self.url = url
        self.limit = limit
        self.headers = headers
        self.stop = threading.Event()
        self.sent = 0
        self.failed: list[Any] = []
        self.versions: dict[str, int] = {}
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)]

    def _client(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        with httpx.Client(timeout=120) as c:
            while not self.stop.is_set():
                with self._lock:
                    if self.sent >= self.limit:
                        return
                    self.sent += 1
                    i = self.sent
                row = {"x": float(rng.normal()), "y": 0.0, "z": 0.0}
                headers = self.headers(i) if callable(self.headers) else None
                try:
                    r = c.post(f"{self.url}/v1/models/m/predict", json={"records": [row]}, headers=headers)
                    if r.status_code != 200:
                        self.failed.append((r.status_code, r.text[:200]))
                    else:
                        v = r.headers.get("x-model-version", "constant")
                        with self._lock:
                            self.versions[v] = self.versions.get(v, 0) + 1
                except httpx.HTTPError as exc:
                    self.failed.append(repr(exc))

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def wait_for(self, n: int, timeout: float = 120) -> None:
        """Wait until ``n`` more requests were sent (bounded: fails after ``timeout`` seconds)."""
        target = self.sent + n
        deadline = time.monotonic() + timeout
        while self.sent < target:
            assert time.monotonic() < deadline, (
                f"the load sent {self.sent} of {target} requests in {timeout} s"
            )
            time.sleep(0.02)

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(150)
