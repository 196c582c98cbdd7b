"""A container base image made from this machine's Python, for tests and benchmarks.

No registry can be pulled from here, so ``yard build`` gets its base image from this: the running
interpreter, its standard library (no site-packages) and the shared libraries ``ldd`` lists, laid
out like the official ``python:X.Y-slim`` image (``/usr/local/bin/python3``, ``/usr/local/lib/pythonX.Y``)
in a ``FROM scratch`` image. There is no shell: the Dockerfile ``yard build`` writes runs Python only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

__all__ = ["make_host_base"]

_RUNTIME_LIBS = (  # the manylinux policy's system libraries, as in Debian's slim image
    "libstdc++.so.6",
    "libgcc_s.so.1",
    "libpthread.so.0",
    "libdl.so.2",
    "librt.so.1",
    "libutil.so.1",
    "libresolv.so.2",
    "libm.so.6",
    "libc.so.6",
    "libz.so.1",
)
_SKIP = {"test", "idlelib", "tkinter", "turtledemo", "site-packages", "lib2to3", "__pycache__"}


def _ldd(paths: list[Path]) -> set[Path]:
    out: set[Path] = set()
    for i in range(0, len(paths), 200):
        res = subprocess.run(["ldd", *map(str, paths[i : i + 200])], capture_output=True, text=True)
        for line in res.stdout.splitlines():
            m = re.search(r"(/\S+) \(0x", line)
            if m:
                out.add(Path(m.group(1)))
    return out


def _usr(path: Path) -> Path:
    """``/lib/x`` and ``/lib64/x`` live under ``/usr`` in the image (a merged /usr, as in Debian 12)."""
    text = str(path)
    return Path("/usr" + text) if text.startswith(("/lib/", "/lib64/")) else path


def _copy_lib(lib: Path, root: Path) -> None:
    real = _usr(lib.resolve())
    dest_real = root / real.relative_to("/")
    if not dest_real.exists():
        dest_real.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib.resolve(), dest_real)
    link = root / _usr(lib).relative_to("/")
    if link != dest_real and not (link.exists() or link.is_symlink()):
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(dest_real, link.parent), link)


def make_rootfs(root: Path) -> Path:
    """Lay out the root filesystem in ``root``; return it."""
    ver = f"{sys.version_info[0]}.{sys.version_info[1]}"
    exe = Path(sys._base_executable if hasattr(sys, "_base_executable") else sys.executable).resolve()
    stdlib = Path(sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_prefix})["stdlib"])
    (root / "usr/local/bin").mkdir(parents=True)
    shutil.copy2(exe, root / f"usr/local/bin/python{ver}")
    for alias in ("python3", "python"):
        os.symlink(f"python{ver}", root / f"usr/local/bin/{alias}")
    dest_lib = root / f"usr/local/lib/python{ver}"
    shutil.copytree(stdlib, dest_lib, symlinks=True, ignore=lambda d, names: [n for n in names if n in _SKIP])
    (dest_lib / "site-packages").mkdir()
    so_files = [exe, *sorted(p for p in (stdlib / "lib-dynload").glob("*.so") if "_tkinter" not in p.name)]
    for lib in _ldd(so_files):
        if not lib.name.startswith("libpython"):
            _copy_lib(lib, root)
    libpython = [p for p in _ldd([exe]) if p.name.startswith("libpython")]
    for p in libpython:  # found by the loader's default path, whatever the RPATH says
        shutil.copy2(p.resolve(), root / "usr/lib/x86_64-linux-gnu" / p.name)
    for name in _RUNTIME_LIBS:  # what Debian's slim image has and manylinux wheels expect from the system
        found = [Path(d) / name for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu")]
        for lib in found:
            if lib.exists():
                _copy_lib(lib, root)
                break
    loader = Path("/lib64/ld-linux-x86-64.so.2")
    if loader.exists():
        _copy_lib(loader, root)
    for name, target in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/local/bin")):
        if not (root / name).exists():
            os.symlink(target, root / name)
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return root


def make_host_base(builder: list[str], tag: str, env: dict[str, str] | None = None) -> str:
    """Build the base image ``tag`` with ``builder`` (``["podman"]``, ``["docker"]``); return ``tag``."""
    with tempfile.TemporaryDirectory(prefix="yard-hostbase-") as d:
        ctx = Path(d)
        make_rootfs(ctx / "rootfs")
        (ctx / "Dockerfile").write_text(
            'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin LANG=C.UTF-8\nCMD ["python3"]\n'
        )
        cmd = [*builder, "build", "-t", tag, str(ctx)]
        if os.path.basename(builder[0]) == "buildah":
            cmd = [*builder, "bud", "-t", tag, str(ctx)]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return tag
