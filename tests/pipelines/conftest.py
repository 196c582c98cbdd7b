"""Helpers for pipeline tests: write pipeline modules to files and (re)load them from source."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest


class ModuleFiles:
    """Writes modules into a folder on sys.path and reloads them fresh from source."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def write(self, name: str, source: str) -> Path:
        """Write module ``MOD_<name>``; ``MOD_`` in the source becomes this folder's prefix."""
        path = self.folder / f"{self.prefix}_{name}.py"
        path.write_text(textwrap.dedent(source).replace("MOD_", self.prefix + "_"))
        return path

    def ref(self, name: str, attr: str = "pipe") -> str:
        return f"{self.folder / self.prefix}_{name}.py:{attr}"

    def load(self, name: str, attr: str = "pipe") -> Any:
        """Import ``MOD_<name>`` (and the modules it imports) afresh from source."""
        from modelyard.pipelines import load_pipeline

        for mod in [m for m in sys.modules if m.startswith(self.prefix)]:
            del sys.modules[mod]
        return load_pipeline(self.ref(name, attr))

    @property
    def prefix(self) -> str:
        return self.folder.name


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleFiles:
    """A folder of user modules whose names start with a unique prefix (the folder's name)."""
    import uuid

    folder = tmp_path / f"m{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield ModuleFiles(folder)
    for mod in [m for m in sys.modules if m.startswith(folder.name)]:
        del sys.modules[mod]
