"""``yard server``, ``yard login``/``whoami``, and ``yard users|tokens|groups|grants`` (who may do what).

The user-management commands work on any store: on a database URI they write it directly (the
operator holds its credentials), on an ``http(s)://`` URI they go through the server with an admin's
token. Tokens are printed once, when created, and never again.
"""

from __future__ import annotations

import os
from typing import Any

import typer

from modelyard.cli._common import console, esc, handle_errors, print_json

__all__ = ["grants_app", "groups_app", "register", "tokens_app", "users_app"]

users_app = typer.Typer(help="Users of a team server and their global roles.", no_args_is_help=True)
tokens_app = typer.Typer(help="API tokens: create (shown once), list, revoke.", no_args_is_help=True)
groups_app = typer.Typer(help="Groups of users (grants can name a group).", no_args_is_help=True)
grants_app = typer.Typer(help="Roles on one experiment, model or dataset.", no_args_is_help=True)

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _auth() -> Any:
    from modelyard.server._users import AuthService

    return AuthService()


def _when(ms: int | None) -> str:
    from modelyard._shared import format_when

    return format_when(ms, "%Y-%m-%d %H:%M")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.table import Table

    t = Table(title=title)
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*(esc(v) for v in r))
    console().print(t)


def register(app: typer.Typer) -> None:
    @app.command("server")
    def server(
        uri: str = typer.Option(
            None,
            "--uri",
            help="Metadata store: a folder, sqlite:/// or postgresql:// (default: YARD_URI or ./.yard).",
        ),
        blob_uri: str = typer.Option(
            None, "--blob-uri", help="Blob location: a folder or any fsspec URL such as s3://bucket/yard."
        ),
        host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
        port: int = typer.Option(8080, "--port", help="Port to listen on."),
        workers: int = typer.Option(1, "--workers", min=1, max=64, help="Worker processes."),
        auth: str = typer.Option(
            "token",
            "--auth",
            help="token: bearer tokens (yard tokens create); header: trust --user-header from an "
            "authenticating proxy; none: no authentication (loopback only unless --insecure).",
        ),
        user_header: str = typer.Option(
            "X-Forwarded-User", "--user-header", help="Header naming the user in --auth header mode."
        ),
        cors_origin: list[str] = typer.Option(
            [], "--cors-origin", help="Allow browser calls from this origin (repeat); CORS is off by default."
        ),
        insecure: bool = typer.Option(
            False, "--insecure", help="Allow --auth none or header on a non-loopback address."
        ),
        presign_blobs: bool = typer.Option(
            False,
            "--presign-blobs",
            help="With an s3:// blob location: clients up- and download through short-lived presigned URLs "
            "(uploads are still verified by the server before they are kept).",
        ),
        log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    ) -> None:
        """Run the team server: the HTTP API over every service, with users, tokens and roles.

        Clients set YARD_URI=http://host:port and YARD_TOKEN (or run `yard login`); nothing else in
        their code changes. The API is documented at /api/v1/docs (OpenAPI at /api/v1/openapi.json).
        The first admin comes from `yard users add NAME --role admin` + `yard tokens create NAME` on the
        store, or from YARD_ADMIN_TOKEN on first start.
        """
        with handle_errors():
            from modelyard.errors import ConfigError
            from modelyard.server._app import AUTH_MODES, ServerSettings

            if auth not in AUTH_MODES:
                raise ConfigError(f"--auth must be one of {', '.join(AUTH_MODES)}; got {auth!r}.")
            if auth != "token" and host not in _LOOPBACK and not insecure:
                raise ConfigError(
                    f"Refusing to listen on {host} with --auth {auth}: anyone reaching the port could act "
                    "as any user. Use --auth token, listen on 127.0.0.1, or pass --insecure if a proxy "
                    "in front authenticates every request."
                )
            settings = ServerSettings(
                uri=uri,
                blob_uri=blob_uri,
                auth=auth,
                user_header=user_header,
                cors_origins=_split_origins(cors_origin),
            )
            import uvicorn

            from modelyard.config import redact, resolve

            loc = resolve(uri, blob_uri=blob_uri)
            if loc.dialect == "http":
                raise ConfigError("yard server needs a database URI (--uri), not another server's URL.")
            # check the store opens (and migrate it) once, before workers start
            from modelyard._workspace import Workspace

            ws = Workspace(uri, blob_uri=blob_uri).open()
            from modelyard.server._users import AuthService

            no_users = (
                auth == "token" and not AuthService(ws).has_users() and not os.environ.get("YARD_ADMIN_TOKEN")
            )
            ws.close()
            typer.echo(
                f"modelyard server on http://{host}:{port} (API /api/v1, docs /api/v1/docs), store "
                f"{redact(loc.uri)}, blobs {redact(loc.blob_uri)}, auth {auth}, {workers} worker(s)",
                err=True,
            )
            if no_users:
                typer.echo(
                    "No users yet: create an admin with `yard users add NAME --role admin --uri ...` and "
                    "`yard tokens create NAME --uri ...`, or start with YARD_ADMIN_TOKEN set.",
                    err=True,
                )
            os.environ.update(settings.to_env())
            import contextlib

            from modelyard._prometheus import multiprocess_folder

            # several workers: each writes its metric values to one folder of this server, which
            # /metrics merges (and which is removed when the server stops)
            metrics = multiprocess_folder("yard-server-metrics-") if workers > 1 else contextlib.nullcontext()
            with metrics:
                uvicorn.run(
                    "modelyard.server._app:app_from_env",
                    factory=True,
                    host=host,
                    port=port,
                    workers=workers,
                    log_level=log_level,
                    proxy_headers=False,
                    server_header=False,
                )

    @app.command("login")
    def login(
        url: str = typer.Argument(..., help="The server, e.g. https://yard.example.com."),
        token: str = typer.Option(
            None, "--token", help="The token (default: read from stdin or asked for, never echoed)."
        ),
    ) -> None:
        """Check a token against a server and keep it for that server (0600 file in your config folder)."""
        with handle_errors():
            import sys

            from modelyard._remote import RemoteClient, save_token
            from modelyard.config import resolve

            base = resolve(url).uri
            if token is None:
                if sys.stdin.isatty():
                    import getpass

                    token = getpass.getpass(f"Token for {base}: ")
                else:
                    token = sys.stdin.readline()
            token = token.strip()
            client = RemoteClient(base, token=token)
            from modelyard._rpc import operations
            from modelyard.server._users import AuthService

            spec = next(s for s in operations(AuthService) if s.name == "whoami")
            me = client.call(spec, {})
            path = save_token(base, token, me.get("name"))
            typer.echo(f"Logged in to {base} as {me['name']} (role {me['role']}); token kept in {path}.")
            typer.echo(f"Use it with: export YARD_URI={base}")

    @app.command("whoami")
    def whoami(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
        """Who the current store knows you as, and your role (on a server: your token's user)."""
        with handle_errors():
            me = _auth().whoami()
            if as_json:
                print_json(me)
                return
            grants = ", ".join(f"{g['role']} on {g['kind']} {g['target']}" for g in me["grants"]) or "none"
            where = "local store (no authentication)" if me.get("local") else "server"
            typer.echo(f"{me['name']} · role {me['role']} · grants: {grants} · {where}")

    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(groups_app, name="groups")
    app.add_typer(grants_app, name="grants")


def _split_origins(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(o.strip() for o in v.split(",") if o.strip())
    return out


_ROLE_HELP = "reader < writer < maintainer < admin."


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="User name."),
    role: str = typer.Option("reader", "--role", help=_ROLE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """Add a user with a global role."""
    with handle_errors():
        out = _auth().add_user(name, role)
        print_json(out) if as_json else typer.echo(f"Added user {name} with role {role}.")


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List users, their roles and groups."""
    with handle_errors():
        rows = _auth().list_users()
        if as_json:
            print_json(rows)
            return
        _table(
            "Users",
            ["name", "role", "state", "groups", "created"],
            [
                [
                    r["name"],
                    r["role"],
                    "disabled" if r["disabled"] else "active",
                    ", ".join(r["groups"]),
                    _when(r["created_at"]),
                ]
                for r in rows
            ],
        )


@users_app.command("role")
def users_role(name: str = typer.Argument(...), role: str = typer.Argument(..., help=_ROLE_HELP)) -> None:
    """Change a user's global role."""
    with handle_errors():
        _auth().set_role(name, role)
        typer.echo(f"{name} now has role {role}.")


@users_app.command("disable")
def users_disable(
    name: str = typer.Argument(...), enable: bool = typer.Option(False, "--enable", help="Enable again.")
) -> None:
    """Disable a user (their tokens stop working at once), or --enable them again."""
    with handle_errors():
        _auth().disable_user(name, enabled=enable)
        typer.echo(f"{name} is {'enabled' if enable else 'disabled'}.")


@tokens_app.command("create")
def tokens_create(
    user: str = typer.Argument(..., help="Whose token (yourself, or anyone for an admin)."),
    expires: str = typer.Option("90d", "--expires", help="Lifetime such as 30d, 12h, or 'never'."),
    description: str = typer.Option(None, "--description", help="What the token is for."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts (includes the token)."),
) -> None:
    """Create an API token. It is printed once: store it now (e.g. in a secret manager)."""
    with handle_errors():
        out = _auth().create_token(user, expires=expires, description=description)
        if as_json:
            print_json(out)
            return
        typer.echo(out["token"])
        until = _when(out["expires_at"]) if out["expires_at"] else "never"
        typer.echo(f"Token {out['id']} for {user}, expires {until}. It is not shown again.", err=True)


@tokens_app.command("list")
def tokens_list(
    user: str = typer.Option(
        None, "--user", help="Whose tokens (admins: anyone; default: all for an admin)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
) -> None:
    """List tokens (ids, owners, expiry, last use; never the secret)."""
    with handle_errors():
        rows = _auth().list_tokens(user)
        if as_json:
            print_json(rows)
            return
        _table(
            "API tokens",
            ["id", "user", "state", "created", "expires", "last used", "description"],
            [
                [
                    r["id"],
                    r["user"],
                    r["state"],
                    _when(r["created_at"]),
                    _when(r["expires_at"]) if r["expires_at"] else "never",
                    _when(r["last_used_at"]),
                    r["description"] or "",
                ]
                for r in rows
            ],
        )


@tokens_app.command("revoke")
def tokens_revoke(token_id: str = typer.Argument(..., help="Token id (yard tokens list).")) -> None:
    """Revoke a token; it stops working at once."""
    with handle_errors():
        out = _auth().revoke_token(token_id)
        typer.echo(f"Revoked token {token_id} of {out['user']}.")


@groups_app.command("add")
def groups_add(group: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
    """Put a user in a group (created on first use)."""
    with handle_errors():
        _auth().add_group_member(group, user)
        typer.echo(f"{user} is in group {group}.")


@groups_app.command("remove")
def groups_remove(group: str = typer.Argument(...), user: str = typer.Argument(...)) -> None:
    """Take a user out of a group."""
    with handle_errors():
        _auth().remove_group_member(group, user)
        typer.echo(f"{user} left group {group}.")


def _target(experiment: str | None, model: str | None, dataset: str | None) -> tuple[str, str]:
    from modelyard.errors import InvalidArgumentError

    given = [(k, v) for k, v in (("experiment", experiment), ("model", model), ("dataset", dataset)) if v]
    if len(given) != 1:
        raise InvalidArgumentError("Name exactly one of --experiment, --model or --dataset.")
    return given[0]


@grants_app.command("add")
def grants_add(
    who: str = typer.Argument(..., help="A user, or a group (group:NAME or a group's name)."),
    role: str = typer.Option(..., "--role", help=_ROLE_HELP),
    experiment: str = typer.Option(None, "--experiment", help="On this experiment."),
    model: str = typer.Option(None, "--model", help="On this registered model."),
    dataset: str = typer.Option(None, "--dataset", help="On this dataset."),
) -> None:
    """Give a user or group a role on one experiment, model or dataset (e.g. maintainer on a model:
    who may move its protected aliases)."""
    with handle_errors():
        kind, target = _target(experiment, model, dataset)
        out = _auth().grant(who, kind, target, role)
        typer.echo(f"{out['principal']} has role {role} on {kind} {target}.")


@grants_app.command("remove")
def grants_remove(
    who: str = typer.Argument(...),
    experiment: str = typer.Option(None, "--experiment"),
    model: str = typer.Option(None, "--model"),
    dataset: str = typer.Option(None, "--dataset"),
) -> None:
    """Remove a grant."""
    with handle_errors():
        kind, target = _target(experiment, model, dataset)
        _auth().revoke_grant(who, kind, target)
        typer.echo(f"Removed the grant of {who} on {kind} {target}.")


@grants_app.command("list")
def grants_list(as_json: bool = typer.Option(False, "--json", help="Print JSON for scripts.")) -> None:
    """List grants."""
    with handle_errors():
        rows = _auth().list_grants()
        if as_json:
            print_json(rows)
            return
        _table(
            "Grants",
            ["who", "role", "on", "name", "by", "when"],
            [
                [
                    r["principal"],
                    r["role"],
                    r["kind"],
                    r["target"],
                    r["created_by"] or "",
                    _when(r["created_at"]),
                ]
                for r in rows
            ],
        )
