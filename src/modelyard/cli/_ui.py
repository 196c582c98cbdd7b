"""``yard ui``: the web UI on this machine's store, on loopback, opened in the browser."""

from __future__ import annotations

import typer

from modelyard.cli._common import handle_errors

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command("ui")
    def ui(
        uri: str = typer.Option(
            None,
            "--uri",
            help="Metadata store: a folder, sqlite:/// or postgresql:// (default: YARD_URI or ./.yard).",
        ),
        port: int = typer.Option(0, "--port", help="Port on 127.0.0.1 (0: a free one)."),
        no_browser: bool = typer.Option(
            False, "--no-browser", help="Print the address; do not open a browser."
        ),
    ) -> None:
        """Browse experiments, runs and models of a local store in the browser (127.0.0.1 only, no login).

        The same pages `yard server` serves at /, without authentication: it listens on loopback only,
        so only this machine's users reach it. Stop it with Ctrl-C.
        """
        with handle_errors():
            import socket
            import webbrowser

            import uvicorn

            from modelyard.config import resolve
            from modelyard.errors import ConfigError
            from modelyard.server._app import ServerSettings, create_app

            if resolve(uri).dialect == "http":
                raise ConfigError(
                    "yard ui shows a local store; for a team server open its address in a browser instead."
                )
            app = create_app(ServerSettings(uri=uri, auth="none"))
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                raise ConfigError(
                    f"Cannot listen on 127.0.0.1:{port} ({exc.strerror}); pick another --port."
                ) from None
            sock.listen(128)  # connections wait in the backlog until uvicorn answers them
            url = f"http://127.0.0.1:{sock.getsockname()[1]}/ui/"
            typer.echo(f"modelyard UI on {url} (Ctrl-C stops it)", err=True)
            if not no_browser:
                webbrowser.open(url)
            config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False)
            uvicorn.Server(config).run(sockets=[sock])
