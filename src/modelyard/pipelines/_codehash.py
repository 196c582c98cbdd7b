"""The code part of a step's cache key: its source and what it references from user modules.

``code_fingerprint(fn)`` returns ``{qualified name: digest}`` for the step function and, walking
its bytecode transitively, every function and class it reaches through globals, closure cells
and module attributes (``helpers.clean(...)``) that lives in the user's own modules (not in the
standard library, not in site-packages, not in modelyard), plus the values of simple global
constants (``WINDOW = 7``).

Normalization: sources are parsed and compared as ASTs with docstrings and decorators
removed, so whitespace, comments, docstrings and decorator options (``retries=``) do not
change the key; any change to the code itself does.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import sysconfig
import textwrap
import types
import weakref
from collections.abc import Callable
from typing import Any

from modelyard.blobs import hash_bytes

__all__ = ["code_fingerprint", "is_user_module"]

_SIMPLE = (int, float, str, bytes, bool, type(None))


def _system_roots() -> tuple[str, ...]:
    roots = set()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p:
            roots.add(os.path.realpath(p))
    for p in sys.path:
        if "site-packages" in p or "dist-packages" in p:
            roots.add(os.path.realpath(p))
    roots.add(
        os.path.realpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    )  # modelyard itself
    return tuple(sorted(roots))


_ROOTS: tuple[str, ...] | None = None
_module_cache: dict[str, bool] = {}


def is_user_module(module_name: str | None) -> bool:
    """True when ``module_name`` is the user's own code (not stdlib, site-packages or modelyard)."""
    global _ROOTS
    if not module_name:
        return False
    cached = _module_cache.get(module_name)
    if cached is not None:
        return cached
    mod = sys.modules.get(module_name)
    file = getattr(mod, "__file__", None)
    if mod is None or not file:
        result = module_name == "__main__"
    else:
        if _ROOTS is None:
            _ROOTS = _system_roots()
        real = os.path.realpath(file)
        result = not any(real == r or real.startswith(r + os.sep) for r in _ROOTS)
    _module_cache[module_name] = result
    return result


class _Normalize(ast.NodeTransformer):
    def _strip(self, node: Any) -> Any:
        node.decorator_list = []
        body = node.body
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
            if isinstance(first.value.value, str):
                node.body = body[1:] or [ast.Pass()]
        self.generic_visit(node)
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _strip


def _source_digest(obj: Any) -> str:
    try:
        src = textwrap.dedent(inspect.getsource(obj))
    except (OSError, TypeError):
        code = getattr(obj, "__code__", None)
        if code is None:  # no source and no bytecode: the name is all we have
            return hash_bytes(_qual(obj).encode())
        return hash_bytes(_code_bytes(code))
    try:
        tree = ast.parse(src)
    except SyntaxError:  # a lambda inside an expression: keep the text
        return hash_bytes(src.strip().encode())
    tree = _Normalize().visit(tree)
    return hash_bytes(ast.dump(tree, annotate_fields=False).encode())


def _code_bytes(code: types.CodeType) -> bytes:
    """Bytecode, names and constants of a code object without memory addresses (no source)."""
    parts = [code.co_code, repr(code.co_names).encode()]
    for const in code.co_consts:
        parts.append(_code_bytes(const) if isinstance(const, types.CodeType) else repr(const).encode())
    return b"\x00".join(parts)


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _qual(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', getattr(obj, '__name__', '?'))}"


_fp_cache: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()


def code_fingerprint(fn: Callable[..., Any]) -> dict[str, str]:
    """``{qualified name: digest}`` of ``fn`` and everything it references in user modules."""
    try:
        cached = _fp_cache.get(fn)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    out: dict[str, str] = {}
    _visit(fn, out, root=True)
    try:
        _fp_cache[fn] = out
    except TypeError:
        pass
    return out


def _visit(obj: Any, out: dict[str, str], *, root: bool = False) -> None:
    obj = inspect.unwrap(obj) if callable(obj) else obj
    name = _qual(obj)
    if name in out:
        return
    if not root and not is_user_module(getattr(obj, "__module__", None)):
        return
    out[name] = _source_digest(obj)
    if isinstance(obj, type):
        for member in vars(obj).values():
            target = member.__func__ if isinstance(member, classmethod | staticmethod) else member
            if isinstance(target, property):
                target = target.fget
            if isinstance(target, types.FunctionType):
                _follow(target, out)
        return
    if isinstance(obj, types.FunctionType):
        _follow(obj, out)


def _follow(fn: types.FunctionType, out: dict[str, str]) -> None:
    names = _names(fn.__code__)
    refs: list[tuple[str, Any]] = [(n, fn.__globals__[n]) for n in names if n in fn.__globals__]
    for var, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        try:
            refs.append((var, cell.cell_contents))
        except ValueError:
            continue
    module = fn.__module__
    for var, value in refs:
        if isinstance(value, types.ModuleType):
            if is_user_module(value.__name__):
                for attr in names:
                    member = getattr(value, attr, None)
                    if isinstance(member, types.FunctionType | type):
                        _visit(member, out)
            continue
        if isinstance(value, types.FunctionType | type):
            _visit(value, out)
        elif isinstance(value, _SIMPLE) or (
            isinstance(value, tuple | frozenset) and all(isinstance(v, _SIMPLE) for v in value)
        ):
            if is_user_module(module):
                out[f"{module}.{var} (constant)"] = hash_bytes(repr(value).encode())
