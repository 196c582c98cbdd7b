"""The ``yard.data`` functions: add, get, load, show, list, diff, profile."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard._workspace import Workspace
from modelyard.data._service import DataService, DatasetVersion

if TYPE_CHECKING:
    from modelyard.data._profile import Profile

__all__ = ["add", "diff", "get", "list_datasets", "load", "profile", "show", "versions"]

Uri = str | os.PathLike[str] | Workspace | None


def _svc(uri: Uri) -> DataService:
    return DataService(uri if isinstance(uri, Workspace) else (os.fspath(uri) if uri is not None else None))


def add(
    source: Any,
    *,
    name: str,
    description: str | None = None,
    profile: bool = True,
    uri: Uri = None,
) -> DatasetVersion:
    """Store a file, a folder or a pandas/polars frame as the next version of dataset ``name``.

    Tabular files (Parquet, CSV, Arrow/Feather) get a schema and a profile. Adding the same bytes
    as the latest version creates nothing: the latest version is returned with ``created=False``.
    Inside an active run the new version records the run that produced it.
    """
    from modelyard.tracking._run import active_run

    run = active_run()
    return _svc(uri).add(
        source, name, description=description, run_id=run.id if run else None, profile=profile
    )


def get(ref: str, dest: str | os.PathLike[str], *, link: bool = False, uri: Uri = None) -> Path:
    """Write the files of ``ref`` (``name@v3``) under ``dest`` as verified copies (reflinks where the
    filesystem has them). ``link=True`` hard-links the stored blobs: editing such a file corrupts the
    version."""
    return _svc(uri).get(ref, dest, link=link)


def load(ref: str, *, engine: str = "pandas", columns: list[str] | None = None, uri: Uri = None) -> Any:
    """The tabular files of ``ref`` as one DataFrame (``engine``: ``pandas``, ``polars`` or ``arrow``)."""
    return _svc(uri).load(ref, engine=engine, columns=columns)


def versions(name: str, *, uri: Uri = None) -> list[DatasetVersion]:
    """Every version of a dataset, oldest first."""
    return _svc(uri).versions(name)


def list_datasets(*, uri: Uri = None) -> list[dict[str, Any]]:
    """Every dataset with its latest version."""
    return _svc(uri).list_datasets()


def show(ref: str, *, uri: Uri = None) -> dict[str, Any]:
    """A version's record, files, schema, profile and the runs that used it (JSON-ready)."""
    svc = _svc(uri)
    v = svc.resolve(ref)
    prof = svc.profile(v)
    entries = svc.manifest(v)
    return {
        "version": v.to_dict(),
        "versions": [x.to_dict() for x in svc.versions(v.name)],
        "files": [{"path": e.path, "size": e.size, "digest": e.digest} for e in entries],
        "schema": svc.schema(v),
        "profile": prof.to_dict() if prof is not None else None,
        "runs": svc.runs_using(v),
    }


def diff(a: str, b: str, *, uri: Uri = None) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: files, schema, per-column statistics (with PSI)."""
    return _svc(uri).diff(a, b)


def profile(data: Any) -> Profile:
    """Profile a frame (pandas, polars, Arrow) or a tabular file, streaming record batches."""
    from modelyard.data._io import iter_batches_of
    from modelyard.data._profile import ProfileBuilder

    if isinstance(data, str | os.PathLike):
        from modelyard.data._io import TabularSource, detect_format, iter_file_batches
        from modelyard.errors import InvalidArgumentError, NotFoundError

        p = Path(data)
        if not p.exists():
            raise NotFoundError(f"Cannot profile {str(p)!r}: no such file.")
        fmt = detect_format(p)
        if fmt is None:
            raise InvalidArgumentError(
                f"Cannot profile {str(p)!r}: not a Parquet, CSV or Arrow/Feather file (by its name)."
            )
        batches = iter_file_batches(TabularSource(p, fmt, str(p)), dictionary_strings=True)
    else:
        batches = iter_batches_of(data)
    b = ProfileBuilder()
    for batch in batches:
        b.add(batch)
    return b.result()


#: The :mod:`modelyard.data` package itself: ``yard.data`` resolves to it through the top-level export table.
module: Any = sys.modules[__name__.rpartition(".")[0]]
