"""A workspace pairs a metadata store with a blob store, both chosen by one URI."""

from __future__ import annotations

import os
import threading

from modelyard.blobs import BlobStore
from modelyard.config import StoreLocation, redact, resolve
from modelyard.store import MetadataStore

__all__ = ["Workspace", "get_workspace", "set_uri"]


class Workspace:
    """The metadata store and blob store behind one URI (``./.yard`` by default)."""

    def __init__(self, uri: str | os.PathLike[str] | None = None, *, blob_uri: str | None = None) -> None:
        self.location: StoreLocation = resolve(uri, blob_uri=blob_uri)
        self.store = MetadataStore(self.location)
        self.blobs = BlobStore(self.location.blob_uri)

    def __repr__(self) -> str:
        return f"Workspace({redact(self.location.uri)!r})"

    def open(self) -> Workspace:
        """Create and migrate the store now (it is otherwise opened on first use)."""
        self.store.engine  # noqa: B018
        if self.blobs.is_local:
            (self.blobs.local_path("0" * 64).parents[1]).mkdir(parents=True, exist_ok=True)
        return self

    def close(self) -> None:
        """Release database connections."""
        self.store.dispose()


_lock = threading.Lock()
_cache: dict[tuple[str, str], Workspace] = {}
_default_uri: str | None = None


def set_uri(uri: str | os.PathLike[str] | None) -> None:
    """Make ``uri`` the store used when no ``uri`` argument is given (None: back to YARD_URI / ./.yard)."""
    global _default_uri
    _default_uri = os.fspath(uri) if uri is not None else None


def get_workspace(uri: str | os.PathLike[str] | Workspace | None = None) -> Workspace:
    """The shared :class:`Workspace` for ``uri`` (or the default store), created once per process."""
    if isinstance(uri, Workspace):
        return uri
    if uri is None:
        uri = _default_uri
    loc = resolve(uri)
    key = (loc.db_url, loc.blob_uri)
    with _lock:
        ws = _cache.get(key)
        if ws is None or os.getpid() != getattr(ws, "_pid", os.getpid()):
            ws = Workspace(uri)
            ws._pid = os.getpid()  # type: ignore[attr-defined]
            _cache[key] = ws
        return ws
