"""The small churn table and model the registry tests train themselves (fixtures: import them into a
conftest)."""

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


def inject_model(
    ws,  # type: ignore[no-untyped-def]
    files: dict[str, bytes],
    *,
    flavor: str = "sklearn",
    options: dict | None = None,
    recorded: str | None = None,
    name: str = "evil",
):
    """Register a hand-made model package, as an attacker with write access to the store could: its
    yard-model.json says ``flavor``; the registry row says ``recorded`` (default: the same)."""
    import json

    import modelyard as yard
    from modelyard.blobs import ManifestEntry
    from modelyard.registry import RegistryService

    meta = {
        "format": "modelyard.model",
        "format_version": 1,
        "flavor": flavor,
        "options": options or {},
        "requirements": {},
        "signature": None,
        "modelyard_version": yard.__version__,
    }
    files = {**files, "yard-model.json": json.dumps(meta).encode()}
    entries = [ManifestEntry(p, ws.blobs.put_bytes(b), len(b)) for p, b in files.items()]
    digest = ws.blobs.put_manifest(entries)
    return RegistryService(ws).register_version(
        name, flavor=recorded or flavor, manifest_digest=digest, size=1, signature=None, requirements={}
    )


class Boom:
    """Unpickling this writes a marker file: proof that code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        from pathlib import Path

        return (Path(self.marker).write_text, ("pwned",))
