"""Heads of the metadata store's migration graph, read from the migration files.

Kept outside ``modelyard.store`` (whose package imports SQLAlchemy) so fast paths such as the
unchanged ``yard data add`` can check a store's schema revision without loading SQLAlchemy or Alembic.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["known_heads"]

_VERSIONS = Path(__file__).parent / "store" / "migrations" / "versions"
_REV_RE = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_RE = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(.+)$", re.M)


def known_heads() -> frozenset[str]:
    """Revisions that no other migration names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _VERSIONS.glob("*.py"):
        text = path.read_text()
        rev = _REV_RE.search(text)
        if not rev:
            continue
        revisions.add(rev.group(1))
        down = _DOWN_RE.search(text)
        if down:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)
