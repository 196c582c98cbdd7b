"""Registry service: registered models, numbered versions, aliases and the audit log.

Every change (model created, version registered, alias set/moved/deleted/rolled back, version
archived/restored, description or tags changed) writes one ``model_audit`` row in the same
transaction as the change itself: who, when, what (JSON detail) and why (reason). The names,
references and records it returns are in ``_refs.py``.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard import _hooks, _rpc
from modelyard._rpc import op, service
from modelyard._shared import now_ms, user_name
from modelyard._version import __version__
from modelyard._workspace import WorkspaceService
from modelyard.errors import (
    BlobNotFoundError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    did_you_mean,
)
from modelyard.registry._refs import (
    ALIAS_MOVE,
    ALIAS_PROTECTED,
    AuditEntry,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    _check_version,
    _loads,
    check_alias,
    check_model_name,
    parse_ref,
)
from modelyard.registry._schema import model_aliases, model_audit, model_versions, registered_models
from modelyard.registry._signature import Signature

__all__ = ["AuditEntry", "ModelRef", "ModelVersion", "RegisteredModel", "RegistryService", "parse_ref"]


@service("registry")
class RegistryService(WorkspaceService):
    """The model registry of one workspace."""

    # -- helpers ---------------------------------------------------------------------------
    def _model_id(self, conn: Connection, name: str) -> int:
        row = conn.execute(sa.select(registered_models.c.id).where(registered_models.c.name == name)).first()
        if row is None:
            names = [r[0] for r in conn.execute(sa.select(registered_models.c.name))]
            hint = did_you_mean(name, names)
            raise NotFoundError(
                f"Model {name!r} is not registered.{hint} List models with `yard models list`; register "
                "one with "
                "run.log_model(model, name=...)."
            )
        return int(row[0])

    @staticmethod
    def _audit(
        conn: Connection,
        model_id: int,
        action: str,
        detail: dict[str, Any],
        *,
        version: int | None = None,
        reason: str | None = None,
    ) -> None:
        conn.execute(
            model_audit.insert().values(
                model_id=model_id,
                version=version,
                action=action,
                detail=json.dumps(detail, sort_keys=True, default=str),
                reason=reason,
                actor=user_name(),
                at=now_ms(),
            )
        )

    def _aliases(self, conn: Connection, model_id: int) -> dict[str, int]:
        rows = conn.execute(
            sa.select(model_aliases.c.alias, model_aliases.c.version)
            .where(model_aliases.c.model_id == model_id)
            .order_by(model_aliases.c.alias)
        )
        return {r.alias: int(r.version) for r in rows}

    def _version_record(self, row: Any, name: str, aliases: dict[str, int]) -> ModelVersion:
        sig = _loads(row.signature, None)
        return ModelVersion(
            name=name,
            version=int(row.version),
            flavor=row.flavor,
            status=row.status,
            run_id=row.run_id,
            manifest_digest=row.manifest_digest,
            size=int(row.size),
            created_at=int(row.created_at),
            created_by=row.created_by,
            modelyard_version=row.modelyard_version,
            description=row.description,
            aliases=sorted(a for a, v in aliases.items() if v == row.version),
            metrics=_loads(row.metrics, {}),
            requirements=_loads(row.requirements, {}),
            signature=Signature.from_dict(sig) if sig else None,
        )

    def _version_row(self, conn: Connection, model_id: int, name: str, version: int) -> Any:
        row = conn.execute(
            sa.select(model_versions).where(
                model_versions.c.model_id == model_id, model_versions.c.version == version
            )
        ).first()
        if row is None:
            have = [
                int(r[0])
                for r in conn.execute(
                    sa.select(model_versions.c.version)
                    .where(model_versions.c.model_id == model_id)
                    .order_by(model_versions.c.version)
                )
            ]
            raise NotFoundError(
                f"Model {name!r} has no version {version}; it has versions {have or 'none'}. "
                f"See `yard models show {name}`."
            )
        return row

    def _resolve_version(self, conn: Connection, model_id: int, name: str, ref: ModelRef) -> int:
        if ref.version is not None:
            return ref.version
        alias = ref.alias or "latest"
        if alias == "latest":
            v = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.model_id == model_id, model_versions.c.status == "ready"
                )
            ).scalar()
            if v is None:
                raise NotFoundError(
                    f"Model {name!r} has no ready version; register one or restore an archived one."
                )
            return int(v)
        aliases = self._aliases(conn, model_id)
        if alias not in aliases:
            hint = did_you_mean(alias, [*aliases, "latest"])
            raise NotFoundError(
                f"Model {name!r} has no alias {alias!r}.{hint} Its aliases: {sorted(aliases) or 'none'}. "
                f"Set one with `yard models alias {name} {alias} VERSION`."
            )
        return aliases[alias]

    # -- models ----------------------------------------------------------------------------
    @op("writer", on=("model", "name"))
    def create_model(
        self, name: str, *, description: str | None = None, tags: dict[str, Any] | None = None
    ) -> RegisteredModel:
        """Register a model name (no versions yet); existing names are left as they are."""
        check_model_name(name)

        def fn(conn: Connection) -> None:
            self._ensure_model(conn, name, description, tags)

        self._write_retrying_unique(fn)
        return self.get_model(name)

    def _ensure_model(
        self, conn: Connection, name: str, description: str | None, tags: dict[str, Any] | None
    ) -> int:
        row = conn.execute(sa.select(registered_models.c.id).where(registered_models.c.name == name)).first()
        if row is not None:
            return int(row[0])
        now = now_ms()
        mid = int(
            conn.execute(
                registered_models.insert()
                .values(
                    name=name,
                    description=description,
                    tags=json.dumps({k: str(v) for k, v in (tags or {}).items()}),
                    last_version=0,
                    created_at=now,
                    updated_at=now,
                )
                .returning(registered_models.c.id)
            ).scalar_one()
        )
        self._audit(conn, mid, "model.create", {"name": name, "description": description, "tags": tags or {}})
        return mid

    def _write_retrying_unique(self, fn: Any) -> Any:
        # Two processes creating the same model name at once: the loser's insert violates the unique
        # name; its retry then finds the row.
        for attempt in range(3):
            try:
                return self.store.write(fn)
            except sa.exc.IntegrityError:
                if attempt == 2:
                    raise
        return None  # pragma: no cover

    @op("writer", on=("model", "name"))
    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> RegisteredModel:
        """Change a model's description and/or merge tags (audited)."""

        def fn(conn: Connection) -> None:
            mid = self._model_id(conn, name)
            row = conn.execute(sa.select(registered_models).where(registered_models.c.id == mid)).one()
            values: dict[str, Any] = {"updated_at": now_ms()}
            detail: dict[str, Any] = {}
            if description is not None:
                values["description"] = description
                detail["description"] = {"from": row.description, "to": description}
            if tags:
                merged = {**_loads(row.tags, {}), **{k: str(v) for k, v in tags.items()}}
                values["tags"] = json.dumps(merged)
                detail["tags"] = tags
            conn.execute(registered_models.update().where(registered_models.c.id == mid).values(**values))
            self._audit(conn, mid, "model.update", detail, reason=reason)

        self.store.write(fn)
        return self.get_model(name)

    @op("reader", on=("model", "name"))
    def get_model(self, name: str) -> RegisteredModel:
        with self.store.read() as conn:
            mid = self._model_id(conn, name)
            return self._model_record(conn, mid)

    def _model_record(self, conn: Connection, mid: int) -> RegisteredModel:
        return self._model_records(conn, registered_models.c.id == mid)[0]

    def _model_records(self, conn: Connection, where: Any = None) -> list[RegisteredModel]:
        """Models (matching ``where``, by name) with their version counts and aliases: three
        statements whatever the number of models."""
        q = (
            sa.select(
                registered_models,
                sa.func.max(model_versions.c.version).label("latest"),
                sa.func.count(model_versions.c.version).label("n_versions"),
            )
            .select_from(
                registered_models.outerjoin(
                    model_versions, model_versions.c.model_id == registered_models.c.id
                )
            )
            .group_by(*registered_models.c)
            .order_by(registered_models.c.name)
        )
        if where is not None:
            q = q.where(where)
        rows = conn.execute(q).all()
        aliases: dict[int, dict[str, int]] = {int(r.id): {} for r in rows}
        if aliases:
            found = conn.execute(
                sa.select(model_aliases.c.model_id, model_aliases.c.alias, model_aliases.c.version)
                .where(model_aliases.c.model_id.in_(list(aliases)))
                .order_by(model_aliases.c.model_id, model_aliases.c.alias)
            )
            for mid, alias, version in found:
                aliases[int(mid)][alias] = int(version)
        return [
            RegisteredModel(
                name=row.name,
                description=row.description,
                tags=_loads(row.tags, {}),
                latest_version=int(row.latest) if row.latest is not None else None,
                versions=int(row.n_versions),
                aliases=aliases[int(row.id)],
                created_at=int(row.created_at),
                updated_at=int(row.updated_at),
            )
            for row in rows
        ]

    @op("reader")
    def list_models(self) -> list[RegisteredModel]:
        with self.store.read() as conn:
            return self._model_records(conn)

    # -- versions --------------------------------------------------------------------------
    @op("writer", on=("model", "name"))
    def register_version(
        self,
        name: str,
        *,
        flavor: str,
        manifest_digest: str,
        size: int,
        signature: Signature | None,
        requirements: dict[str, str],
        run_id: str | None = None,
        metrics: dict[str, float] | None = None,
        description: str | None = None,
        model_description: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Add the next version of ``name`` (creating the model when new); numbers never repeat.

        The package (manifest ``manifest_digest``) must already be in the blob store.
        """
        check_model_name(name)
        if not self.ws.blobs.exists(manifest_digest):
            raise BlobNotFoundError(
                f"Cannot register a version of {name!r}: its package {manifest_digest} is not in the blob "
                "store; upload it first (log_model does)."
            )

        def fn(conn: Connection) -> int:
            mid = self._ensure_model(conn, name, model_description, tags)
            now = now_ms()
            version = int(
                conn.execute(
                    registered_models.update()
                    .where(registered_models.c.id == mid)
                    .values(last_version=registered_models.c.last_version + 1, updated_at=now)
                    .returning(registered_models.c.last_version)
                ).scalar_one()
            )
            conn.execute(
                model_versions.insert().values(
                    model_id=mid,
                    version=version,
                    flavor=flavor,
                    status="ready",
                    run_id=run_id,
                    manifest_digest=manifest_digest,
                    size=size,
                    signature=json.dumps(signature.to_dict()) if signature else None,
                    requirements=json.dumps(requirements, sort_keys=True),
                    metrics=json.dumps(metrics or {}, sort_keys=True, default=str),
                    description=description,
                    modelyard_version=__version__,
                    created_by=user_name(),
                    created_at=now,
                )
            )
            self._audit(
                conn,
                mid,
                "version.register",
                {"flavor": flavor, "run_id": run_id, "manifest": manifest_digest, "size": size},
                version=version,
            )
            return version

        version = self._write_retrying_unique(fn)
        return self.get_version(name, version)

    @op("reader")
    def get_version(self, name: str, version: int | str | None = None) -> ModelVersion:
        """A version by number, or by reference (``name@alias``, ``name/3``) when ``version`` is None."""
        if version is None:
            ref = parse_ref(name)
        elif isinstance(version, str) and not version.isdigit():
            ref = ModelRef(name=name, alias=version)
        else:
            ref = ModelRef(name=name, version=int(version))
        if ref.run_id is not None:
            raise InvalidArgumentError(f"{ref} names a run, not a registered model version.")
        assert ref.name is not None
        with self.store.read() as conn:
            mid = self._model_id(conn, ref.name)
            v = self._resolve_version(conn, mid, ref.name, ref)
            row = self._version_row(conn, mid, ref.name, v)
            return self._version_record(row, ref.name, self._aliases(conn, mid))

    @op("reader", on=("model", "name"))
    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        with self.store.read() as conn:
            mid = self._model_id(conn, name)
            q = sa.select(model_versions).where(model_versions.c.model_id == mid)
            if not include_archived:
                q = q.where(model_versions.c.status == "ready")
            aliases = self._aliases(conn, mid)
            return [
                self._version_record(r, name, aliases)
                for r in conn.execute(q.order_by(model_versions.c.version.desc()))
            ]

    @op("reader", on=("run", "run_id"))
    def versions_of_run(self, run_id: str) -> list[ModelVersion]:
        with self.store.read() as conn:
            rows = conn.execute(
                sa.select(model_versions, registered_models.c.name.label("model_name"))
                .select_from(
                    model_versions.join(
                        registered_models, registered_models.c.id == model_versions.c.model_id
                    )
                )
                .where(model_versions.c.run_id == run_id)
            ).all()
            return [self._version_record(r, r.model_name, self._aliases(conn, int(r.model_id))) for r in rows]

    def _set_status(self, name: str, version: int, status: str, reason: str | None) -> ModelVersion:
        def fn(conn: Connection) -> None:
            mid = self._model_id(conn, name)
            row = self._version_row(conn, mid, name, version)
            if row.status == status:
                return
            if status == "archived":
                pointing = sorted(a for a, v in self._aliases(conn, mid).items() if v == version)
                if pointing:
                    raise ConflictError(
                        f"Version {version} of {name!r} is the target of alias(es) {pointing}; move "
                        "them to another "
                        f"version first (`yard models alias {name} {pointing[0]} N`) and archive it then."
                    )
            conn.execute(
                model_versions.update()
                .where(model_versions.c.model_id == mid, model_versions.c.version == version)
                .values(status=status)
            )
            self._audit(
                conn,
                mid,
                "version.archive" if status == "archived" else "version.restore",
                {"from": row.status, "to": status},
                version=version,
                reason=reason,
            )

        self.store.write(fn)
        return self.get_version(name, version)

    @op("writer", on=("model", "name"))
    def archive(self, name: str, version: int, *, reason: str | None = None) -> ModelVersion:
        """Mark a version archived: it keeps its files but cannot be aliased or be ``latest``."""
        return self._set_status(name, version, "archived", reason)

    @op("writer", on=("model", "name"))
    def restore(self, name: str, version: int, *, reason: str | None = None) -> ModelVersion:
        """Bring an archived version back to ``ready``."""
        return self._set_status(name, version, "ready", reason)

    # -- aliases ---------------------------------------------------------------------------
    @op("writer", on=("model", "name"))
    def set_alias(
        self, name: str, alias: str, version: int, *, reason: str | None = None, force: bool = False
    ) -> ModelVersion:
        """Point ``alias`` at ``version`` in one transaction, with an audit row.

        :data:`ALIAS_MOVE` hooks run first (a protected alias runs its gate policy); ``force`` with a
        ``reason`` overrides failed gates, and the hooks' findings go into the audit row.
        """
        check_alias(alias)
        version = _check_version(version)
        self._require_for_protected(name, alias, "moving")
        extra: dict[str, Any] = {}
        for hook in _hooks.load(ALIAS_MOVE):
            extra.update(hook(name, alias, version, force=force, reason=reason, uri=self.ws) or {})

        def fn(conn: Connection) -> None:
            mid = self._model_id(conn, name)
            row = self._version_row(conn, mid, name, version)
            if row.status != "ready":
                raise ConflictError(
                    f"Version {version} of {name!r} is {row.status}; an alias can only point at a ready "
                    "version. "
                    f"Restore it first with yard.registry.restore({name!r}, {version})."
                )
            self._move_alias(conn, mid, alias, version, "alias.set", reason, extra)

        self.store.write(fn)
        return self.get_version(name, version)

    def _require_for_protected(self, name: str, alias: str, doing: str) -> None:
        """On a server: refuse (403) a caller without maintainer on ``name`` when ``alias`` is
        protected (:data:`ALIAS_PROTECTED` hooks: a gate policy attached to the model lists it)."""
        who = _rpc.current_principal.get()
        if who is None or who.can("maintainer", "model", name):
            return  # a local process, or a caller who may move any alias of this model
        if any(hook(name, alias, uri=self.ws) for hook in _hooks.load(ALIAS_PROTECTED)):
            _rpc.require("maintainer", "model", name, why=f"{doing} protected alias {alias!r}")

    def _move_alias(
        self,
        conn: Connection,
        mid: int,
        alias: str,
        version: int,
        action: str,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        cur = conn.execute(
            sa.select(model_aliases.c.version).where(
                model_aliases.c.model_id == mid, model_aliases.c.alias == alias
            )
        ).scalar()
        now = now_ms()
        if cur is None:
            conn.execute(
                model_aliases.insert().values(model_id=mid, alias=alias, version=version, updated_at=now)
            )
        else:
            conn.execute(
                model_aliases.update()
                .where(model_aliases.c.model_id == mid, model_aliases.c.alias == alias)
                .values(version=version, updated_at=now)
            )
        self._audit(
            conn,
            mid,
            action,
            {"alias": alias, "from": cur, "to": version, **(extra or {})},
            version=version,
            reason=reason,
        )

    @op("writer", on=("model", "name"))
    def delete_alias(self, name: str, alias: str, *, reason: str | None = None) -> None:
        """Remove an alias (audited); a protected alias needs maintainer on the model."""
        self._require_for_protected(name, alias, "deleting")

        def fn(conn: Connection) -> None:
            mid = self._model_id(conn, name)
            cur = self._aliases(conn, mid).get(alias)
            if cur is None:
                raise NotFoundError(f"Model {name!r} has no alias {alias!r}.")
            conn.execute(
                model_aliases.delete().where(model_aliases.c.model_id == mid, model_aliases.c.alias == alias)
            )
            self._audit(
                conn,
                mid,
                "alias.delete",
                {"alias": alias, "from": cur, "to": None},
                version=cur,
                reason=reason,
            )

        self.store.write(fn)

    @op("writer", on=("model", "name"))
    def rollback(self, name: str, alias: str, *, reason: str | None = None) -> ModelVersion:
        """Point ``alias`` back at the version it pointed at before its last move."""
        self._require_for_protected(name, alias, "rolling back")

        def fn(conn: Connection) -> int:
            mid = self._model_id(conn, name)
            cur = self._aliases(conn, mid).get(alias)
            if cur is None:
                raise NotFoundError(f"Model {name!r} has no alias {alias!r}; there is nothing to roll back.")
            last = conn.execute(
                sa.select(model_audit.c.detail)
                .where(
                    model_audit.c.model_id == mid,
                    model_audit.c.action.in_(("alias.set", "alias.rollback")),
                )
                .order_by(model_audit.c.id.desc())
            )
            previous = None
            for (detail,) in last:
                d = json.loads(detail)
                if d.get("alias") == alias:
                    previous = d.get("from")
                    break
            if previous is None:
                raise ConflictError(
                    f"Alias {alias!r} of {name!r} has pointed only at version {cur}; there is no "
                    "earlier version "
                    "to roll back to."
                )
            row = self._version_row(conn, mid, name, int(previous))
            if row.status != "ready":
                raise ConflictError(
                    f"Alias {alias!r} of {name!r} pointed at version {previous} before, but that version is "
                    f"{row.status}. Restore it first, or set the alias explicitly."
                )
            self._move_alias(conn, mid, alias, int(previous), "alias.rollback", reason)
            return int(previous)

        version = self.store.write(fn)
        return self.get_version(name, version)

    # -- audit -----------------------------------------------------------------------------
    @op("reader", on=("model", "name"))
    def audit_log(self, name: str, *, version: int | None = None) -> list[AuditEntry]:
        """Every change to ``name`` (optionally one version), oldest first."""
        with self.store.read() as conn:
            mid = self._model_id(conn, name)
            q = sa.select(model_audit).where(model_audit.c.model_id == mid)
            if version is not None:
                q = q.where(model_audit.c.version == version)
            return [
                AuditEntry(
                    id=int(r.id),
                    name=name,
                    version=r.version,
                    action=r.action,
                    detail=json.loads(r.detail),
                    reason=r.reason,
                    actor=r.actor,
                    at=int(r.at),
                )
                for r in conn.execute(q.order_by(model_audit.c.id))
            ]
