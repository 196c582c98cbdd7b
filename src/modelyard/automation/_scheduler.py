"""The scheduler loop: ``yard automate run`` in the foreground, or a thread inside ``yard server``.

Each pass is :meth:`Engine.tick`; passes are ``interval_s`` apart (default 15 s: a cron tick fires
within that of its minute). With several server workers or replicas each runs a loop; the store
makes each firing and each run step happen once (see ``_engine.py``). Set
``YARD_AUTOMATE=off`` to keep a server from running automations.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from modelyard._workspace import Workspace
from modelyard.automation._engine import Engine
from modelyard.automation._service import AutomationService

__all__ = ["Scheduler", "start_in_server"]

log = logging.getLogger("modelyard.automation")


class Scheduler:
    """Runs scheduler passes over one workspace until stopped."""

    def __init__(
        self,
        workspace: Workspace | str | None = None,
        *,
        interval_s: float = 15.0,
        target: Any = None,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], int] | None = None,
    ) -> None:
        self.engine = Engine(AutomationService(workspace, clock=clock), target=target, say=say)
        self.interval_s = interval_s
        self.stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, *, passes: int | None = None, timeout: float | None = None) -> int:
        """Pass after pass until stopped, ``passes`` done or ``timeout`` seconds; the passes run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        done = 0
        while not self.stop_event.is_set():
            try:
                self.engine.tick()
            except Exception:  # the store away for a moment: try again next pass
                log.exception("automation scheduler pass failed")
            done += 1
            if passes is not None and done >= passes:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            self.stop_event.wait(self.interval_s)
        return done

    def start(self) -> Scheduler:
        """Run in a daemon thread (stopped by :meth:`stop`)."""
        self._thread = threading.Thread(target=self.run, name="yard-automate", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)


def start_in_server(app: Any, ws: Workspace) -> None:
    """Run the scheduler in the server ``app``'s process from startup to shutdown (unless
    ``YARD_AUTOMATE=off``; ``YARD_AUTOMATE_INTERVAL`` seconds between passes, default 15)."""
    if os.environ.get("YARD_AUTOMATE", "on").strip().lower() in ("off", "0", "false", "no"):
        return
    interval = float(os.environ.get("YARD_AUTOMATE_INTERVAL", "15"))
    holder: dict[str, Scheduler] = {}

    def _start() -> None:
        holder["s"] = Scheduler(ws, interval_s=interval).start()

    def _stop() -> None:
        s = holder.pop("s", None)
        if s is not None:
            s.stop()

    app.router.on_startup.append(_start)
    app.router.on_shutdown.append(_stop)
