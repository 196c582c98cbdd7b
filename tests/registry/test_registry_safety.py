"""Safety: digests verified before deserializing, untrusted skops types and pickles refused,
concurrent registration, signature enforcement, environment warnings."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelyard as yard
from modelyard.blobs._store import ManifestEntry
from modelyard.errors import IntegrityError, SerializationError, SignatureError, ValidationFailed
from modelyard.registry import RegistryService, Signature
from testkit.registry import Boom, inject_model

SRC = Path(__file__).resolve().parents[2] / "src"


def _register(workspace, model, X, name="churn-clf"):  # type: ignore[no-untyped-def]
    return yard.registry.register_model(model, name, input_example=X[:5], uri=workspace)


def test_tampered_blob_is_refused_before_deserializing(workspace, churn_frame, sk_model, monkeypatch) -> None:
    X, _ = churn_frame
    mv = _register(workspace, sk_model, X)
    entry = next(e for e in workspace.blobs.read_manifest(mv.manifest_digest) if e.path == "model.skops")
    path = workspace.blobs.local_path(entry.digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))

    import skops.io

    def never(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("deserialized a tampered file")

    monkeypatch.setattr(skops.io, "loads", never)
    monkeypatch.setattr(skops.io, "get_untrusted_types", never)
    with pytest.raises(
        IntegrityError,
        match=r"Model churn-clf/1: file 'model.skops' does not match its digest .* nothing was deserialized",
    ):
        yard.load_model("churn-clf/1", uri=workspace)


def test_untrusted_skops_types_are_refused(workspace, tmp_path) -> None:
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    evil = FunctionTransformer(func=os.system)
    with pytest.raises(
        SerializationError,
        match=r"types and functions that modelyard does not trust by default: \['posix.system'\]\. "
        r"Inspect them .* pass trusted_types=\['posix.system'\] to log_model",
    ):
        yard.registry.register_model(evil, "evil", uri=workspace)
    v = inject_model(workspace, {"model.skops": sio.dumps(evil)}).version
    with pytest.raises(
        SerializationError,
        match=r"Refusing to load model.skops: it would instantiate untrusted types \['posix.system'\]\. "
        r"Inspect them \(a function can run any code when the model predicts\); if you trust the model's "
        r"author, pass trusted_types=\['posix.system'\] to load_model\(\)\.",
    ):
        yard.load_model(f"evil/{v}", uri=workspace)
    # the caller can trust it explicitly
    m = yard.load_model(f"evil/{v}", uri=workspace, trusted_types=["posix.system"])
    assert m.raw.func is os.system


def test_pickle_in_place_of_skops_is_refused(workspace, tmp_path) -> None:
    marker = tmp_path / "marker"
    v = inject_model(workspace, {"model.skops": pickle.dumps(Boom(str(marker)))}).version
    with pytest.raises(SerializationError, match=r"model.skops is not a valid skops file .* never unpickles"):
        yard.load_model(f"evil/{v}", uri=workspace)
    assert not marker.exists()


def test_concurrent_registration_gets_distinct_versions(store_uri, churn_frame, sk_model) -> None:
    X, _ = churn_frame
    first = yard.registry.register_model(sk_model, "shared", input_example=X[:5], uri=store_uri)
    # Each process registers the same stored package again: the contended part is the version counter,
    # so the processes skip serialization (and its imports) and hammer the store.
    code = (
        "import sys\n"
        "from modelyard.registry import RegistryService\n"
        "svc = RegistryService(sys.argv[1])\n"
        "for _ in range(4):\n"
        "    mv = svc.register_version('shared', flavor='sklearn', manifest_digest=sys.argv[2], size=1,\n"
        "                              signature=None, requirements={})\n"
        "    print(mv.version, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, store_uri, first.manifest_digest],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        for _ in range(4)
    ]
    got: list[int] = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
        got.extend(int(x) for x in out.split())
    assert sorted(got) == list(range(2, 18))
    versions = yard.registry.list_versions("shared", uri=store_uri)
    assert [v.version for v in versions] == list(range(17, 0, -1))
    log = yard.registry.audit_log("shared", uri=store_uri)
    assert sorted(e.version for e in log if e.action == "version.register") == list(range(1, 18))
    assert [e.action for e in log].count("model.create") == 1
    m = yard.load_model("shared@latest", uri=store_uri)
    assert m.version == 17 and (m.predict(X) == sk_model.predict(X)).all()


def test_signature_lists_every_problem_at_once(workspace, churn_frame, sk_model) -> None:
    X, _ = churn_frame
    sig = Signature.infer(X, ranges=True)
    yard.registry.register_model(sk_model, "churn-clf", signature=sig, uri=workspace)
    m = yard.load_model("churn-clf@latest", uri=workspace)
    bad = pd.DataFrame({"tenure": [1.5, 2.0], "monthly": ["a", "b"], "extra": [1, 2]})
    with pytest.raises(SignatureError) as info:
        m.predict(bad)
    assert info.value.problems == [
        "missing column 'calls'",
        "column 'tenure' should be int64 but is float64 with fractional values (e.g. 1.5)",
        "column 'monthly' should be float64 but is string",
    ]
    assert isinstance(info.value, ValidationFailed)
    assert "does not match its signature (3 problems)" in str(info.value)
    hi = X[:3].assign(tenure=[1, 500, 2])
    with pytest.raises(
        SignatureError,
        match=rf"column 'tenure' has 1 value\(s\) above the maximum {int(X.tenure.max())} \(highest 500\)",
    ):
        m.predict(hi)
    nulls = X[:3].assign(monthly=[1.0, None, 2.0])
    with pytest.raises(SignatureError, match=r"column 'monthly' has 1 missing value\(s\)"):
        m.predict(nulls)
    # one record whose value is null: the column holds only None (pandas: object, "string"); it is a
    # missing value, not a type error ("should be float64 but is string" sent users the wrong way)
    record = {**X.iloc[0].to_dict(), "monthly": None, "tenure": None}
    with pytest.raises(SignatureError) as info:
        m.predict([record])
    assert info.value.problems == [
        "column 'tenure' has 1 missing value(s) but the signature allows none",
        "column 'monthly' has 1 missing value(s) but the signature allows none",
    ]
    with pytest.raises(SignatureError) as info:
        m.predict([{**X.iloc[0].to_dict(), "monthly": "high"}])
    assert info.value.problems == ["column 'monthly' should be float64 but is string"]
    # safe casts and dropped extras: whole floats for ints, reordered columns, an extra column
    ok = X[:10][["calls", "monthly", "tenure"]].astype({"tenure": float}).assign(extra=1)
    np.testing.assert_array_equal(m.predict(ok), sk_model.predict(X[:10]))
    v = sig.validate(ok)
    assert list(v.columns) == ["tenure", "monthly", "calls"] and str(v["tenure"].dtype) == "int64"
    assert Signature.from_dict(sig.to_dict()) == sig


def test_requirement_and_version_mismatch_warn(workspace, churn_frame, sk_model) -> None:
    X, _ = churn_frame
    mv = _register(workspace, sk_model, X)
    entries = workspace.blobs.read_manifest(mv.manifest_digest)
    files = {e.path: workspace.blobs.read_bytes(e.digest) for e in entries}
    meta = json.loads(files["yard-model.json"])
    meta["requirements"]["scikit-learn"] = "0.0.1"
    meta["modelyard_version"] = "0.0.0"
    files["yard-model.json"] = json.dumps(meta).encode()
    new = [ManifestEntry(p, workspace.blobs.put_bytes(b), len(b)) for p, b in files.items()]
    digest = workspace.blobs.put_manifest(new)
    v = (
        RegistryService(workspace)
        .register_version(
            "churn-clf", flavor="sklearn", manifest_digest=digest, size=1, signature=None, requirements={}
        )
        .version
    )
    with pytest.warns(yard.registry.RequirementsMismatchWarning, match=r"scikit-learn 0\.0\.1 \(installed: "):
        with pytest.warns(yard.registry.ModelVersionMismatchWarning, match=r"saved with modelyard 0\.0\.0"):
            yard.load_model(f"churn-clf/{v}", uri=workspace)
