"""Where the store lives: one URI picks the metadata store and the blob store.

Accepted forms of ``YARD_URI`` (or the ``uri`` argument everywhere):

- a folder path such as ``./.yard`` (the default): SQLite at ``<folder>/yard.db`` and
  blobs in ``<folder>/blobs``;
- ``sqlite:///path/to/yard.db``: that SQLite file, blobs in ``blobs/`` beside it;
- ``postgresql://user@host:5432/db``: a team store; blobs from ``YARD_BLOB_URI``
  (any fsspec URL, such as ``s3://bucket/yard``), else ``./.yard/blobs``.

``YARD_BLOB_URI`` overrides the blob location for every form.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from modelyard.errors import ConfigError

__all__ = ["DEFAULT_URI", "StoreLocation", "redact", "resolve"]

DEFAULT_URI = "./.yard"

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def redact(uri: str) -> str:
    """Hide the password of a URI (``postgresql://u:***@h/db``) for reprs and logs."""
    from modelyard._redact import redact_url

    return redact_url(uri)


@dataclass(frozen=True)
class StoreLocation:
    """The resolved places of a store: the SQLAlchemy URL and the blob URI."""

    uri: str
    db_url: str
    blob_uri: str
    dialect: str
    #: Folder that holds an embedded store (None for a server database).
    root: Path | None = None

    def __repr__(self) -> str:
        return (
            f"StoreLocation(uri={redact(self.uri)!r}, dialect={self.dialect!r}, "
            f"blob_uri={redact(self.blob_uri)!r})"
        )


def resolve(uri: str | os.PathLike[str] | None = None, *, blob_uri: str | None = None) -> StoreLocation:
    """Turn a store URI (or ``YARD_URI``, or the default ``./.yard``) into a :class:`StoreLocation`."""
    raw = os.fspath(uri) if uri is not None else os.environ.get("YARD_URI") or DEFAULT_URI
    raw = raw.strip()
    if not raw:
        raise ConfigError(
            "The store URI is empty. Set YARD_URI to a folder, sqlite:/// or postgresql:// URI."
        )
    blob_override = blob_uri or os.environ.get("YARD_BLOB_URI") or None
    m = _SCHEME.match(raw)
    scheme = m.group(1).lower() if m else ""
    if not scheme or scheme == "file":
        path = raw[len("file://") :] if scheme == "file" else raw
        root = Path(path).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise ConfigError(
                f"The store URI {raw!r} names a file, not a folder. Pass a folder (for example ./.yard) "
                "or a sqlite:///path.db URI."
            )
        return StoreLocation(
            uri=raw,
            db_url=f"sqlite:///{root / 'yard.db'}",
            blob_uri=blob_override or str(root / "blobs"),
            dialect="sqlite",
            root=root,
        )
    if scheme.startswith("sqlite"):
        path = raw.split("://", 1)[1]
        if not path.startswith("/") or path in ("/", "/:memory:"):
            raise ConfigError(
                f"The store URI {raw!r} needs a database file: write sqlite:///relative.db or "
                "sqlite:////absolute/path.db (in-memory stores cannot be shared with the blob store)."
            )
        db_path = Path(path[1:]).expanduser().resolve()
        return StoreLocation(
            uri=raw,
            db_url=f"sqlite:///{db_path}",
            blob_uri=blob_override or str(db_path.parent / "blobs"),
            dialect="sqlite",
            root=db_path.parent,
        )
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        parts = urlsplit(raw)
        query = dict(parse_qsl(parts.query))
        blob_from_query = query.pop("blob_uri", None)
        db_url = urlunsplit(
            ("postgresql+psycopg", parts.netloc, parts.path, urlencode(query), parts.fragment)
        )
        return StoreLocation(
            uri=raw,
            db_url=db_url,
            blob_uri=blob_override or blob_from_query or str(Path(DEFAULT_URI).resolve() / "blobs"),
            dialect="postgresql",
        )
    if scheme in ("http", "https"):
        parts = urlsplit(raw)
        if parts.username or parts.password:
            raise ConfigError(
                f"The store URI {redact(raw)!r} carries credentials; a modelyard server takes a token "
                "instead: set YARD_TOKEN or run `yard login URL`."
            )
        if not parts.hostname:
            raise ConfigError(f"The store URI {raw!r} names no host (write http://host:port).")
        base = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
        return StoreLocation(uri=base, db_url=base, blob_uri=f"{base}/api/v1/blobs", dialect="http")
    raise ConfigError(
        f"The store URI {redact(raw)!r} has an unknown scheme {scheme!r}. "
        "Use a folder path (./.yard), sqlite:///path.db or postgresql://user@host/db."
    )
