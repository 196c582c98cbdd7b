"""A live view of a pipeline run's steps in a terminal (rich); silent when stdout is not a TTY."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from modelyard.pipelines._records import StepOutcome, StepState

__all__ = ["Progress"]

_STYLE = {
    StepState.PENDING: ("·", "dim"),
    StepState.CACHED: ("≡", "blue"),
    StepState.RUNNING: ("▶", "cyan"),
    StepState.DONE: ("✓", "green"),
    StepState.FAILED: ("✗", "red"),
    StepState.SKIPPED: ("-", "yellow"),
}


class Progress:
    """Shows one line per step while the run lasts; ``enabled=None`` means "when stdout is a TTY"."""

    def __init__(self, title: str, steps: dict[str, StepOutcome], enabled: bool | None = None) -> None:
        self.title = title
        self.steps = steps
        self.enabled = sys.stdout.isatty() if enabled is None else enabled
        self._live: Any = None
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=sys.stdout, highlight=False)
            self._live = Live(
                get_renderable=self._render,
                console=console,
                refresh_per_second=8,
                transient=False,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()

    def update(self, node: str) -> None:
        with self._lock:
            if self.steps[node].state is StepState.RUNNING:
                self._started.setdefault(node, time.perf_counter())
        if self._live is not None:
            self._live.refresh()

    def _render(self) -> Any:
        from rich.table import Table

        counts: dict[StepState, int] = {}
        for s in self.steps.values():
            counts[s.state] = counts.get(s.state, 0) + 1
        summary = "  ".join(f"{n} {st.value}" for st, n in counts.items())
        table = Table(
            title=f"{self.title}  [dim]{summary}[/]", title_justify="left", box=None, pad_edge=False
        )
        table.add_column("")
        table.add_column("step")
        table.add_column("state")
        table.add_column("time", justify="right")
        table.add_column("why")
        rows = list(self.steps.values())
        if len(rows) > 40:  # keep the view on screen: active and failed first, then the rest
            rows = [s for s in rows if s.state in (StepState.RUNNING, StepState.FAILED)] + [
                s for s in rows if s.state not in (StepState.RUNNING, StepState.FAILED)
            ]
            rows = rows[:40]
        now = time.perf_counter()
        for s in rows:
            icon, style = _STYLE[s.state]
            if s.state is StepState.RUNNING and s.node in self._started:
                took = f"{now - self._started[s.node]:.1f}s"
            else:
                took = f"{s.duration_s:.2f}s" if s.duration_s is not None else ""
            why = s.reason if len(s.reason) < 70 else s.reason[:67] + "..."
            table.add_row(
                f"[{style}]{icon}[/]", s.node, f"[{style}]{s.state.value}[/]", took, f"[dim]{why}[/]"
            )
        return table
