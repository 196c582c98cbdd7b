"""The registry's Python API: log, register, load, alias, roll back, archive.

import modelyard as yard

with yard.start_run(experiment="churn") as run:
    mv = run.log_model(model, name="churn-clf", input_example=X[:5])
yard.registry.set_alias("churn-clf", "production", version=mv.version, reason="beats v1")
model = yard.load_model("churn-clf@production")
model.predict(df)
"""

from __future__ import annotations

import os
from typing import Any

from modelyard._workspace import Workspace, get_workspace
from modelyard.errors import NotFoundError, did_you_mean
from modelyard.registry._model import LoadedModel, PackedModel, load_package, pack_model
from modelyard.registry._service import (
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    RegistryService,
    parse_ref,
)
from modelyard.registry._signature import Signature

__all__ = [
    "archive",
    "audit_log",
    "delete_alias",
    "get_model",
    "get_model_version",
    "list_models",
    "list_versions",
    "load_model",
    "log_model",
    "register_model",
    "register_torch_class",
    "restore",
    "rollback",
    "set_alias",
    "update_model",
]

Uri = str | os.PathLike[str] | Workspace | None


def _svc(uri: Uri) -> RegistryService:
    return RegistryService(get_workspace(uri))


def log_model(
    model: Any,
    *,
    name: str | None = None,
    run_id: str | None = None,
    artifact_path: str = "model",
    input_example: Any = None,
    flavor: str | None = None,
    signature: Signature | dict[str, Any] | None = None,
    requirements: list[str] | None = None,
    description: str | None = None,
    model_description: str | None = None,
    tags: dict[str, Any] | None = None,
    metrics: dict[str, float] | None = None,
    uri: Uri = None,
    **flavor_options: Any,
) -> ModelVersion | PackedModel:
    """Save ``model`` in its flavor's safe format; register it as the next version of ``name``.

    With ``run_id`` the version records the run (lineage) and its metrics; while that run is still
    running the model is also stored as its artifact ``artifact_path`` (``runs:/RUN_ID/model``).
    Without ``name`` the model is only stored with the run and the package is returned.
    """
    ws = get_workspace(uri)
    packed = pack_model(
        ws,
        model,
        flavor=flavor,
        input_example=input_example,
        signature=signature,
        requirements=requirements,
        flavor_options=flavor_options,
    )
    run_metrics: dict[str, float] = {}
    if run_id is not None:
        from modelyard.tracking._service import TrackingService

        tracking = TrackingService(ws)
        run = tracking.get_run(run_id)
        if run.status.value == "running":  # an ended run's artifacts are frozen; the version still links it
            tracking.record_artifact(run.id, artifact_path, "dir", packed.manifest_digest, packed.size)
        run_id = run.id
        run_metrics = dict(run.metrics)
    if name is None:
        return packed
    return RegistryService(ws).register_version(
        name,
        flavor=packed.flavor,
        manifest_digest=packed.manifest_digest,
        size=packed.size,
        signature=packed.signature,
        requirements=packed.requirements,
        run_id=run_id,
        metrics={**run_metrics, **(metrics or {})},
        description=description,
        model_description=model_description,
        tags=tags,
    )


def register_model(model: Any, name: str, **kwargs: Any) -> ModelVersion:
    """Register ``model`` as the next version of ``name`` without a run (see :func:`log_model`)."""
    mv = log_model(model, name=name, **kwargs)
    assert isinstance(mv, ModelVersion)
    return mv


def load_model(
    ref: str,
    uri: Uri = None,
    *,
    trusted_types: list[str] | None = None,
    allow_pickle: bool = False,
    model_class: type | None = None,
) -> LoadedModel:
    """Load a model: ``"name@alias"``, ``"name/3"``, ``"name@latest"``, ``"name"`` or
    ``"runs:/RUN_ID/model"``.

    Every blob is checked against its digest before anything is deserialized
    (:class:`~modelyard.errors.IntegrityError` otherwise), and nothing stored chooses code to run:

    - ``trusted_types`` extends the types and functions a scikit-learn (skops) file may use beyond
      the reviewed estimator/array table (inspect them first: a function can run any code);
    - ``allow_pickle=True`` is required to load a ``pyfunc`` (cloudpickle) model, which runs code;
    - ``model_class`` is the ``nn.Module`` class a PyTorch state-dict model is built with (or
      register it with :func:`register_torch_class`); the class named in the file is never imported.

    A package whose flavor differs from the one the registry recorded is refused. Package versions
    that differ from those the model was saved with produce a :class:`RequirementsMismatchWarning`.
    """
    ws = get_workspace(uri)
    parsed = parse_ref(ref)
    trust: dict[str, Any] = {
        "trusted_types": trusted_types,
        "allow_pickle": allow_pickle,
        "model_class": model_class,
    }
    if parsed.run_id is not None:
        from modelyard.tracking._service import TrackingService

        run = TrackingService(ws).get_run(parsed.run_id)
        match = [a for a in run.artifacts if a.path == parsed.path]
        if not match:
            raise NotFoundError(
                f"Run {run.id} has no model at {parsed.path!r}."
                + did_you_mean(parsed.path or "", [a.path for a in run.artifacts])
                + " Log one with run.log_model(model)."
            )
        digest = match[0].digest
        try:  # the flavor log_model wrote into the manifest; load_package reports a blob that is no manifest
            recorded = ws.blobs.manifest_meta(digest).get("flavor")
        except (ValueError, AttributeError):
            recorded = None
        raw, fl, meta = load_package(ws, digest, expected_flavor=recorded, label=str(parsed), **trust)
        return LoadedModel(raw, fl, meta, run_id=run.id, manifest_digest=digest)
    mv = RegistryService(ws).get_version(str(parsed))
    raw, fl, meta = load_package(ws, mv.manifest_digest, expected_flavor=mv.flavor, label=mv.ref, **trust)
    return LoadedModel(
        raw, fl, meta, name=mv.name, version=mv.version, run_id=mv.run_id, manifest_digest=mv.manifest_digest
    )


def register_torch_class(cls: type) -> type:
    """Register an ``nn.Module`` class so its state-dict models load without ``model_class=`` (a decorator
    too)."""
    from modelyard.registry.flavors.torch import register_torch_class as register

    return register(cls)


def get_model_version(name: str, version: int | str | None = None, *, uri: Uri = None) -> ModelVersion:
    """A version by ``(name, 3)``, ``(name, "production")`` or a reference ``"name@production"``."""
    return _svc(uri).get_version(name, version)


def get_model(name: str, *, uri: Uri = None) -> RegisteredModel:
    """A registered model (description, tags, newest version, aliases)."""
    return _svc(uri).get_model(name)


def list_models(*, uri: Uri = None) -> list[RegisteredModel]:
    """Every registered model, by name."""
    return _svc(uri).list_models()


def list_versions(name: str, *, include_archived: bool = True, uri: Uri = None) -> list[ModelVersion]:
    """Versions of ``name``, newest first."""
    return _svc(uri).list_versions(name, include_archived=include_archived)


def update_model(
    name: str,
    *,
    description: str | None = None,
    tags: dict[str, Any] | None = None,
    reason: str | None = None,
    uri: Uri = None,
) -> RegisteredModel:
    """Change a model's description and/or tags (audited)."""
    return _svc(uri).update_model(name, description=description, tags=tags, reason=reason)


def set_alias(
    name: str, alias: str, version: int, *, reason: str | None = None, force: bool = False, uri: Uri = None
) -> ModelVersion:
    """Point ``alias`` (``production``, ``staging``, any name) at ``version``: atomic and audited.

    A protected alias (``production`` by default) first runs the gate policy attached to the model
    and refuses when a gate fails; ``force=True`` with a ``reason`` overrides, audited.
    """
    return _svc(uri).set_alias(name, alias, version, reason=reason, force=force)


def delete_alias(name: str, alias: str, *, reason: str | None = None, uri: Uri = None) -> None:
    """Remove an alias (audited)."""
    _svc(uri).delete_alias(name, alias, reason=reason)


def rollback(name: str, alias: str, *, reason: str | None = None, uri: Uri = None) -> ModelVersion:
    """Point ``alias`` back at the version it pointed at before its last move."""
    return _svc(uri).rollback(name, alias, reason=reason)


def archive(name: str, version: int, *, reason: str | None = None, uri: Uri = None) -> ModelVersion:
    """Archive a version (it can no longer be aliased or be ``latest``)."""
    return _svc(uri).archive(name, version, reason=reason)


def restore(name: str, version: int, *, reason: str | None = None, uri: Uri = None) -> ModelVersion:
    """Restore an archived version to ``ready``."""
    return _svc(uri).restore(name, version, reason=reason)


def audit_log(name: str, *, version: int | None = None, uri: Uri = None) -> list[AuditEntry]:
    """The append-only audit log of ``name``, oldest first."""
    return _svc(uri).audit_log(name, version=version)
