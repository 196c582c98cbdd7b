"""Model packages: build the folder of a model (files + ``yard-model.json``), store it as a blob
manifest, and load it back — verifying every blob before anything is deserialized.

``yard-model.json`` holds the flavor, its options, the signature, the requirements (package
versions at save time), the Python version and the modelyard version that wrote it.
"""

from __future__ import annotations

import io
import json
import platform
import warnings
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from typing import Any

from modelyard._shared import now_ms
from modelyard._version import __version__
from modelyard._workspace import Workspace
from modelyard.blobs._store import ManifestEntry
from modelyard.errors import IntegrityError, SerializationError
from modelyard.registry._signature import Signature, to_frame
from modelyard.registry.flavors import Flavor, detect_flavor, get_flavor

__all__ = [
    "META_FILE",
    "LoadedModel",
    "ModelVersionMismatchWarning",
    "PackedModel",
    "RequirementsMismatchWarning",
    "load_package",
    "pack_model",
]

META_FILE = "yard-model.json"
EXAMPLE_FILE = "input_example.json"
FORMAT = "modelyard.model"


class RequirementsMismatchWarning(UserWarning):
    """A model is loaded where package versions differ from those it was saved with."""


class ModelVersionMismatchWarning(UserWarning):
    """A model saved by another modelyard version is loaded."""


def _versions(packages: tuple[str, ...] | list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in packages:
        try:
            out[p] = importlib_metadata.version(p)
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


@dataclass
class PackedModel:
    """A model stored in the blob store: its manifest digest and what ``yard-model.json`` says."""

    manifest_digest: str
    size: int
    flavor: str
    signature: Signature | None
    requirements: dict[str, str]
    meta: dict[str, Any]


def pack_model(
    ws: Workspace,
    model: Any,
    *,
    flavor: str | None = None,
    input_example: Any = None,
    signature: Signature | dict[str, Any] | None = None,
    requirements: list[str] | None = None,
    flavor_options: dict[str, Any] | None = None,
) -> PackedModel:
    """Save ``model`` with its flavor and store the files plus a manifest; return what was stored."""
    fl = get_flavor(flavor) if flavor else detect_flavor(model)
    files, options = fl.save(model, example=input_example, **(flavor_options or {}))
    if isinstance(signature, dict):
        signature = Signature.from_dict(signature)
    if signature is None and input_example is not None:
        signature = _infer_signature(fl, model, options, input_example)
    if input_example is not None:
        files[EXAMPLE_FILE] = to_frame(input_example).head(20).to_json(orient="split", index=False).encode()
    reqs = _versions(fl.packages)
    reqs.update(_versions([r.split("==")[0] for r in requirements or []]))
    meta = {
        "format": FORMAT,
        "format_version": 1,
        "flavor": fl.name,
        "options": options,
        "files": sorted(files),
        "signature": signature.to_dict() if signature else None,
        "requirements": reqs,
        "python": platform.python_version(),
        "modelyard_version": __version__,
        "created_at": now_ms(),
    }
    files[META_FILE] = json.dumps(meta, indent=2, sort_keys=True, default=str).encode()
    entries = []
    for path, data in files.items():
        digest = ws.blobs.put_bytes(data)
        entries.append(ManifestEntry(path=path, digest=digest, size=len(data)))
    manifest = ws.blobs.put_manifest(entries, kind=FORMAT, flavor=fl.name)
    return PackedModel(manifest, sum(e.size for e in entries), fl.name, signature, reqs, meta)


def _infer_signature(fl: Flavor, model: Any, options: dict[str, Any], example: Any) -> Signature:
    sig_in = Signature.infer(example)
    output = None
    try:
        df = sig_in.validate(example)
        output = fl.predict(model, df, options)
    except Exception:  # the output part of a signature is informative only
        output = None
    return Signature.infer(example, output) if output is not None else sig_in


def load_package(
    ws: Workspace,
    manifest_digest: str,
    *,
    trusted_types: list[str] | None = None,
    allow_pickle: bool = False,
    model_class: Any = None,
    expected_flavor: str | None = None,
    warn: bool = True,
    label: str = "",
) -> tuple[Any, Flavor, dict[str, Any]]:
    """Read a model package: every blob is verified against its digest before deserializing.

    Nothing the package says chooses code to run: the flavor must be ``expected_flavor`` (what the
    registry recorded) when given, a flavor that unpickles (``pyfunc``) needs ``allow_pickle=True``,
    and a PyTorch state dict is built with the caller's ``model_class``.
    """
    entries = ws.blobs.read_manifest(manifest_digest)  # verified
    files: dict[str, bytes] = {}
    for e in entries:
        try:
            files[e.path] = ws.blobs.read_bytes(e.digest)  # verified: IntegrityError on mismatch
        except IntegrityError as exc:
            raise IntegrityError(
                f"Model {label or manifest_digest[:12]}: file {e.path!r} does not match its digest "
                f"{e.digest[:12]}… (corrupted or tampered with); nothing was deserialized. {exc}"
            ) from exc
    raw_meta = files.pop(META_FILE, None)
    if raw_meta is None:
        raise SerializationError(f"Blob {manifest_digest[:12]}… is not a modelyard model (no {META_FILE}).")
    meta = json.loads(raw_meta)
    if meta.get("format") != FORMAT:
        raise SerializationError(f"Blob {manifest_digest[:12]}… is not a modelyard model.")
    files.pop(EXAMPLE_FILE, None)
    if warn:
        _check_environment(meta, label)
    who = f"Model {label}" if label else f"Model {manifest_digest[:12]}…"
    flavor = meta.get("flavor")
    if expected_flavor is not None and flavor != expected_flavor:
        raise SerializationError(
            f"{who} is recorded as flavor {expected_flavor!r} but its package says {flavor!r}; "
            f"refusing to load "
            "a package whose flavor does not match the record (it was tampered with or mis-registered)."
        )
    fl = get_flavor(str(flavor))
    if fl.runs_code and not allow_pickle:
        raise SerializationError(
            f"Refusing to load m{who[1:]}: it is a {fl.name} model, and loading it unpickles it, "
            f"which runs code from "
            "the store. Only if you trust whoever can write to this store, pass allow_pickle=True "
            "to load_model "
            "(yard serve/evaluate/gate --allow-pickle, or allow_pickle: true in a deployment spec "
            "or gate policy)."
        )
    options = meta.get("options", {})
    if not isinstance(options, dict):
        raise SerializationError(f"{who}: the 'options' in {META_FILE} must be a mapping.")
    raw = fl.load(
        files, options, trusted_types=trusted_types, allow_pickle=allow_pickle, model_class=model_class
    )
    return raw, fl, meta


def _check_environment(meta: dict[str, Any], label: str) -> None:
    who = f"Model {label}" if label else "This model"
    saved_by = meta.get("modelyard_version")
    if saved_by and saved_by != __version__:
        warnings.warn(
            f"{who} was saved with modelyard {saved_by} and is loaded with {__version__}.",
            ModelVersionMismatchWarning,
            stacklevel=4,
        )
    want: dict[str, str] = meta.get("requirements") or {}
    have = _versions(list(want))
    diffs = [
        f"{p} {v} (installed: {have.get(p, 'not installed')})" for p, v in want.items() if have.get(p) != v
    ]
    if diffs:
        warnings.warn(
            f"{who} was saved with package versions that differ from this environment: {', '.join(diffs)}. "
            "Predictions may differ; install the saved versions to be sure.",
            RequirementsMismatchWarning,
            stacklevel=4,
        )


def read_input_example(ws: Workspace, manifest_digest: str) -> Any:
    """The stored input example as a DataFrame, or None."""
    import pandas as pd

    for e in ws.blobs.read_manifest(manifest_digest):
        if e.path == EXAMPLE_FILE:
            return pd.read_json(io.BytesIO(ws.blobs.read_bytes(e.digest)), orient="split")
    return None


class LoadedModel:
    """A model loaded from the registry or a run, ready to predict.

    ``predict`` accepts a DataFrame, a list of records, a dict of columns or a 2-D array; the input
    is checked against the signature (every problem reported at once) before the model sees it.
    """

    input_example: Any  # set by serving's loader (a DataFrame or None) for the warm-up request

    def __init__(
        self,
        raw: Any,
        flavor: Flavor,
        meta: dict[str, Any],
        *,
        name: str | None = None,
        version: int | None = None,
        run_id: str | None = None,
        manifest_digest: str | None = None,
    ) -> None:
        self.raw = raw
        self._flavor = flavor
        self._options: dict[str, Any] = meta.get("options", {})
        self.meta = meta
        self.name = name
        self.version = version
        self.run_id = run_id
        self.manifest_digest = manifest_digest
        sig = meta.get("signature")
        self.signature: Signature | None = Signature.from_dict(sig) if sig else None

    @property
    def flavor(self) -> str:
        return self._flavor.name

    @property
    def label(self) -> str:
        if self.name:
            return f"{self.name}/{self.version}"
        return f"runs:/{self.run_id}/model" if self.run_id else "model"

    def __repr__(self) -> str:
        return f"<LoadedModel {self.label} flavor={self.flavor}>"

    def prepare(self, data: Any) -> Any:
        """The input as the DataFrame the model gets (validated against the signature)."""
        if self.signature is not None:
            return self.signature.validate(data, model=self.label)
        return to_frame(data)

    def predict(self, data: Any) -> Any:
        """Predictions for ``data``: a numpy array, or a DataFrame when the model has several outputs."""
        import numpy as np
        import pandas as pd

        out = self._flavor.predict(self.raw, self.prepare(data), self._options)
        if isinstance(out, pd.DataFrame):
            return out
        arr = np.asarray(out)
        outs = self.signature.outputs if self.signature else []
        if arr.ndim == 2 and arr.shape[1] > 1 and len(outs) == arr.shape[1]:
            return pd.DataFrame(arr, columns=[c.name for c in outs])
        return arr

    def __getattr__(self, item: str) -> Any:
        if item == "predict_proba":
            if not self._flavor.has_proba(self.raw, self._options):
                raise AttributeError(f"Model {self.label} ({self.flavor}) has no predict_proba.")
            return self._predict_proba
        raise AttributeError(item)

    def _predict_proba(self, data: Any) -> Any:
        import numpy as np

        return np.asarray(self._flavor.predict_proba(self.raw, self.prepare(data), self._options))
