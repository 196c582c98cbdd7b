"""Inside the image: verify the baked model packages, and serve them.

The build context's ``model/`` folder (``/opt/yard/model`` in the image) holds ``yard-image.json``
(which model versions are baked and which references name them), ``serve.yaml`` (the deployment
spec) and ``blobs/`` (the packages, laid out as a blob store: every file named by its digest).

``python -m modelyard.deploy verify DIR`` reads every package through the blob store, which checks
each file against its digest, so a build fails on the first byte that differs. ``python -m
modelyard.deploy serve`` runs the model server with :class:`ImageLoader`: a reference the image
bakes (``churn-clf@production`` as resolved at build time, or ``churn-clf/7``) loads from the
image; any other loads from the store at ``YARD_URI`` (a team store, or nothing for ``/tmp/yard``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelyard.errors import InvalidArgumentError, NotFoundError, SerializationError

__all__ = [
    "INDEX_FILE",
    "SPEC_FILE",
    "BakedModel",
    "ImageIndex",
    "ImageLoader",
    "read_index",
    "serve_image",
    "verify_image",
    "warm_caches",
]

T = TypeVar("T")

INDEX_FILE = "yard-image.json"
SPEC_FILE = "serve.yaml"
FORMAT = "modelyard.image"
_ENV_HOME = "YARD_IMAGE_HOME"
_ENV_SPEC = "YARD_IMAGE_SPEC"


@dataclass(frozen=True)
class BakedModel:
    """One model version inside the image, and the references that resolved to it at build time."""

    name: str
    version: int
    manifest_digest: str
    flavor: str
    run_id: str | None
    refs: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "manifest_digest": self.manifest_digest,
            "flavor": self.flavor,
            "run_id": self.run_id,
            "refs": list(self.refs),
        }


@dataclass(frozen=True)
class ImageIndex:
    """``yard-image.json``: the models baked into an image (none with ``--no-bake``)."""

    modelyard_version: str
    baked: bool
    allow_pickle: bool
    models: tuple[BakedModel, ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "format_version": 1,
                "modelyard_version": self.modelyard_version,
                "baked": self.baked,
                "allow_pickle": self.allow_pickle,
                "models": [m.to_dict() for m in self.models],
            },
            indent=2,
        )


def _ref_key(ref: str) -> tuple[str, str]:
    from modelyard.serving._spec import parse_model_ref

    return parse_model_ref(ref)


def read_index(home: str | os.PathLike[str]) -> ImageIndex:
    """Parse ``yard-image.json`` in ``home``; every field is checked (the file is data, not trusted)."""
    path = Path(home) / INDEX_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InvalidArgumentError(
            f"{path} does not exist: {home} is not a model folder written by yard build."
        ) from None
    except (OSError, ValueError) as exc:
        raise SerializationError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise SerializationError(f"{path} is not a modelyard image index (format {FORMAT!r}).")
    models = []
    for i, m in enumerate(raw.get("models") or []):
        ok = (
            isinstance(m, dict)
            and isinstance(m.get("name"), str)
            and isinstance(m.get("version"), int)
            and isinstance(m.get("manifest_digest"), str)
            and isinstance(m.get("flavor"), str)
            and isinstance(m.get("refs"), list)
            and all(isinstance(r, str) for r in m["refs"])
        )
        if not ok:
            raise SerializationError(
                f"{path}: models[{i}] needs name, version (a number), manifest_digest, flavor and refs."
            )
        run_id = m.get("run_id")
        models.append(
            BakedModel(
                m["name"],
                m["version"],
                m["manifest_digest"],
                m["flavor"],
                run_id if isinstance(run_id, str) else None,
                tuple(m["refs"]),
            )
        )
    return ImageIndex(
        modelyard_version=str(raw.get("modelyard_version", "")),
        baked=bool(raw.get("baked", True)),
        allow_pickle=bool(raw.get("allow_pickle", False)),
        models=tuple(models),
    )


def _blob_workspace(home: Path) -> Any:
    """A workspace whose blob store is the image's ``blobs/`` (its metadata store is never opened)."""
    from modelyard._workspace import Workspace

    return Workspace(os.environ.get("YARD_URI") or "/tmp/yard", blob_uri=str(home / "blobs"))


def _checked(label: str, where: str, read: Callable[[str], T], digest: str) -> T:
    """``read(digest)``; a blob that is missing or does not match its digest raises the same error
    naming the model ``label`` and ``where`` (the manifest, a file)."""
    from modelyard.errors import BlobNotFoundError, IntegrityError

    try:
        return read(digest)
    except (IntegrityError, BlobNotFoundError) as exc:
        raise type(exc)(
            f"Model {label}: {where} is missing or does not match its digest; the image is not built. {exc}"
        ) from None


def verify_image(home: str | os.PathLike[str]) -> list[str]:
    """Read every baked package and file through the blob store, which checks each against its
    digest; return one line per model verified. Raises :class:`~modelyard.errors.IntegrityError`
    (or ``BlobNotFoundError``/``SerializationError``) naming the model and file that do not match."""
    from modelyard.registry._model import META_FILE

    root = Path(home)
    index = read_index(root)
    blobs = _blob_workspace(root).blobs
    done = []
    for m in index.models:
        where = f"its manifest {m.manifest_digest[:12]}… in {root / 'blobs'}"
        entries = _checked(m.label, where, blobs.read_manifest, m.manifest_digest)
        size = 0
        meta: dict[str, Any] = {}
        for e in entries:
            where = f"file {e.path!r} (digest {e.digest[:12]}…)"
            data = _checked(m.label, where, blobs.read_bytes, e.digest)
            size += len(data)
            if e.path == META_FILE:
                meta = json.loads(data)
        if meta.get("flavor") != m.flavor:
            raise SerializationError(
                f"Model {m.label}: its package says flavor {meta.get('flavor')!r}, the registry recorded "
                f"{m.flavor!r}; the image is not built."
            )
        done.append(
            f"{m.label}: {len(entries)} files, {size} bytes, manifest {m.manifest_digest[:12]}… verified"
        )
    return done


def warm_caches() -> list[str]:
    """Compute now, at image build time, what the server would otherwise compute at every start:
    skops' trusted-type lists (about a second per process, :mod:`~modelyard.registry.flavors._skops_cache`),
    written to ``YARD_CACHE_DIR`` (the image sets ``/opt/yard/cache``). The files are then made
    read-only (the server's user reads them; it cannot rewrite them even without a read-only root
    filesystem). Trust is unchanged: the server keeps only the cached names that are also in the
    reviewed table. Returns one line per cache written; raises when a cache could not be written,
    so the build fails instead of shipping an image that scans at every start."""
    import importlib.util
    import stat

    from modelyard.registry.flavors import _skops_cache

    if os.environ.get(_skops_cache.CACHE_ENV) is None:
        raise InvalidArgumentError(
            f"Set {_skops_cache.CACHE_ENV} to the folder the server reads its caches from, then warm them."
        )
    if importlib.util.find_spec("skops") is None:
        return ["skops is not installed: nothing to cache"]
    if "skops.io" in sys.modules:
        raise InvalidArgumentError("skops.io is already imported in this process: warm in a fresh one.")
    from modelyard.registry.flavors.sklearn import _skops_io

    _skops_io()
    path = _skops_cache.cache_path()
    if _skops_cache.cached_estimators() is None:
        raise SerializationError(f"skops' trusted-type cache was not written to {path}.")
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    path.parent.chmod(0o555)
    return [f"{path}: skops' trusted-type lists ({path.stat().st_size} bytes)"]


class ImageLoader:
    """The server's model loader inside an image: baked references from the image, others from
    the store at ``uri`` (``YARD_URI``)."""

    def __init__(self, home: str | os.PathLike[str], uri: str | None = None) -> None:
        self.home = Path(home)
        self.uri = uri
        self.index = read_index(self.home)
        self._by_ref: dict[tuple[str, str], BakedModel] = {}
        for m in self.index.models:
            for ref in (*m.refs, m.label):
                self._by_ref[_ref_key(ref)] = m
        self._ws: Any = None

    def find(self, ref: str) -> BakedModel | None:
        """The baked model ``ref`` names, or None."""
        return self._by_ref.get(_ref_key(ref))

    def __call__(self, ref: str, *, allow_pickle: bool = False) -> Any:
        allow = allow_pickle or self.index.allow_pickle
        baked = self.find(ref)
        if baked is None:
            return self._from_store(ref, allow)
        from modelyard.registry._model import LoadedModel, load_package, read_input_example

        if self._ws is None:
            self._ws = _blob_workspace(self.home)
        raw, fl, meta = load_package(
            self._ws,
            baked.manifest_digest,
            expected_flavor=baked.flavor,
            label=baked.label,
            allow_pickle=allow,
        )
        model = LoadedModel(
            raw,
            fl,
            meta,
            name=baked.name,
            version=baked.version,
            run_id=baked.run_id,
            manifest_digest=baked.manifest_digest,
        )
        try:
            model.input_example = read_input_example(self._ws, baked.manifest_digest)
        except Exception:  # warm-up then builds rows from the signature
            model.input_example = None
        return model

    def _from_store(self, ref: str, allow_pickle: bool) -> Any:
        from modelyard.registry import load_model
        from modelyard.registry._model import read_input_example

        try:
            model = load_model(ref, self.uri, allow_pickle=allow_pickle)
        except NotFoundError as exc:
            baked = ", ".join(f"{m.label} ({', '.join(m.refs)})" for m in self.index.models) or "none"
            raise NotFoundError(
                f"Model {ref!r} is not baked into this image (baked: {baked}) and the store at "
                f"{self.uri or 'YARD_URI'} cannot load it: {exc} Set YARD_URI to the team store to load "
                "models that are not baked."
            ) from None
        try:
            from modelyard._workspace import get_workspace

            digest = model.manifest_digest
            model.input_example = read_input_example(get_workspace(self.uri), digest) if digest else None
        except Exception:
            model.input_example = None
        return model


def _spec_path(home: Path, spec: str | None) -> str:
    path = spec or os.environ.get(_ENV_SPEC) or str(home / SPEC_FILE)
    if not Path(path).is_file():
        raise InvalidArgumentError(f"The deployment spec {path!r} does not exist in the image.")
    return path


def _server(home: Path, spec_path: str, uri: str | None, *, prediction_log: bool = True) -> Any:
    from modelyard.serving import ModelServer

    return ModelServer(
        spec_path, uri=uri, loader=ImageLoader(home, uri), watch=True, prediction_log=prediction_log
    )


def worker_app() -> Any:
    """The app factory of each worker process when the image serves with several workers."""
    from modelyard.serving._server import _freeze_heap

    home = Path(os.environ.get(_ENV_HOME) or "/opt/yard/model")
    server = _server(home, _spec_path(home, None), os.environ.get("YARD_URI") or None).start()
    _freeze_heap()
    return server


def serve_image(
    home: str | os.PathLike[str],
    *,
    spec: str | None = None,
    host: str = "0.0.0.0",
    port: int = 8080,
    workers: int | str = 1,
) -> None:
    """Serve the image's deployment spec (or ``spec``, e.g. a mounted ConfigMap) until stopped.

    The spec file is watched: editing it swaps the models while serving. Admin swaps
    (``PUT /admin/spec``) are not written back, since the spec file may be read-only."""
    import uvicorn

    from modelyard.serving._server import _freeze_heap, resolve_workers, uvicorn_config

    root = Path(home)
    spec_path = _spec_path(root, spec)
    uri = os.environ.get("YARD_URI") or None
    n = resolve_workers(workers)
    probe = _server(root, spec_path, uri, prediction_log=n == 1).start()
    dep = probe.deployment
    models = ", ".join(f"{rt.name}/{rt.version}" for rt in dep.runtimes.values())
    where = "baked" if read_index(root).baked else f"from {uri}"
    print(
        f"Serving {models} ({where}) as {dep.endpoint!r} on http://{host}:{port} with {n} worker"
        f"{'s' if n != 1 else ''}; GET /health/ready.",
        file=sys.stderr,
        flush=True,
    )
    limits = probe.spec.limits if probe.spec else None
    if n == 1:
        _freeze_heap()
        try:
            uvicorn.Server(uvicorn_config(probe, limits, host=host, port=port)).run()
        finally:
            probe.close()
        return
    probe.close()  # loaded once here so a bad spec fails before forking; each worker loads its own
    import tempfile

    from uvicorn.supervisors import Multiprocess

    prom = tempfile.mkdtemp(prefix="yard-prometheus-")
    os.environ.update({_ENV_HOME: str(root), _ENV_SPEC: spec_path, "PROMETHEUS_MULTIPROC_DIR": prom})
    config = uvicorn_config(
        "modelyard.deploy._image:worker_app", limits, factory=True, host=host, port=port, workers=n
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()
