"""Environment capture for every run: git state, Python, platform, packages, command line."""

from __future__ import annotations

import getpass
import os
import platform
import shlex
import subprocess
import sys
from typing import Any

import blake3

from modelyard._redact import redact_argv

__all__ = ["capture_environment", "installed_packages"]


def _git(*args: str, cwd: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False
        )
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
        name = dist.metadata.get("Name")
        if name and name.lower() not in seen:
            seen[name.lower()] = f"{name}=={dist.version}"
    return sorted(seen.values(), key=str.lower)


def user_name() -> str | None:
    """The login name of the user running this process."""
    try:
        return os.environ.get("YARD_USER") or getpass.getuser()
    except Exception:  # pragma: no cover - no passwd entry in some containers
        return None


def capture_environment(cwd: str | None = None, packages: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
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
