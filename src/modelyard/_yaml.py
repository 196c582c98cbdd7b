"""The one way modelyard reads YAML: safe types only, and bounded in size, nesting and aliases.

Every YAML file the product reads (expectation suites, gate policies, alert rules, deployment
specs...) goes through :func:`load_yaml` / :func:`compose_yaml`. They use ``yaml.SafeLoader``
(the libyaml ``CSafeLoader`` when installed) and refuse, before building anything:

- a document over :data:`MAX_BYTES` (a file is never read past that);
- collections nested deeper than :data:`MAX_DEPTH`;
- aliases (``*name``) that together expand to more than :data:`MAX_ALIAS_NODES` values — the
  "billion laughs" bomb is a few hundred bytes of aliases of aliases — or an alias inside its
  own anchor (a cycle that any walk over the document would follow forever).

Those checks run over the parser's event stream (no recursion, constant memory per level), so
the document is composed only once it is known to be small. Limit errors are
:class:`~modelyard.errors.InvalidArgumentError` naming the document and the limit; syntax errors
stay PyYAML's ``yaml.YAMLError`` (with ``problem_mark``) so callers can report them at their line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidArgumentError

__all__ = ["MAX_ALIAS_NODES", "MAX_BYTES", "MAX_DEPTH", "compose_yaml", "load_yaml", "read_yaml_text"]

MAX_BYTES = 8 * 1024 * 1024
"""Largest YAML document read (8 MiB; an expectation suite of 10,000 columns is about 1 MiB)."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences."""
MAX_ALIAS_NODES = 100_000
"""Most values that aliases (``*name``) may add to a document when expanded."""

Source = str | bytes | os.PathLike[str]


def _loader() -> type[Any]:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _label(what: str, name: str | None) -> str:
    return f"The {what} {name!r}" if name else f"The {what}"


def read_yaml_text(path: str | os.PathLike[str], *, what: str, max_bytes: int = MAX_BYTES) -> str:
    """The text of the YAML file ``path``, refusing (before reading it all) a file over ``max_bytes``.

    A missing file raises ``FileNotFoundError`` (callers name the command that writes one)."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = fh.read(max_bytes + 1)  # a special file (/dev/zero, a pipe) has no size to check first
    except (IsADirectoryError, PermissionError) as exc:  # FileNotFoundError is the caller's to explain
        raise InvalidArgumentError(
            f"{_label(what, os.fspath(path))} cannot be read: {exc.strerror}."
        ) from None
    if len(data) > max_bytes:
        size = p.stat().st_size
        label = _label(what, os.fspath(path))
        if size > max_bytes:
            raise InvalidArgumentError(
                f"{label} is {_mib(size)}; YAML files are limited to {_mib(max_bytes)}."
            )
        raise InvalidArgumentError(f"{label} holds more than {_mib(max_bytes)}, the limit for YAML files.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"{_label(what, os.fspath(path))} is not UTF-8 text (byte {exc.start} is {data[exc.start]:#04x})."
        ) from None


def _mib(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def _text(source: Source, what: str, name: str | None, max_bytes: int) -> tuple[str, str | None]:
    if isinstance(source, os.PathLike):
        return read_yaml_text(source, what=what, max_bytes=max_bytes), name or os.fspath(source)
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="replace")
    # a str of n characters holds at least n bytes: only count bytes when it could be over
    if len(source) > max_bytes // 4 and len(source.encode("utf-8")) > max_bytes:
        raise InvalidArgumentError(
            f"{_label(what, name)} is {_mib(len(source.encode('utf-8')))}; YAML documents are limited to "
            f"{_mib(max_bytes)}."
        )
    return source, name


def _check_events(text: str, what: str, name: str | None) -> None:
    """Refuse deep nesting and alias expansion (bombs, cycles) from the event stream."""
    import yaml

    label = _label(what, name)
    stack: list[list[Any]] = []  # per open collection: [values inside so far, its anchor]
    sizes: dict[str, int] = {}  # anchor -> values it stands for (itself and everything inside)
    open_anchors: set[str] = set()
    from_aliases = 0
    for ev in yaml.parse(text, Loader=_loader()):
        line = ev.start_mark.line + 1 if ev.start_mark is not None else 0
        if isinstance(ev, yaml.CollectionStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise InvalidArgumentError(
                    f"{label} nests mappings and lists more than {MAX_DEPTH} levels deep (line {line})."
                )
            stack.append([1, ev.anchor])
            if ev.anchor is not None:
                open_anchors.add(ev.anchor)
            continue
        if isinstance(ev, yaml.CollectionEndEvent):
            n, anchor = stack.pop()
            if anchor is not None:
                sizes[anchor] = n
                open_anchors.discard(anchor)
        elif isinstance(ev, yaml.ScalarEvent):
            n = 1
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor in open_anchors:
                raise InvalidArgumentError(
                    f"{label} uses the alias *{ev.anchor} inside its own anchor &{ev.anchor} (line {line}), "
                    "a structure that contains itself."
                )
            n = (
                sizes.get(ev.anchor, 1) if ev.anchor is not None else 1
            )  # an undefined alias is reported by the composer, with its line
            from_aliases += n
            if from_aliases > MAX_ALIAS_NODES:
                raise InvalidArgumentError(
                    f"{label} uses YAML aliases (*{ev.anchor} on line {line}) that expand to more than "
                    f"{MAX_ALIAS_NODES:,} values; write the values out instead of repeating aliases."
                )
        else:
            continue
        if stack:
            stack[-1][0] += n


def compose_yaml(source: Source, *, what: str, name: str | None = None, max_bytes: int = MAX_BYTES) -> Any:
    """The node tree (``yaml.Node`` or None) of one YAML document, for messages with line numbers.

    ``source`` is YAML text (``str``/``bytes``) or a path (``pathlib.Path``); ``what`` names the
    document in errors ("gate policy"), with ``name`` (the file) when given.
    """
    import yaml

    text, name = _text(source, what, name, max_bytes)
    _check_events(text, what, name)
    return yaml.compose(text, Loader=_loader())


def load_yaml(source: Source, *, what: str, name: str | None = None, max_bytes: int = MAX_BYTES) -> Any:
    """The Python value of one YAML document (safe types only); see :func:`compose_yaml`."""
    import yaml

    text, name = _text(source, what, name, max_bytes)
    _check_events(text, what, name)
    return yaml.load(text, Loader=_loader())
