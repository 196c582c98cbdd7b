"""The container builders ``yard build`` drives (docker, podman, buildah): which one can run here,
its command line, running it with its output streamed, and reading back the image's id and size.

What goes into the build context is :mod:`modelyard.deploy._build`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard.errors import ModelyardError, invalid_param

__all__ = ["BUILDERS", "ImageBuildError", "find_builder"]

#: The builders ``--builder auto`` tries, in this order.
BUILDERS = ("docker", "podman", "buildah")


class ImageBuildError(ModelyardError):
    """Raised when no container builder is usable or the builder fails; carries its output's tail."""


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_builder(choice: str = "auto") -> tuple[str, str]:
    """``(name, executable)`` of the builder to use: ``choice``, or for ``auto`` the first of docker
    (when its daemon answers), podman and buildah that is installed."""
    if choice not in ("auto", *BUILDERS):
        raise invalid_param("builder", "yard build", "one of 'auto', 'docker', 'podman', 'buildah'", choice)
    names = BUILDERS if choice == "auto" else (choice,)
    tried = []
    for name in names:
        exe = shutil.which(name)
        if exe is None:
            tried.append(f"{name}: not installed")
            continue
        if name == "docker" and not _works([exe, "version", "--format", "{{.Server.Version}}"]):
            tried.append(
                "docker: installed, but its daemon does not answer (start dockerd or set DOCKER_HOST)"
            )
            continue
        return name, exe
    raise ImageBuildError(
        "No container builder can run here (" + "; ".join(tried) + "). Install docker, podman or buildah, "
        "or write the Dockerfile and build context with --dockerfile-only DIR and build them elsewhere."
    )


def _build_command(name: str, exe: str, context: Path, tag: str, platform: str | None = None) -> list[str]:
    """The builder's argv (``platform`` is passed as ``--platform``: all three take it)."""
    plat = ["--platform", platform] if platform else []
    if name == "docker":
        return [exe, "build", *plat, "--tag", tag, str(context)]
    # docker format: the OCI image config has no HEALTHCHECK, so podman and buildah would drop it
    return [exe, "build", "--format", "docker", *plat, "--tag", tag, str(context)]


def _run_builder(cmd: list[str], stream: Callable[[str], None] | None) -> None:
    tail: list[str] = []
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail[-39:], line.rstrip("\n")]
        if stream is not None:
            stream(line.rstrip("\n"))
    if proc.wait() != 0:
        raise ImageBuildError(
            f"{Path(cmd[0]).name} build failed (exit {proc.returncode}); its last lines:\n" + "\n".join(tail)
        )


_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}


def _size(value: Any) -> int | None:
    """Bytes from docker's/podman's number or buildah's ``"774 MB"`` (decimal units)."""
    if isinstance(value, int | float):
        return int(value)
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmMgGtT]?[bB])\s*", str(value))
    if m is None:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _inspect(name: str, exe: str, tag: str) -> tuple[str | None, int | None]:
    if name == "buildah":  # its image list has a short id and a human size: the full id from inspect
        cmd = [exe, "images", "--json", tag]
    else:
        cmd = [exe, "image", "inspect", tag]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return None, None
    try:
        data = json.loads(res.stdout)
        item = data[0] if isinstance(data, list) and data else data
        image_id = item.get("Id") or item.get("id")
        size = _size(item.get("Size") or item.get("size"))
    except (ValueError, AttributeError, TypeError):
        return None, None
    if name == "buildah":
        full = subprocess.run(
            [exe, "inspect", "--type", "image", "--format", "{{.FromImageID}}", tag],
            capture_output=True,
            text=True,
        )
        if full.returncode == 0 and full.stdout.strip():
            image_id = full.stdout.strip()
    return (str(image_id) if image_id else None), size
