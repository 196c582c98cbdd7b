"""A wheel of the modelyard that runs this process, so an image gets the same code without an index.

The wheel is assembled from the imported package's files (``modelyard.__file__``'s folder, without
bytecode caches) and the installed distribution's metadata, so it works for a regular install and
for an editable checkout alike, and needs neither network nor a build backend.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from importlib import metadata as importlib_metadata
from pathlib import Path

__all__ = ["build_self_wheel", "wheel_name"]

_TAG = "py3-none-any"


def wheel_name(version: str) -> str:
    """The file name of the wheel :func:`build_self_wheel` writes for ``version``."""
    return f"modelyard-{version}-{_TAG}.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _metadata(version: str) -> tuple[str, str]:
    """``METADATA`` (with this package's version) and ``entry_points.txt`` of the installed dist."""
    try:
        dist = importlib_metadata.distribution("modelyard")
        # a wheel install has METADATA; an editable one found through src/ (pytest's pythonpath, or a
        # source checkout first on sys.path) is an egg-info folder whose PKG-INFO holds the same fields
        meta = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
        entry_points = dist.read_text("entry_points.txt") or ""
    except importlib_metadata.PackageNotFoundError:
        meta, entry_points = "", ""
    if not meta:  # running from a source tree that was never installed: the essentials
        meta = "Metadata-Version: 2.1\nName: modelyard\nVersion: 0\n"
        entry_points = "[console_scripts]\nyard = modelyard.cli:main\n"
    lines = [f"Version: {version}" if ln.startswith("Version:") else ln for ln in meta.split("\n")]
    return "\n".join(lines), entry_points


def build_self_wheel(dest: str | os.PathLike[str]) -> Path:
    """Write ``modelyard-<version>-py3-none-any.whl`` of the imported modelyard into ``dest``."""
    from modelyard._version import __version__ as version

    pkg = Path(__file__).resolve().parents[1]  # the modelyard package this module belongs to
    out = Path(dest) / wheel_name(version)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = f"modelyard-{version}.dist-info"
    meta, entry_points = _metadata(version)
    records: list[str] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:

        def add(arcname: str, data: bytes) -> None:
            zi = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))  # reproducible bytes
            zi.external_attr = 0o644 << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, data)
            records.append(f"{arcname},{_record_hash(data)},{len(data)}")

        for path in sorted(pkg.rglob("*")):
            rel = path.relative_to(pkg)
            if path.is_dir() or "__pycache__" in rel.parts or path.suffix in (".pyc", ".pyo"):
                continue
            add(f"modelyard/{rel.as_posix()}", path.read_bytes())
        add(f"{info}/METADATA", meta.encode())
        add(
            f"{info}/WHEEL",
            f"Wheel-Version: 1.0\nGenerator: modelyard\nRoot-Is-Purelib: true\nTag: {_TAG}\n".encode(),
        )
        add(f"{info}/entry_points.txt", entry_points.encode())
        add(f"{info}/top_level.txt", b"modelyard\n")
        records.append(f"{info}/RECORD,,")
        zi = zipfile.ZipInfo(f"{info}/RECORD", date_time=(1980, 1, 1, 0, 0, 0))
        zi.external_attr = 0o644 << 16
        zf.writestr(zi, "\n".join(records) + "\n")
    return out
