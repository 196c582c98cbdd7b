"""Metadata store: schema, migrations and transactions."""

from modelyard.store._schema import metadata
from modelyard.store._store import MetadataStore, known_heads

__all__ = ["MetadataStore", "known_heads", "metadata"]
