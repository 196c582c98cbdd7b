"""Environment capture for every run: git state, Python, platform, packages, command line."""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import blake3

from modelyard._redact import MASK, is_secret_name, might_hold_secret, redact_argv, redact_urls
from modelyard._shared import user_name  # noqa: F401  (moved there; imported here by older code)

__all__ = ["capture_environment", "installed_packages", "redact_environment"]


def _git(*args: str, cwd: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.decode(errors="replace")


def installed_packages() -> list[str]:
    """``name==version`` for every installed distribution, sorted."""
    from importlib import metadata

    seen: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] if "Name" in dist.metadata else None
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return sorted(seen.values(), key=str.lower)


@functools.lru_cache(maxsize=4096)  # listing runs reads the same commands again and again
def _redact_command(command: str) -> str:
    try:
        argv = shlex.split(command) if any(c in command for c in "'\"\\") else command.split()
    except ValueError:  # unbalanced quotes: at least the URIs
        return redact_urls(command)
    return shlex.join(redact_argv(argv))


def redact_environment(env: Any) -> Any:
    """``env`` without secrets: the command line through :func:`~modelyard._redact.redact_argv`, URI
    passwords hidden, secret-looking keys masked. Applied when a run's environment is stored and
    when it is read (runs recorded by an older version)."""
    if not isinstance(env, Mapping):
        return env  # stored bytes are untrusted: shown as they are, not a crash
    out: dict[str, Any] = {}
    for key, value in env.items():
        if isinstance(value, str):
            if key == "command":
                value = _redact_command(value) if might_hold_secret(value) else value
            elif is_secret_name(key):
                value = MASK
            else:
                value = redact_urls(value)
        out[key] = value
    return out


def capture_environment(
    cwd: str | None = None, packages: list[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Return ``(environment, packages)`` for the current process (``packages``: a list already read)."""
    cwd = cwd or os.getcwd()
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": platform.node(),
        # passwords in URIs, --token/--password values and KEY=secret pairs never reach the store
        "command": shlex.join(redact_argv(sys.argv)) if sys.argv and sys.argv[0] else sys.executable,
        "cwd": cwd,
    }
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit:
        env["git_commit"] = commit.strip()
        branch = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd)
        env["git_branch"] = branch.strip() if branch else None
        status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd) or ""
        env["git_dirty"] = bool(status.strip())
        if env["git_dirty"]:
            diff = _git("diff", "HEAD", cwd=cwd) or ""
            env["git_diff_digest"] = blake3.blake3(diff.encode()).hexdigest()
        remote = _git("config", "--get", "remote.origin.url", cwd=cwd)
        if remote:
            from modelyard.config import redact

            env["git_remote"] = redact(remote.strip())
    if packages is None:
        packages = installed_packages()
    env["packages_digest"] = blake3.blake3("\n".join(packages).encode()).hexdigest()
    env["packages_count"] = len(packages)
    return env, packages
