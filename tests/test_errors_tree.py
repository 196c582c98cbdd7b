"""Every exception class of modelyard is in the ModelyardError tree (or is a programmer error), and is
drawn in errors.py's docstring; the few kept outside are listed there with the reason."""

from __future__ import annotations

import ast
import builtins
import re
from pathlib import Path

import modelyard.errors

SRC = Path(__file__).resolve().parents[1] / "src" / "modelyard"
_BUILTIN = {
    n
    for n in dir(builtins)
    if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), BaseException)
}


def exception_classes(sources: dict[str, str]) -> dict[str, tuple[str, list[str]]]:
    """Class name → (module, base names) for every class deriving from an exception (warnings left out)."""
    classes: dict[str, tuple[str, list[str]]] = {}
    for module, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
                classes[node.name] = (module, bases)
    found = {n for n, (_, bases) in classes.items() if any(b in _BUILTIN for b in bases)}
    while True:  # subclasses of the ones found so far
        more = {n for n, (_, bases) in classes.items() if n not in found and any(b in found for b in bases)}
        if not more:
            break
        found |= more

    def is_warning(name: str) -> bool:
        bases = classes[name][1]
        return any(b.endswith("Warning") or (b in classes and is_warning(b)) for b in bases)

    return {n: classes[n] for n in found if not is_warning(n)}


def roots(name: str, classes: dict[str, tuple[str, list[str]]]) -> set[str]:
    if name in ("ModelyardError", "UsageError"):
        return {name}
    if name not in classes:
        return {name}
    return set().union(*(roots(b, classes) for b in classes[name][1]))


def problems(classes: dict[str, tuple[str, list[str]]], doc: str) -> list[str]:
    tree, _, outside = doc.partition("Outside the tree on purpose")
    out = []
    for name, (module, _) in sorted(classes.items()):
        in_tree = bool(roots(name, classes) & {"ModelyardError", "UsageError"})
        if in_tree and not re.search(rf"(?<![\w(]){name}\b", tree):
            out.append(f"{module}.{name} is in the tree but not drawn in errors.py's docstring")
        elif not in_tree and not re.search(rf"\b{name}\(", outside):
            out.append(
                f"{module}.{name} is outside the ModelyardError tree: derive it from a ModelyardError "
                "subclass (or UsageError for a programmer error), or list it in errors.py under "
                "'Outside the tree on purpose' with the reason"
            )
    return out


def test_every_exception_is_in_the_tree_and_drawn() -> None:
    sources = {
        ".".join(p.relative_to(SRC.parent).with_suffix("").parts): p.read_text() for p in SRC.rglob("*.py")
    }
    classes = exception_classes(sources)
    assert {"SwapError", "TargetError", "RevisionConflict", "HTTPProblem", "GateFailed"} <= set(classes)
    assert problems(classes, modelyard.errors.__doc__ or "") == []


def test_a_stray_exception_is_named() -> None:
    classes = exception_classes(
        {
            "modelyard.x": "class Boom(Exception):\n    pass\n"
            "class Fine(ModelyardError):\n    pass\n"
            "class Quiet(UserWarning):\n    pass\n",
            "modelyard.errors": "class ModelyardError(Exception):\n    pass\n",
        }
    )
    assert set(classes) == {"Boom", "Fine", "ModelyardError"}
    assert problems(classes, "ModelyardError\n ├── Fine  x\n") == [
        "modelyard.x.Boom is outside the ModelyardError tree: derive it from a ModelyardError subclass "
        "(or UsageError for a programmer error), or list it in errors.py under 'Outside the tree on purpose' "
        "with the reason"
    ]
    assert problems(classes, "") == [
        "modelyard.x.Boom is outside the ModelyardError tree: derive it from a ModelyardError subclass "
        "(or UsageError for a programmer error), or list it in errors.py under 'Outside the tree on purpose' "
        "with the reason",
        "modelyard.x.Fine is in the tree but not drawn in errors.py's docstring",
        "modelyard.errors.ModelyardError is in the tree but not drawn in errors.py's docstring",
    ]
