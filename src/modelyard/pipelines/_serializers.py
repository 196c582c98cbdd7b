"""Type-aware serializers for step outputs: a visible name → implementation table.

An output is stored as a manifest blob listing its file(s), with ``meta`` naming the
serializer, the Python type and the modelyard version; the manifest's digest is the output
digest that downstream cache keys use. Serializers are tried in table order; the first whose
``accepts`` is true wins unless the step forces one with ``@yard.step(serializer=...)``.
``cloudpickle`` is never chosen on its own: a step must allow it (``allow_pickle=True``).

Loading trusts the step, not the stored bytes: :func:`load_output` uses the serializer the step
declares (or, for ``auto``, one of the safe ones) and refuses an output whose stored metadata names
another; a pickle is loaded only for a step with ``allow_pickle=True``.

Models are stored with the registry's flavors (``modelyard.registry.FLAVORS``): skops for
scikit-learn (made byte-deterministic, so equal models get equal digests), XGBoost and
LightGBM native formats, ONNX, TorchScript/safetensors; never pickle.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from modelyard._version import __version__
from modelyard.blobs import BlobStore, ManifestEntry, hash_file
from modelyard.errors import BlobNotFoundError, SerializationError

__all__ = ["SERIALIZERS", "Serializer", "choose_serializer", "get_serializer", "load_output", "save_output"]

#: Serializer name → "module:Class", tried in this order when a step does not force one.
SERIALIZERS: dict[str, str] = {
    "parquet": "modelyard.pipelines._serializers:ParquetSerializer",
    "npy": "modelyard.pipelines._serializers:NpySerializer",
    "model": "modelyard.pipelines._serializers:FlavorSerializer",
    "json": "modelyard.pipelines._serializers:JsonSerializer",
    "cloudpickle": "modelyard.pipelines._serializers:CloudpickleSerializer",
}

#: Serializers that can run code on load; used only when a step explicitly allows them.
UNSAFE = frozenset({"cloudpickle"})


class Serializer:
    """Save an object to files in a folder and load it back; ``version`` enters the cache key."""

    name: str = ""
    version: str = "1"
    filename: str = "data"

    def accepts(self, obj: Any) -> bool:
        raise NotImplementedError

    def accepts_type(self, tp: type) -> bool:
        """True when instances of ``tp`` can be saved (used to check return annotations)."""
        return False

    def save(self, obj: Any, path: Path) -> dict[str, Any]:
        """Write ``obj`` to ``path`` (a file); return extra meta (e.g. the flavor)."""
        raise NotImplementedError

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        raise NotImplementedError


def _module_of(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


class ParquetSerializer(Serializer):
    """pandas and polars DataFrames and Arrow tables as Parquet."""

    name = "parquet"
    filename = "data.parquet"

    def accepts(self, obj: Any) -> bool:
        mod = _module_of(obj)
        cls = type(obj).__name__
        return (
            (mod == "pandas" and cls == "DataFrame")
            or (mod == "polars" and cls == "DataFrame")
            or (mod == "pyarrow" and cls == "Table")
        )

    def accepts_type(self, tp: type) -> bool:
        return tp.__name__ in ("DataFrame", "Table") and tp.__module__.split(".")[0] in (
            "pandas",
            "polars",
            "pyarrow",
        )

    def save(self, obj: Any, path: Path) -> dict[str, Any]:
        mod = _module_of(obj)
        if mod == "pandas":
            obj.to_parquet(path)
        elif mod == "polars":
            obj.write_parquet(path)
        else:
            import pyarrow.parquet as pq

            pq.write_table(obj, path)
        return {"library": mod}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        kind = meta.get("library", "pandas")
        if kind == "pandas":
            import pandas as pd

            return pd.read_parquet(path)
        if kind == "polars":
            import polars as pl

            return pl.read_parquet(path)
        import pyarrow.parquet as pq

        return pq.read_table(path)


class NpySerializer(Serializer):
    """numpy arrays (not object arrays) as ``.npy`` without pickle."""

    name = "npy"
    filename = "data.npy"

    def accepts(self, obj: Any) -> bool:
        return type(obj).__module__ == "numpy" and type(obj).__name__ == "ndarray" and obj.dtype != object

    def accepts_type(self, tp: type) -> bool:
        return tp.__module__ == "numpy" and tp.__name__ == "ndarray"

    def save(self, obj: Any, path: Path) -> dict[str, Any]:
        import numpy as np

        with open(path, "wb") as f:
            np.save(f, obj, allow_pickle=False)
        return {}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        import numpy as np

        return np.load(path, allow_pickle=False)


#: Top-level packages whose models the registry's flavors save (checked before importing them).
_MODEL_PACKAGES = frozenset({"sklearn", "xgboost", "lightgbm", "torch", "onnx"})


class FlavorSerializer(Serializer):
    """Models, through the registry's flavors (skops for scikit-learn, native formats elsewhere)."""

    name = "model"
    filename = "model"

    def _flavor(self, obj: Any) -> Any:
        from modelyard.registry.flavors import DETECTION_ORDER, get_flavor

        for name in DETECTION_ORDER:
            flavor = get_flavor(name)
            if flavor.detects(obj):
                return flavor
        return None

    def accepts(self, obj: Any) -> bool:
        return _module_of(obj) in _MODEL_PACKAGES and self._flavor(obj) is not None

    def accepts_type(self, tp: type) -> bool:
        return tp.__module__.split(".")[0] in _MODEL_PACKAGES

    def save_files(self, obj: Any) -> tuple[dict[str, bytes], dict[str, Any]]:
        from modelyard.registry._model import _versions

        flavor = self._flavor(obj)
        files, options = flavor.save(obj)
        files = {k: _canonical_skops(v) if k.endswith(".skops") else v for k, v in files.items()}
        return files, {"flavor": flavor.name, "options": options, "packages": _versions(flavor.packages)}

    def load_files(self, files: dict[str, bytes], meta: dict[str, Any]) -> Any:
        from modelyard.registry._model import _versions
        from modelyard.registry.flavors import DETECTION_ORDER, get_flavor

        if meta.get("flavor") not in DETECTION_ORDER:  # what save_files can write; never pyfunc (a pickle)
            raise SerializationError(
                f"This model output names flavor {meta.get('flavor')!r}; step outputs are loaded only with "
                f"{list(DETECTION_ORDER)}."
            )
        flavor = get_flavor(meta["flavor"])
        now = _versions(flavor.packages)
        changed = {k: (v, now.get(k)) for k, v in (meta.get("packages") or {}).items() if now.get(k) != v}
        if changed:
            warnings.warn(
                "This output was saved with other package versions: "
                + ", ".join(f"{k} {a} (now {b})" for k, (a, b) in changed.items()),
                stacklevel=3,
            )
        options = meta.get("options") or {}
        if not isinstance(options, dict):
            raise SerializationError("This model output's stored options are not a mapping.")
        return flavor.load(files, options)


def _canonical_skops(data: bytes) -> bytes:
    """The same skops file with deterministic bytes, so equal models get equal digests.

    skops names array members and ``__id__`` fields after ``id()`` of the objects and stamps
    members with the current time; renumber ids in document order and fix the timestamps.
    """
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    schema = json.loads(src.read("schema.json"))
    ids: dict[int, int] = {}

    def new_id(old: int) -> int:
        return ids.setdefault(old, len(ids) + 1)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for k, v in node.items():
                if k == "__id__" and isinstance(v, int):
                    out[k] = new_id(v)
                elif k == "file" and isinstance(v, str) and v.endswith(".npy") and v[:-4].isdigit():
                    out[k] = f"{new_id(int(v[:-4]))}.npy"
                else:
                    out[k] = walk(v)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    schema = walk(schema)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as dst:
        members = {"schema.json": json.dumps(schema, indent=2).encode()}
        for info in src.infolist():
            name = info.filename
            if name == "schema.json":
                continue
            if name.endswith(".npy") and name[:-4].isdigit():
                name = f"{new_id(int(name[:-4]))}.npy"
            members[name] = src.read(info)
        for name in sorted(members):
            dst.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), members[name])
    return buf.getvalue()


class JsonSerializer(Serializer):
    """Plain data: None, bool, int, float, str and lists/dicts of them (str keys)."""

    name = "json"
    filename = "data.json"

    def accepts(self, obj: Any) -> bool:
        return _plain(obj)

    def accepts_type(self, tp: type) -> bool:
        return tp in (int, float, str, bool, list, dict, type(None))

    def save(self, obj: Any, path: Path) -> dict[str, Any]:
        path.write_text(json.dumps(obj, sort_keys=True, allow_nan=True))
        return {"tuple": isinstance(obj, tuple)}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        value = json.loads(path.read_text())
        return tuple(value) if meta.get("tuple") else value


def _plain(obj: Any, depth: int = 0) -> bool:
    if depth > 100:
        return False
    if obj is None or type(obj) in (bool, int, float, str):
        return True
    if type(obj) in (list, tuple):
        return all(_plain(v, depth + 1) for v in obj)
    if type(obj) is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in obj.items())
    return False


class CloudpickleSerializer(Serializer):
    """Any object, with cloudpickle; loading runs code, so a step must allow it explicitly."""

    name = "cloudpickle"
    filename = "data.pkl"

    def accepts(self, obj: Any) -> bool:
        return True

    def accepts_type(self, tp: type) -> bool:
        return True

    def save(self, obj: Any, path: Path) -> dict[str, Any]:
        import cloudpickle

        try:
            path.write_bytes(cloudpickle.dumps(obj))
        except Exception as exc:
            raise SerializationError(f"cloudpickle could not pickle the {type(obj).__name__}: {exc}") from exc
        return {}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        import cloudpickle

        return cloudpickle.loads(path.read_bytes())


_instances: dict[str, Serializer] = {}


def get_serializer(name: str) -> Serializer:
    """The serializer registered under ``name``."""
    inst = _instances.get(name)
    if inst is None:
        try:
            module, attr = SERIALIZERS[name].split(":")
        except KeyError:
            from modelyard.errors import did_you_mean

            raise SerializationError(
                f"No serializer is named {name!r}.{did_you_mean(name, SERIALIZERS)} Known: "
                f"{', '.join(SERIALIZERS)}."
            ) from None
        inst = _instances[name] = getattr(importlib.import_module(module), attr)()
    return inst


def _safe_names() -> list[str]:
    return [n for n in SERIALIZERS if n not in UNSAFE]


def choose_serializer(
    obj: Any, step: str, forced: str | None = None, allow_pickle: bool = False
) -> Serializer:
    """The serializer for ``obj`` (first safe one that accepts it); SerializationError when none does."""
    if forced is not None:
        ser = get_serializer(forced)
        if not ser.accepts(obj):
            raise SerializationError(
                f"Step {step!r} declares serializer={forced!r}, which cannot save a {type(obj).__name__}."
            )
        return ser
    for name in _safe_names():
        ser = get_serializer(name)
        if ser.accepts(obj):
            return ser
    if allow_pickle:
        return get_serializer("cloudpickle")
    raise SerializationError(
        f"Step {step!r} returned a {type(obj).__module__}.{type(obj).__name__}, which no safe "
        f"serializer handles "
        f"({', '.join(_safe_names())}). Return a DataFrame, an Arrow table, a numpy array, a scikit-learn "
        "model or plain data, or allow pickling with @yard.step(allow_pickle=True)."
    )


def check_return_annotation(fn: Any, step: str, forced: str | None, allow_pickle: bool) -> None:
    """Before anything runs: a return annotation that is a class no serializer takes is an error."""
    if forced is not None or allow_pickle:
        return
    try:
        import typing

        tp = typing.get_type_hints(fn).get("return")
    except Exception:
        return
    if not isinstance(tp, type) or tp is type(None):
        return
    for name in _safe_names():
        if get_serializer(name).accepts_type(tp):
            return
    raise SerializationError(
        f"Step {step!r} is annotated to return {tp.__module__}.{tp.__qualname__}, which no safe serializer "
        f"handles ({', '.join(_safe_names())}). Return a DataFrame, an Arrow table, a numpy array, a "
        "scikit-learn model or plain data, or allow pickling with @yard.step(allow_pickle=True)."
    )


def _store_file(blobs: BlobStore, path: Path) -> tuple[str, int]:
    """Move a finished local file into the blob store (no copy when the store is a local folder)."""
    if blobs.is_local and path.parent == blobs._tmp_file().parent:
        digest = hash_file(path)
        size = path.stat().st_size
        if blobs.exists(digest):
            path.unlink()
        else:
            with open(path, "rb+") as f:
                os.fsync(f.fileno())
            blobs._publish(path, digest)
        return digest, size
    try:
        return blobs.put_file(path)
    finally:
        path.unlink(missing_ok=True)


def save_output(blobs: BlobStore, obj: Any, ser: Serializer, *, step: str) -> tuple[str, int]:
    """Serialize ``obj`` into the blob store; return ``(output manifest digest, size)``."""
    base = {
        "serializer": ser.name,
        "serializer_version": ser.version,
        "type": f"{type(obj).__module__}.{type(obj).__qualname__}",
        "step": step,
    }
    if hasattr(ser, "save_files"):
        try:
            files, extra = ser.save_files(obj)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"Saving the output of step {step!r} ({type(obj).__name__}) with the {ser.name} "
                f"serializer failed: {exc}"
            ) from exc
        entries = [
            ManifestEntry(name, blobs.put_bytes(data), len(data)) for name, data in sorted(files.items())
        ]
        manifest = blobs.put_manifest(entries, kind="pipeline-output", **base, **extra)
        return manifest, sum(e.size for e in entries)
    if blobs.is_local:
        tmp = blobs._tmp_file()
        tmp = tmp.with_name(tmp.stem + "-" + ser.filename)
    else:
        fd, name = tempfile.mkstemp(suffix="-" + ser.filename)
        os.close(fd)
        tmp = Path(name)
    try:
        extra = ser.save(obj, tmp)
    except SerializationError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as exc:
        tmp.unlink(missing_ok=True)
        raise SerializationError(
            f"Saving the output of step {step!r} ({type(obj).__name__}) with the {ser.name} "
            f"serializer failed: {exc}"
        ) from exc
    digest, size = _store_file(blobs, tmp)
    meta = {
        "serializer": ser.name,
        "serializer_version": ser.version,
        "type": f"{type(obj).__module__}.{type(obj).__qualname__}",
        "step": step,
        **extra,
    }
    manifest = blobs.put_manifest([ManifestEntry(ser.filename, digest, size)], kind="pipeline-output", **meta)
    return manifest, size


def output_exists(blobs: BlobStore, digest: str) -> bool:
    """True when an output manifest and every blob it lists are still stored."""
    try:
        if not blobs.exists(digest):
            return False
        return all(blobs.exists(e.digest) for e in blobs.read_manifest(digest))
    except Exception:
        return False


def load_output(
    blobs: BlobStore,
    digest: str,
    *,
    serializer: str | None = None,
    allow_pickle: bool = False,
    step: str | None = None,
) -> Any:
    """Load a step output from its manifest digest (every blob is verified first).

    ``serializer`` and ``allow_pickle`` are what the step that wrote it declares (its code, not the
    stored metadata): the stored serializer name must be the declared one (``None``: any safe one,
    or cloudpickle when ``allow_pickle``), else nothing is loaded.
    """
    try:
        doc = json.loads(blobs.read_bytes(digest))
    except (ValueError, UnicodeDecodeError):
        doc = None
    meta = dict(doc.get("meta") or {}) if isinstance(doc, dict) else {}
    entries = doc.get("entries") or [] if isinstance(doc, dict) else []
    if meta.get("kind") != "pipeline-output" or not entries:
        raise SerializationError(f"Blob {digest[:12]}… is not a pipeline step output.")
    written = doc.get("modelyard_version", __version__)
    if written != __version__:
        warnings.warn(
            f"Output {digest[:12]}… was written by modelyard {written}; loading it with {__version__}.",
            stacklevel=2,
        )
    stored = meta.get("serializer")
    allowed = (
        [serializer] if serializer is not None else _safe_names() + (["cloudpickle"] if allow_pickle else [])
    )
    who = f"step {step or meta.get('step')!r}"
    if stored in UNSAFE and not allow_pickle:
        raise SerializationError(
            f"Refusing to load the cached output {digest[:12]}… of {who}: it is stored as a "
            f"{stored} pickle, which "
            "runs code when loaded, and the step does not declare allow_pickle=True."
        )
    if stored not in allowed:
        raise SerializationError(
            f"Refusing to load the cached output {digest[:12]}… of {who}: it names serializer "
            f"{stored!r}, but the "
            f"step declares {serializer or 'auto'!r} (accepted: {', '.join(allowed)})."
        )
    ser = get_serializer(str(stored))
    if hasattr(ser, "load_files"):
        return ser.load_files({e["path"]: blobs.read_bytes(e["digest"]) for e in entries}, meta)
    entry = entries[0]
    if blobs.is_local:
        path = blobs.local_path(entry["digest"])
        if not path.exists():
            raise BlobNotFoundError(
                f"Blob {entry['digest'][:12]}… of output {digest[:12]}… (step "
                f"{meta.get('step')!r}) is missing; "
                "rerun the pipeline to recompute it."
            )
        if hash_file(path) != entry["digest"]:
            raise blobs._corrupt(entry["digest"])
        return ser.load(path, meta)
    with tempfile.TemporaryDirectory() as d:
        p = blobs.get_file(entry["digest"], Path(d) / ser.filename)
        return ser.load(p, meta)
