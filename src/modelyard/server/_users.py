"""Users, groups, API tokens and grants of a team server.

Tokens look like ``yard_<id>_<secret>``: the id finds the row, only a SHA-256 of the secret is stored,
and the secret is compared in constant time. A token is shown once, when it is created; it can expire,
be revoked, and records when it was last used (at most once a minute, so a busy client does not turn
every read into a write). Roles are ``reader < writer < maintainer < admin``, given to a user globally
and raised on one experiment, model or dataset by a grant to the user or to one of their groups.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from modelyard._rpc import ROLES, SCOPES, Principal, current_principal, op, require, service
from modelyard._shared import now_ms, parse_duration_s
from modelyard._workspace import WorkspaceService
from modelyard.errors import (
    AlreadyExistsError,
    AuthenticationError,
    NotFoundError,
    did_you_mean,
    invalid_param,
)
from modelyard.server._schema import grants, group_members, groups, tokens, users

__all__ = ["TOKEN_PREFIX", "AuthService"]

TOKEN_PREFIX = "yard_"
_TOKEN_RE = re.compile(r"^yard_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
#: Record a token's last use at most this often (ms).
_LAST_USED_EVERY_MS = 60_000


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_role(role: str, caller: str) -> str:
    if role not in ROLES:
        raise invalid_param("role", caller, " < ".join(ROLES), role)
    return role


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise invalid_param(what, f"yard {what}s", "letters, digits and . _ @ - (up to 100)", name)
    return name


@service("auth")
class AuthService(WorkspaceService):
    """Who may use a team server, and how much."""

    # -- users -----------------------------------------------------------------------------
    @op("reader")
    def whoami(self) -> dict[str, Any]:
        """The calling user, their role, groups and grants."""
        who = current_principal.get()
        if who is None:
            from modelyard._shared import user_name

            return {"name": user_name(), "role": "admin", "groups": [], "grants": [], "local": True}
        return {
            "name": who.name,
            "role": who.role,
            "groups": list(who.groups),
            "grants": [{"kind": k, "target": t, "role": r} for (k, t), r in sorted(who.grants.items())],
            "local": False,
        }

    @op("admin")
    def add_user(self, name: str, role: str = "reader") -> dict[str, Any]:
        """Create a user with a global role."""
        _check_name(name, "user")
        _check_role(role, "yard users add")

        def fn(conn: Connection) -> None:
            if conn.execute(sa.select(users.c.name).where(users.c.name == name)).first():
                raise AlreadyExistsError(
                    f"User {name!r} exists; change its role with: yard users role {name} ROLE"
                )
            conn.execute(
                users.insert().values(
                    name=name, role=role, disabled=0, created_at=now_ms(), created_by=_caller()
                )
            )

        self.ws.store.write(fn)
        return {"name": name, "role": role, "disabled": False}

    @op("admin")
    def list_users(self) -> list[dict[str, Any]]:
        with self.ws.store.read() as conn:
            rows = conn.execute(sa.select(users).order_by(users.c.name)).mappings().all()
            members = conn.execute(sa.select(group_members)).all()
        by_user: dict[str, list[str]] = {}
        for g, u in members:
            by_user.setdefault(u, []).append(g)
        return [
            {
                "name": r["name"],
                "role": r["role"],
                "disabled": bool(r["disabled"]),
                "groups": sorted(by_user.get(r["name"], [])),
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    @op("admin")
    def set_role(self, name: str, role: str) -> dict[str, Any]:
        _check_role(role, "yard users role")

        def fn(conn: Connection) -> None:
            if conn.execute(users.update().where(users.c.name == name).values(role=role)).rowcount == 0:
                raise self._no_user(conn, name)

        self.ws.store.write(fn)
        return {"name": name, "role": role}

    @op("admin")
    def disable_user(self, name: str, *, enabled: bool = False) -> dict[str, Any]:
        """Disable (or enable again) a user: their tokens stop working at once."""

        def fn(conn: Connection) -> None:
            q = users.update().where(users.c.name == name).values(disabled=0 if enabled else 1)
            if conn.execute(q).rowcount == 0:
                raise self._no_user(conn, name)

        self.ws.store.write(fn)
        return {"name": name, "disabled": not enabled}

    def _no_user(self, conn: Connection, name: str) -> NotFoundError:
        known = [r[0] for r in conn.execute(sa.select(users.c.name))]
        return NotFoundError(
            f"No user {name!r}.{did_you_mean(name, known)} Add one with: yard users add {name}"
        )

    # -- tokens ----------------------------------------------------------------------------
    @op("reader", read_only=False)
    def create_token(
        self, user: str, *, expires: str | None = "90d", description: str | None = None
    ) -> dict[str, Any]:
        """A new API token for ``user`` (admins for anyone, users for themselves). The token is in
        the answer once and never again."""
        who = current_principal.get()
        if who is not None and who.name != user:
            require("admin", why="creating a token for another user")
        ttl_ms = None
        if expires not in (None, "", "never"):
            ttl_ms = int(parse_duration_s(str(expires), what="--expires") * 1000)
            if ttl_ms <= 0:
                raise invalid_param(
                    "expires", "yard tokens create", "a duration such as 90d, or never", expires
                )
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        now = now_ms()

        def fn(conn: Connection) -> None:
            row = conn.execute(sa.select(users.c.disabled).where(users.c.name == user)).first()
            if row is None:
                raise self._no_user(conn, user)
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    user_name=user,
                    secret_hash=_hash(secret),
                    description=description,
                    created_at=now,
                    expires_at=now + ttl_ms if ttl_ms else None,
                )
            )

        self.ws.store.write(fn)
        return {
            "id": token_id,
            "user": user,
            "token": f"{TOKEN_PREFIX}{token_id}_{secret}",
            "expires_at": now + ttl_ms if ttl_ms else None,
        }

    @op("reader")
    def list_tokens(self, user: str | None = None) -> list[dict[str, Any]]:
        """Tokens (never their secrets): your own, or anyone's for an admin."""
        who = current_principal.get()
        if who is not None and user != who.name:
            require("admin", why="listing another user's tokens")
        q = sa.select(tokens).order_by(tokens.c.created_at)
        if user is not None:
            q = q.where(tokens.c.user_name == user)
        with self.ws.store.read() as conn:
            rows = conn.execute(q).mappings().all()
        now = now_ms()
        return [
            {
                "id": r["id"],
                "user": r["user_name"],
                "description": r["description"],
                "created_at": r["created_at"],
                "expires_at": r["expires_at"],
                "last_used_at": r["last_used_at"],
                "state": "revoked"
                if r["revoked_at"]
                else ("expired" if r["expires_at"] and r["expires_at"] <= now else "active"),
            }
            for r in rows
        ]

    @op("reader", read_only=False)
    def revoke_token(self, token_id: str) -> dict[str, Any]:
        """Revoke a token (your own, or anyone's for an admin); it stops working at once."""

        def fn(conn: Connection) -> str:
            row = conn.execute(sa.select(tokens.c.user_name).where(tokens.c.id == token_id)).first()
            if row is None:
                raise NotFoundError(f"No token with id {token_id!r} (yard tokens list shows the ids).")
            who = current_principal.get()
            if who is not None and who.name != row[0]:
                require("admin", why="revoking another user's token")
            conn.execute(tokens.update().where(tokens.c.id == token_id).values(revoked_at=now_ms()))
            return str(row[0])

        user = self.ws.store.write(fn)
        return {"id": token_id, "user": user, "state": "revoked"}

    # -- groups and grants -----------------------------------------------------------------
    @op("admin")
    def add_group_member(self, group: str, user: str) -> dict[str, Any]:
        """Put ``user`` in ``group`` (the group is created on first use)."""
        _check_name(group, "group")

        def fn(conn: Connection) -> None:
            if conn.execute(sa.select(users.c.name).where(users.c.name == user)).first() is None:
                raise self._no_user(conn, user)
            if conn.execute(sa.select(groups.c.name).where(groups.c.name == group)).first() is None:
                conn.execute(groups.insert().values(name=group, created_at=now_ms()))
            exists = conn.execute(
                sa.select(group_members.c.user_name).where(
                    group_members.c.group_name == group, group_members.c.user_name == user
                )
            ).first()
            if exists is None:
                conn.execute(group_members.insert().values(group_name=group, user_name=user))

        self.ws.store.write(fn)
        return {"group": group, "user": user}

    @op("admin")
    def remove_group_member(self, group: str, user: str) -> dict[str, Any]:
        def fn(conn: Connection) -> int:
            return int(
                conn.execute(
                    group_members.delete().where(
                        group_members.c.group_name == group, group_members.c.user_name == user
                    )
                ).rowcount
            )

        if not self.ws.store.write(fn):
            raise NotFoundError(f"{user!r} is not a member of group {group!r}.")
        return {"group": group, "user": user, "removed": True}

    @op("admin")
    def grant(self, who: str, kind: str, target: str, role: str) -> dict[str, Any]:
        """Give user or group ``who`` (a group as ``group:<name>`` or a plain group name) ``role``
        on one experiment, model or dataset."""
        if kind not in SCOPES:
            raise invalid_param("kind", "yard grants add", ", ".join(SCOPES), kind)
        _check_role(role, "yard grants add")
        now = now_ms()

        def fn(conn: Connection) -> str:
            principal = self._principal_name(conn, who)
            existing = conn.execute(
                sa.select(grants.c.id).where(
                    grants.c.principal == principal, grants.c.kind == kind, grants.c.target == target
                )
            ).first()
            if existing is not None:
                conn.execute(grants.update().where(grants.c.id == existing[0]).values(role=role))
            else:
                conn.execute(
                    grants.insert().values(
                        principal=principal,
                        kind=kind,
                        target=target,
                        role=role,
                        created_at=now,
                        created_by=_caller(),
                    )
                )
            return principal

        principal = self.ws.store.write(fn)
        return {"principal": principal, "kind": kind, "target": target, "role": role}

    def _principal_name(self, conn: Connection, who: str) -> str:
        name = who.removeprefix("group:")
        if (
            who.startswith("group:")
            or conn.execute(sa.select(groups.c.name).where(groups.c.name == name)).first()
        ):
            if conn.execute(sa.select(groups.c.name).where(groups.c.name == name)).first() is None:
                raise NotFoundError(f"No group {name!r}; add a member first: yard groups add {name} USER")
            return f"group:{name}"
        if conn.execute(sa.select(users.c.name).where(users.c.name == who)).first() is None:
            raise self._no_user(conn, who)
        return who

    @op("admin")
    def revoke_grant(self, who: str, kind: str, target: str) -> dict[str, Any]:
        def fn(conn: Connection) -> int:
            principal = self._principal_name(conn, who)
            return int(
                conn.execute(
                    grants.delete().where(
                        grants.c.principal == principal, grants.c.kind == kind, grants.c.target == target
                    )
                ).rowcount
            )

        if not self.ws.store.write(fn):
            raise NotFoundError(f"{who!r} has no grant on {kind} {target!r}.")
        return {"who": who, "kind": kind, "target": target, "removed": True}

    @op("admin")
    def list_grants(self, kind: str | None = None, target: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(grants).order_by(grants.c.kind, grants.c.target, grants.c.principal)
        if kind is not None:
            q = q.where(grants.c.kind == kind)
        if target is not None:
            q = q.where(grants.c.target == target)
        with self.ws.store.read() as conn:
            return [
                {k: r[k] for k in ("principal", "kind", "target", "role", "created_at", "created_by")}
                for r in conn.execute(q).mappings()
            ]

    # -- the server's side (not operations) --------------------------------------------------
    def has_users(self) -> bool:
        with self.ws.store.read() as conn:
            return conn.execute(sa.select(users.c.name).limit(1)).first() is not None

    def bootstrap_admin(self, token: str, name: str = "admin") -> None:
        """Create user ``name`` (admin) with the given token, when the server has no users yet."""
        m = _TOKEN_RE.match(token)
        if m is None:
            raise AuthenticationError(
                "YARD_ADMIN_TOKEN must look like yard_<16 hex>_<secret of 20+ characters>; "
                "make one with: python -c \"import secrets; print('yard_'+secrets.token_hex(8)+'_'"
                '+secrets.token_urlsafe(32))"'
            )
        token_id, secret = m.groups()

        def fn(conn: Connection) -> None:
            if conn.execute(sa.select(users.c.name).limit(1)).first() is not None:
                return
            now = now_ms()
            conn.execute(users.insert().values(name=name, role="admin", disabled=0, created_at=now))
            conn.execute(
                tokens.insert().values(
                    id=token_id,
                    user_name=name,
                    secret_hash=_hash(secret),
                    description="bootstrap (YARD_ADMIN_TOKEN)",
                    created_at=now,
                )
            )

        self.ws.store.write(fn)

    def authenticate(self, token: str, *, now: int | None = None) -> Principal:
        """The principal a bearer token stands for (AuthenticationError when it stands for none)."""
        m = _TOKEN_RE.match(token or "")
        bad = AuthenticationError(
            "The token is not valid (unknown, revoked or expired); get a new one: yard login"
        )
        if m is None:
            raise bad
        token_id, secret = m.groups()
        now = now if now is not None else now_ms()
        with self.ws.store.read() as conn:
            # the token and its user in one statement (a round trip fewer per request)
            row = (
                conn.execute(
                    sa.select(
                        tokens, users.c.role.label("user_role"), users.c.disabled.label("user_disabled")
                    )
                    .select_from(tokens.outerjoin(users, users.c.name == tokens.c.user_name))
                    .where(tokens.c.id == token_id)
                )
                .mappings()
                .first()
            )
            good = row is not None and hmac.compare_digest(_hash(secret), row["secret_hash"])
            if row is None:
                hmac.compare_digest(_hash(secret), "0" * 64)  # same work whether or not the id exists
            if (
                not good
                or row is None
                or row["revoked_at"]
                or (row["expires_at"] and row["expires_at"] <= now)
            ):
                raise bad
            user = None if row["user_role"] is None else (row["user_role"], row["user_disabled"])
            principal = self._principal(conn, str(row["user_name"]), token_id=token_id, user=user)
            stale = (row["last_used_at"] or 0) < now - _LAST_USED_EVERY_MS
        if stale:
            self.ws.store.write(
                lambda c: c.execute(tokens.update().where(tokens.c.id == token_id).values(last_used_at=now))
            )
        return principal

    def principal_for_user(self, name: str) -> Principal:
        """The principal of a user named by a trusted proxy header (unknown users read only)."""
        with self.ws.store.read() as conn:
            row = conn.execute(sa.select(users.c.role, users.c.disabled).where(users.c.name == name)).first()
            if row is None:
                return Principal(name=name, role="reader")
            return self._principal(conn, name, user=(row[0], row[1]))

    def _principal(
        self,
        conn: Connection,
        name: str,
        token_id: str | None = None,
        user: tuple[Any, Any] | None = None,
    ) -> Principal:
        """The principal of user ``name``: its role (``user``: ``(role, disabled)`` when the caller read
        them already), its groups and every grant to it or to one of its groups (one statement)."""
        if user is None:
            found_user = conn.execute(
                sa.select(users.c.role, users.c.disabled).where(users.c.name == name)
            ).first()
            user = None if found_user is None else (found_user[0], found_user[1])
        if user is None or user[1]:
            raise AuthenticationError(f"User {name!r} is disabled or removed; ask an admin.")
        gm = group_members
        text = sa.cast(sa.null(), sa.String)
        mine = sa.select(sa.literal("group:") + gm.c.group_name).where(gm.c.user_name == name)
        rows = conn.execute(
            sa.union_all(
                sa.select(sa.literal(0), gm.c.group_name, text, text).where(gm.c.user_name == name),
                sa.select(sa.literal(1), grants.c.kind, grants.c.target, grants.c.role).where(
                    sa.or_(grants.c.principal == name, grants.c.principal.in_(mine))
                ),
            )
        ).all()
        member_of = tuple(sorted(str(r[1]) for r in rows if r[0] == 0))
        found: dict[tuple[str, str], str] = {}
        for _, kind, target, role in (r for r in rows if r[0] == 1):
            key = (str(kind), str(target))
            if key not in found or ROLES.index(role) > ROLES.index(found[key]):
                found[key] = str(role)
        return Principal(name=name, role=str(user[0]), grants=found, groups=member_of, token_id=token_id)


def _caller() -> str | None:
    who = current_principal.get()
    if who is not None:
        return who.name
    from modelyard._shared import user_name

    return user_name()
