"""One automation loop under live traffic, from the outside: a model server for one version with
clients calling it, an :class:`~modelyard.automation.Engine` whose rollouts target that server, and
a wait for an automation's run to finish. The quickstart's automation chapter drives the whole loop
with it (and the loop's end-to-end test does the same)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["LiveLoop"]


class LiveLoop:
    """``with LiveLoop(uri, "clf", 1, rows) as loop: ...; run = loop.wait_for_run("retrain")``.

    On entering: builds a server of ``model/version`` (``serving`` adds to its spec), an engine over
    the store's automations whose first tick catches up (``caught_up``: what it fired, so only what
    happens from here fires later), starts the server and ``clients`` threads posting ``rows`` one
    at a time. Every answer other than 200 (or a request that failed) is kept in ``failures``. On
    leaving: the clients stop, the server stops and the app is closed.
    """

    def __init__(
        self,
        uri: str,
        model: str,
        version: int,
        rows: list[dict[str, Any]],
        *,
        clients: int = 2,
        serving: dict[str, Any] | None = None,
        say: Callable[[str], None] | None = None,
        max_requests: int = 20_000,
    ) -> None:
        self.uri = uri
        self.model = model
        self.version = version
        self.rows = rows
        self.clients = clients
        self.serving = serving or {}
        self.say = say
        self.max_requests = max_requests
        self.failures: list[str] = []
        self.caught_up: dict[str, Any] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._handle: Any = None

    def __enter__(self) -> LiveLoop:
        from modelyard.automation._engine import Engine
        from modelyard.automation._service import AutomationService
        from modelyard.serving import build_app
        from modelyard.serving._server import running

        spec = {
            "models": {"primary": {"ref": f"{self.model}/{self.version}", "warmup": 0}},
            "endpoint": self.model,
            "fallback": {"constant": 0},
            "timeout_ms": 30_000,
            "prediction_log": {"enabled": False},
            **self.serving,
        }
        self.app = build_app(spec, uri=self.uri)
        self.service = AutomationService(self.uri)
        self.engine = Engine(self.service, target=self.app, say=self.say)
        self.caught_up = self.engine.tick()
        self._server = running(self.app)
        self._handle = self._server.__enter__()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def _client(self) -> None:
        import httpx

        url = f"{self._handle.url}/v1/models/{self.model}/predict"
        with httpx.Client(timeout=120) as c:
            i = 0
            while not self._stop.is_set() and i < self.max_requests:
                try:
                    r = c.post(url, json={"records": [self.rows[i % len(self.rows)]]})
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code}: {r.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"{type(exc).__name__}: {exc}")
                i += 1

    def wait_for_run(self, automation: str, timeout_s: float) -> dict[str, Any] | None:
        """Tick the engine until ``automation``'s newest run has succeeded or failed (or
        ``timeout_s`` passed); that run as ``AutomationService.history`` gives it, or None."""
        deadline = time.monotonic() + timeout_s
        run: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            self.engine.tick()
            runs = self.service.history(automation, 1)
            run = runs[0] if runs else None
            if run and run["state"] in ("succeeded", "failed"):
                break
            time.sleep(0.05)
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(150)
        try:
            if self._server is not None:
                self._server.__exit__(exc_type, exc, tb)
        finally:
            self.app.close()
