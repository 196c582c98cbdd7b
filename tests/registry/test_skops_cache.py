"""The cached skops type lists: the same trust as a scan, never wider, whatever the file says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelyard.registry.flavors import _skops_cache as cache

# prints skops' default trusted lists after modelyard imported skops (cache or scan)
PROBE = """
import json, sys
from modelyard.registry.flavors.sklearn import _skops_io
_skops_io()
tt = sys.modules["skops.io._trusted_types"]
print(json.dumps({k: sorted(map(str, getattr(tt, k))) for k in dir(tt)
                  if k.endswith("_NAMES") and isinstance(getattr(tt, k), list)}))
"""


def probe(cache_dir: Path) -> dict[str, list[str]]:
    env = {**os.environ, "YARD_CACHE_DIR": str(cache_dir)}
    src = str(Path(cache.__file__).resolve().parents[3])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    lists: dict[str, list[str]] = json.loads(out.stdout)
    return lists


def assert_within(cached: dict[str, list[str]], scanned: dict[str, list[str]]) -> None:
    """Every list as the scan made it; the estimators at most the scan's (the cache keeps only those
    also in the reviewed table, which a newer scikit-learn may outgrow)."""
    assert cached.keys() == scanned.keys()
    for key, names in cached.items():
        if key == "SKLEARN_ESTIMATOR_TYPE_NAMES":
            assert set(names) <= set(scanned[key]) and len(names) > 100
        else:
            assert names == scanned[key], key


@pytest.mark.slow
def test_cache_gives_the_scan_and_a_tampered_cache_never_widens(tmp_path: Path) -> None:
    scanned = probe(tmp_path)  # empty cache: skops scans, modelyard writes the file
    files = list(tmp_path.glob("skops-estimators-*.json"))
    assert len(files) == 1
    assert_within(probe(tmp_path), scanned)  # from the cache: the same lists
    doc = json.loads(files[0].read_text())
    doc["estimators"] += ["posix.system", "sklearn.utils._testing.assert_allclose", "builtins.eval"]
    for key in doc["public"]:
        doc["public"][key] = [*doc["public"][key], "builtins.eval"]
    files[0].write_text(json.dumps(doc))
    tampered = probe(tmp_path)
    everything = {n for names in tampered.values() for n in names}
    assert not {"posix.system", "builtins.eval", "sklearn.utils._testing.assert_allclose"} & everything
    assert_within(tampered, scanned)  # the added names were dropped; a list with a stranger re-derived


def test_cache_from_other_versions_or_garbage_is_not_used(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("YARD_CACHE_DIR", str(tmp_path))
    name = "sklearn.linear_model._logistic.LogisticRegression"
    cache.write_cache([name, "sklearn.evil.Thing", "os.system"], {})
    assert cache.cached_estimators() == [name]  # only what the reviewed table holds
    path = cache.cache_path()
    doc = json.loads(path.read_text())
    doc["key"]["scikit-learn"] = "0.0.1"
    path.write_text(json.dumps(doc))
    assert cache.cached_estimators() is None
    path.write_text("{not json")
    assert cache.cached_estimators() is None


def test_cache_dir_follows_the_environment(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("YARD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "modelyard"
    monkeypatch.setenv("YARD_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
