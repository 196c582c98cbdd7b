"""The quickstart's web UI chapter: the UI on the quickstart's store, on a free loopback port in this
process, a few of its pages fetched over HTTP as a browser would, and the one command that opens it.

It never opens a browser (the quickstart runs in terminals, CI and scripts alike): it prints the
addresses and ``yard ui``, which does. The server stops when the chapter ends.
"""

from __future__ import annotations

import re
import time
from typing import Any

__all__ = ["chapter_ui", "tour"]

#: (list page, the detail pages it links to): the tour opens the list and the first detail linked.
TOUR = (
    ("/ui/", r"/ui/experiments/[^\"?#]+"),
    ("", r"/ui/runs/[0-9a-f]{8,}"),  # from the runs table just fetched
    ("/ui/models", r"/ui/models/[^\"?#/]+"),
    ("/ui/releases", r"/ui/releases/\d+"),
    ("/ui/datasets", r"/ui/datasets/[^\"?#/]+"),
    ("/ui/monitoring", r"/ui/monitoring/[^\"?#/]+"),
    ("/ui/automations", r"/ui/automations/[^\"?#/]+/runs/\d+"),
)


def tour(base: str, client: Any) -> list[tuple[str, int, int, float]]:
    """Fetch the UI's list pages at ``base`` and the first page each links to: ``(url, status,
    bytes, seconds)`` per page, in order."""
    from html import unescape

    seen: list[tuple[str, int, int, float]] = []
    last = ""

    def fetch(path: str) -> None:
        nonlocal last
        t0 = time.perf_counter()
        r = client.get(base + path)
        seen.append((base + path, r.status_code, len(r.content), time.perf_counter() - t0))
        last = r.text

    for listing, detail in TOUR:
        if listing:
            fetch(listing)
        m = re.search(f'href="({detail})"', last)
        if m is not None:
            fetch(unescape(m.group(1)))
    return seen


def chapter_ui(ctx: Any) -> None:
    """Serve the web UI on this store (loopback, no login, as `yard ui` does) and fetch a few pages."""
    import httpx

    from modelyard._workspace import Workspace
    from modelyard.server._app import ServerSettings, create_app
    from modelyard.server._local import serve_in_thread

    t0 = time.perf_counter()
    ws = Workspace(ctx.uri).open()
    try:
        app = create_app(ServerSettings(uri=ctx.uri, auth="none"), workspace=ws)
        with serve_in_thread(app) as url, httpx.Client(timeout=60) as client:
            ctx.say(f"The web UI on {url}/ui/ (this chapter only; loopback, no login as with `yard ui`):")
            pages = tour(url, client)
            for page_url, status, size, seconds in pages:
                mark = "" if status == 200 else f"  [red]{status}[/]"
                ctx.say(f"  {page_url:<62} {size / 1024:7.1f} KB {seconds * 1000:6.0f} ms{mark}")
        ctx.state["ui_pages"] = pages
    finally:
        ws.close()
    ctx.say(
        f"  {len(pages)} pages in {time.perf_counter() - t0:.1f}s, server stopped. "
        "Open the UI yourself:  yard ui   (a browser opens at its address; Ctrl-C stops it)"
    )
