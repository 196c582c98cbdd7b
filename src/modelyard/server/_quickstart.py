"""The quickstart's team-server chapter: the same tracking code, over HTTP, with users and roles."""

from __future__ import annotations

from typing import Any

__all__ = ["chapter_server"]


def chapter_server(ctx: Any) -> None:
    """Start a team server on this store (loopback), give two users tokens, and track a run through it."""
    import os

    import modelyard as yard
    from modelyard._workspace import Workspace
    from modelyard.errors import PermissionDeniedError
    from modelyard.server import ServerSettings, create_app
    from modelyard.server._local import serve_in_thread
    from modelyard.server._users import AuthService
    from modelyard.tracking._service import TrackingService

    ws = Workspace(ctx.uri).open()
    auth = AuthService(ws)
    existing = {u["name"] for u in auth.list_users()}
    for name, role in (("alice", "writer"), ("bob", "reader")):
        if name not in existing:
            auth.add_user(name, role)
    alice = auth.create_token("alice", expires="1d", description="quickstart")
    bob = auth.create_token("bob", expires="1d", description="quickstart")
    app = create_app(ServerSettings(uri=ctx.uri), workspace=ws)
    old_token = os.environ.get("YARD_TOKEN")
    try:
        with serve_in_thread(app) as url:
            ctx.say(f"Team server on {url} (API docs {url}/api/v1/docs); users alice (writer), bob (reader).")
            os.environ["YARD_TOKEN"] = alice["token"]
            with yard.start_run(
                experiment="quickstart-team", name="over-http", params={"lr": 0.05}, uri=url
            ) as run:
                for step in range(200):
                    run.log_metric("loss", 1.0 / (step + 1), step=step)
            stored = yard.search_runs("quickstart-team", filter="metrics.loss < 0.01", uri=url)
            ctx.say(
                f"As alice over HTTP: run {run.id[:12]} logged 200 points; search found {len(stored)} "
                f"run(s), recorded user {stored[0].user!r}."
            )
            os.environ["YARD_TOKEN"] = bob["token"]
            _drop_cached(url)
            try:
                TrackingService(url).create_run(experiment="quickstart-team")
                ctx.say("bob created a run?! (this should not happen)")
            except PermissionDeniedError as exc:
                ctx.say(f"As bob (reader): refused — {exc}")
    finally:
        if old_token is None:
            os.environ.pop("YARD_TOKEN", None)
        else:
            os.environ["YARD_TOKEN"] = old_token
        _drop_cached(None)
        ws.close()
    ctx.say("  try:  yard server   then   export YARD_URI=http://127.0.0.1:8080 ; yard login $YARD_URI")


def _drop_cached(url: str | None) -> None:
    """Forget cached server clients (their token changed)."""
    from modelyard import _workspace

    for key, cached in list(_workspace._cache.items()):
        if cached.remote is not None and (url is None or cached.location.uri == url):
            cached.close()
            del _workspace._cache[key]
