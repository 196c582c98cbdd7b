"""A workspace pairs a metadata store with a blob store, both chosen by one URI."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.blobs import BlobStore
from modelyard.config import StoreLocation, redact, resolve
from modelyard.errors import StoreError
from modelyard.store import MetadataStore

if TYPE_CHECKING:
    from modelyard._remote import RemoteClient

__all__ = ["Workspace", "WorkspaceService", "get_workspace", "set_uri"]


class Workspace:
    """The metadata store and blob store behind one URI (``./.yard`` by default)."""

    def __init__(
        self,
        uri: str | os.PathLike[str] | None = None,
        *,
        blob_uri: str | None = None,
        token: str | None = None,
    ) -> None:
        """``token``: for a modelyard server, the bearer token (default YARD_TOKEN or `yard login`'s)."""
        self.location: StoreLocation = resolve(uri, blob_uri=blob_uri)
        #: The modelyard server this workspace talks to (None: the store is opened here).
        self.remote: RemoteClient | None = None
        self.store: MetadataStore
        if self.location.dialect == "http":
            from modelyard._remote import RemoteClient
            from modelyard.blobs._http import HttpBackend

            self.remote = RemoteClient(self.location.uri, token=token)
            self.store = _ServerSideStore(self.location)  # type: ignore[assignment]
            self.blobs = BlobStore(
                self.location.blob_uri, backend=HttpBackend(self.remote, redact(self.location.uri))
            )
        else:
            self.store = MetadataStore(self.location)
            self.blobs = BlobStore(self.location.blob_uri)

    def __repr__(self) -> str:
        return f"Workspace({redact(self.location.uri)!r})"

    @property
    def is_remote(self) -> bool:
        """True when the store is a modelyard server (``http(s)://``)."""
        return self.remote is not None

    def open(self) -> Workspace:
        """Create and migrate the store now (it is otherwise opened on first use); for a server,
        check that it answers and speaks this client's API version."""
        if self.remote is not None:
            self.remote.handshake()
            return self
        self.store.engine  # noqa: B018
        if self.blobs.is_local:
            (self.blobs.local_path("0" * 64).parents[1]).mkdir(parents=True, exist_ok=True)
        return self

    def close(self) -> None:
        """Release database connections."""
        if self.remote is not None:
            self.remote.close()
            return
        self.store.dispose()


class WorkspaceService:
    """Base of the services of one workspace (tracking, data, registry, pipelines, evaluation,
    monitoring, rollout, automation, the prediction log, the server's users): it keeps the
    workspace ``ws`` (``workspace`` is a :class:`Workspace`, a URI, or None for the default store)
    and names its two halves, ``store`` (rows) and ``blobs`` (bytes)."""

    def __init__(self, workspace: Workspace | str | None = None) -> None:
        self.ws = get_workspace(workspace)

    @property
    def store(self) -> MetadataStore:
        """The metadata store of the workspace."""
        return self.ws.store

    @property
    def blobs(self) -> BlobStore:
        """The blob store of the workspace."""
        return self.ws.blobs


class _ServerSideStore:
    """Stands in for the metadata store of a workspace on a modelyard server: the rows live there,
    and code that would query them directly names itself instead of failing obscurely."""

    dialect = "http"

    def __init__(self, location: StoreLocation) -> None:
        self.location = location

    def __repr__(self) -> str:
        return f"ServerSideStore({redact(self.location.uri)!r})"

    def dispose(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        import inspect

        caller = inspect.stack()[1]
        raise StoreError(
            f"{caller.function} ({Path(caller.filename).name}:{caller.lineno}) reads the metadata store "
            f"directly, which a client of the modelyard server at {redact(self.location.uri)} cannot do; "
            "this call is not available over the server API."
        )


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
