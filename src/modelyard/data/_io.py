"""Reading tabular files (Parquet, CSV, Arrow/Feather) as streams of Arrow record batches.

Every reader yields bounded record batches, so profiling and validation never hold a whole file.
Errors name the file (and, for CSV, the row pyarrow reports) and say how to fix it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from modelyard.errors import InvalidArgumentError, NotFoundError

__all__ = [
    "BATCH_ROWS",
    "TABULAR_FORMATS",
    "TabularSource",
    "detect_format",
    "iter_batches_of",
    "iter_file_batches",
    "read_table",
    "schema_of_file",
    "unify_schemas",
]

#: Rows per record batch when streaming files.
BATCH_ROWS = 262_144

_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".arrow": "arrow",
    ".feather": "arrow",
    ".ipc": "arrow",
}
TABULAR_FORMATS = frozenset(_SUFFIXES.values())
_LAST = frozenset([*_SUFFIXES, ".gz", ".bz2", ".zst"])


def detect_format(path: str | os.PathLike[str]) -> str | None:
    """``parquet``, ``csv``, ``arrow`` from the file name (``.csv.gz`` counts as csv), else None."""
    raw = os.fspath(path)
    if raw[raw.rfind(".") :].lower() not in _LAST:  # the common case of a plain file, cheaply
        return None
    name = os.path.basename(raw).lower()
    for comp in (".gz", ".bz2", ".zst"):
        if name.endswith(comp):
            name = name[: -len(comp)]
    dot = name.rfind(".")
    return _SUFFIXES.get(name[dot:]) if dot > 0 else None


@dataclass(frozen=True)
class TabularSource:
    """One tabular file to read: ``path`` on disk (or an open file object) and its format."""

    path: Any
    format: str
    label: str  # how errors name it (the path in the dataset)


def _fail(label: str, fmt: str, exc: BaseException) -> InvalidArgumentError:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InvalidArgumentError(
        f"Cannot read {label!r} as {fmt}: {msg}. Check that the file is a valid {fmt} file."
    )


def _open_arrow(path: Any) -> Any:
    import pyarrow as pa

    try:
        return pa.ipc.open_file(path)
    except pa.ArrowInvalid:
        if hasattr(path, "seek"):
            path.seek(0)
        return pa.ipc.open_stream(path)


def _rewind(src: TabularSource) -> None:
    """A source held in memory (a blob read from a remote store) is read from its start each time:
    the schema, then the batches."""
    if hasattr(src.path, "seek"):
        src.path.seek(0)


def schema_of_file(src: TabularSource) -> Any:
    """The Arrow schema of a file (reads only the footer/header where the format allows)."""
    import pyarrow as pa

    _rewind(src)
    try:
        if src.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(src.path).schema_arrow
        if src.format == "arrow":
            return _open_arrow(src.path).schema
        reader = _csv_reader(src)
        return reader.schema
    except FileNotFoundError as exc:
        raise NotFoundError(f"Cannot read {src.label!r}: the file does not exist.") from exc
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _fail(src.label, src.format, exc) from exc


def _csv_reader(src: TabularSource) -> Any:
    import pyarrow.csv as pcsv

    name = str(src.label).lower()
    delimiter = "\t" if name.endswith((".tsv", ".tsv.gz")) else ","
    return pcsv.open_csv(
        src.path,
        read_options=pcsv.ReadOptions(block_size=1 << 24),
        parse_options=pcsv.ParseOptions(delimiter=delimiter),
    )


def iter_file_batches(
    src: TabularSource, *, columns: Sequence[str] | None = None, dictionary_strings: bool = False
) -> Iterator[Any]:
    """Record batches of one file (at most :data:`BATCH_ROWS` rows each).

    ``dictionary_strings=True`` reads Parquet string columns dictionary-encoded (no string
    materialization; profiling counts dictionary indices), which halves the decode work.
    """
    import pyarrow as pa

    _rewind(src)
    try:
        if src.format == "parquet":
            import pyarrow.parquet as pq

            read_dictionary = None
            if dictionary_strings:
                schema = pq.read_schema(src.path) if not hasattr(src.path, "seek") else None
                if schema is not None:
                    read_dictionary = [
                        f.name
                        for f in schema
                        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                    ]
            pf = pq.ParquetFile(src.path, read_dictionary=read_dictionary or None)
            yield from pf.iter_batches(batch_size=BATCH_ROWS, columns=list(columns) if columns else None)
            return
        if src.format == "arrow":
            reader = _open_arrow(src.path)
            if hasattr(reader, "num_record_batches"):
                for i in range(reader.num_record_batches):
                    b = reader.get_batch(i)
                    yield b.select(list(columns)) if columns else b
            else:
                for b in reader:
                    yield b.select(list(columns)) if columns else b
            return
        reader = _csv_reader(src)
        for b in reader:
            yield b.select(list(columns)) if columns else b
    except FileNotFoundError as exc:
        raise NotFoundError(f"Cannot read {src.label!r}: the file does not exist.") from exc
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _fail(src.label, src.format, exc) from exc


def unify_schemas(sources: Sequence[TabularSource]) -> Any:
    """The one schema every file shares; a file with other columns or types is an error naming both."""
    first = None
    first_label = ""
    for src in sources:
        schema = schema_of_file(src)
        schema = schema.remove_metadata()
        if first is None:
            first, first_label = schema, src.label
            continue
        a = {f.name: f.type for f in first}
        b = {f.name: f.type for f in schema}
        missing = [n for n in a if n not in b]
        extra = [n for n in b if n not in a]
        if missing or extra:
            what = []
            if missing:
                what.append(f"lacks column(s) {', '.join(map(repr, missing))}")
            if extra:
                what.append(f"has extra column(s) {', '.join(map(repr, extra))}")
            raise InvalidArgumentError(
                f"Mixed schemas: {src.label!r} {' and '.join(what)} compared with {first_label!r}. "
                "Every tabular file of a dataset version must have the same columns; add them as "
                "separate datasets."
            )
        for n, t in a.items():
            if b[n] != t:
                raise InvalidArgumentError(
                    f"Mixed schemas: column {n!r} is {b[n]} in {src.label!r} but {t} in {first_label!r}. "
                    "Cast the column to one type in every file."
                )
    return first


def read_table(sources: Sequence[TabularSource], *, columns: Sequence[str] | None = None) -> Any:
    """All files concatenated into one Arrow table."""
    import pyarrow as pa

    schema = unify_schemas(sources)
    batches = [b for s in sources for b in iter_file_batches(s, columns=columns)]
    if columns:
        schema = pa.schema([schema.field(c) for c in columns])
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches([b.cast(schema) if b.schema != schema else b for b in batches])


def iter_batches_of(obj: Any, batch_size: int = 262_144) -> Iterator[Any]:
    """Record batches of a pandas/polars frame or an Arrow table."""
    import pyarrow as pa

    if isinstance(obj, pa.RecordBatch):
        yield obj
        return
    if isinstance(obj, pa.Table):
        yield from obj.to_batches(max_chunksize=batch_size)
        return
    mod = type(obj).__module__
    if mod.startswith("polars"):
        yield from obj.to_arrow().to_batches(max_chunksize=batch_size)
        return
    if mod.startswith("pandas"):
        n = len(obj)
        if n == 0:
            yield pa.RecordBatch.from_pandas(obj, preserve_index=False)
            return
        for start in range(0, n, batch_size):
            yield pa.RecordBatch.from_pandas(obj.iloc[start : start + batch_size], preserve_index=False)
        return
    from modelyard.errors import invalid_param

    raise invalid_param(
        "data", "profile", "a pandas or polars DataFrame, an Arrow table or a file path", type(obj).__name__
    )
