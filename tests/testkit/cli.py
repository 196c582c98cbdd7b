"""Running the ``yard`` command in a child process, with this checkout's ``src`` first on the path."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[2] / "src")


def yard_subprocess(
    *args: str,
    cwd: Path | None = None,
    python: tuple[str, ...] = (),
    timeout: float = 600,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``python [python...] -m modelyard ARGS`` (slow on a busy machine: use sparingly).

    ``env`` entries are set in the child's environment; an empty value removes that variable.
    """
    full_env = {**os.environ, "PYTHONPATH": SRC, **env}
    for k, v in env.items():
        if not v:
            full_env.pop(k)
    return subprocess.run(
        [sys.executable, *python, "-m", "modelyard", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
