"""The import contract: imports point down the layers only (DEVELOPING.md, "Layers").

Every module under ``src/modelyard`` is parsed and every import in it is checked, including the
ones inside functions (a lazy import is still a dependency), ``importlib.import_module("...")``
with a literal name, and strings naming a modelyard module in a table (``"pkg.mod:attr"``). A
module may import its own package, any package of a lower layer, and a sibling package of its
own layer only where the layer allows it (the doors and the shared helpers at the bottom do;
registry and data, say, stay independent). A new top-level module must be given a layer here.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "modelyard"

#: Top to bottom: (name, top-level modules/packages of modelyard, may siblings import each other).
#: ``""`` is the package root (``modelyard/__init__.py``: the lazy public API, a door).
LAYERS: list[tuple[str, frozenset[str], bool]] = [
    ("doors", frozenset({"", "cli", "server", "webui", "quickstart", "__main__", "_maintenance"}), True),
    # automation composes monitoring's alerts, pipelines, evaluation's gates and rollouts: above them
    ("close the loop", frozenset({"automation"}), False),
    ("decide over time", frozenset({"rollout", "monitoring", "deploy"}), False),
    ("run models and steps", frozenset({"serving", "evaluation", "pipelines"}), False),
    ("versioned things", frozenset({"registry", "data"}), False),
    ("runs", frozenset({"tracking"}), False),
    ("workspace", frozenset({"_workspace"}), False),
    ("bytes and rows", frozenset({"store", "blobs"}), False),
    (
        "shared helpers",
        frozenset(
            {
                "errors",
                "config",
                "ui",
                "_shared",
                "_hooks",
                "_json",
                "_yaml",
                "_redact",
                "_stats",
                "_version",
                "_heads",
                "_rpc",
                "_remote",
                "_prometheus",
            }
        ),
        True,
    ),
]

_MODULE_STRING = re.compile(r"^modelyard(?:\.\w+)+(?::\w+)?$")


@dataclass(frozen=True)
class Dependency:
    module: str  # the importing module, e.g. modelyard.tracking._run
    target: str  # the imported module, e.g. modelyard.registry._api
    line: int
    how: str  # "import", "importlib" or "string"


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _layer(top: str) -> int | None:
    for i, (_, tops, _) in enumerate(LAYERS):
        if top in tops:
            return len(LAYERS) - i  # higher number, higher layer
    return None


def _layer_name(top: str) -> str:
    for name, tops, _ in LAYERS:
        if top in tops:
            return name
    return "?"


def module_names(src: Path = SRC) -> dict[str, Path]:
    out = {}
    for path in sorted(src.rglob("*.py")):
        parts = list(path.relative_to(src.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def dependencies(module: str, source: str, known: set[str], is_package: bool = False) -> list[Dependency]:
    """Every modelyard module ``module`` depends on, wherever in the file the import is."""

    def resolve(name: str) -> str:  # the longest known module prefix of a dotted name
        while name not in known and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    here = module.split(".") if is_package else module.split(".")[:-1]
    found: list[Dependency] = []
    import_args: set[int] = set()  # literal names given to import_module, not counted twice
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                Dependency(module, resolve(a.name), node.lineno, "import")
                for a in node.names
                if a.name.split(".")[0] == "modelyard"
            ]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            if base.split(".")[0] != "modelyard":
                continue
            for alias in node.names:  # `from modelyard import _hooks` imports modelyard._hooks
                found.append(Dependency(module, resolve(f"{base}.{alias.name}"), node.lineno, "import"))
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                getattr(node.func, "attr", None) == "import_module"
                or getattr(node.func, "id", None) in ("import_module", "__import__")
            )
        ):
            name = node.args[0].value
            import_args.add(id(node.args[0]))
            if name.split(".")[0] == "modelyard":
                found.append(Dependency(module, resolve(name), node.lineno, "importlib"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in import_args
            and _MODULE_STRING.match(node.value)
        ):
            name = node.value.split(":")[0]
            if name in known:
                found.append(Dependency(module, name, node.lineno, "string"))
    return found


def violations(deps: list[Dependency]) -> list[str]:
    """One line per dependency that breaks the layer order, naming the import and both layers."""
    out = []
    for dep in deps:
        src_top, dst_top = _top(dep.module), _top(dep.target)
        if src_top == dst_top:
            continue
        src_layer, dst_layer = _layer(src_top), _layer(dst_top)
        if src_layer is None or dst_layer is None:
            unknown = dep.module if src_layer is None else dep.target
            out.append(
                f"{unknown} has no layer: add it to LAYERS in tests/test_layers.py (and DEVELOPING.md)"
            )
            continue
        where = f"{dep.module} (line {dep.line}) imports {dep.target}"
        if dep.how != "import":
            where = f"{dep.module} (line {dep.line}) names {dep.target} ({dep.how})"
        if dst_layer > src_layer:
            out.append(
                f"{where}: layer {_layer_name(src_top)!r} must not import the higher layer "
                f"{_layer_name(dst_top)!r}"
            )
        elif dst_layer == src_layer and not LAYERS[len(LAYERS) - src_layer][2]:
            out.append(
                f"{where}: {src_top} and {dst_top} are independent packages of layer {_layer_name(src_top)!r}"
            )
    return sorted(set(out))


def test_every_import_points_down_the_layers() -> None:
    modules = module_names()
    known = set(modules)
    deps = []
    for name, path in modules.items():
        deps += dependencies(name, path.read_text(), known, is_package=path.name == "__init__.py")
    assert len(deps) > 500  # the walk really saw the code base
    problems = violations(deps)
    assert not problems, "Imports must point down the layers (DEVELOPING.md, 'Layers'):\n" + "\n".join(
        problems
    )


def test_every_top_level_module_has_a_layer() -> None:
    tops = {
        p.stem if p.suffix else p.name
        for p in SRC.iterdir()
        if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and (p / "__init__.py").exists())
    }
    missing = sorted(t for t in tops if _layer(t) is None)
    assert not missing, f"Give these modules a layer in tests/test_layers.py and DEVELOPING.md: {missing}"


_KNOWN = {
    "modelyard",
    "modelyard.tracking",
    "modelyard.tracking._run",
    "modelyard.registry",
    "modelyard.registry._api",
    "modelyard.data",
    "modelyard.data._service",
    "modelyard._hooks",
    "modelyard.errors",
    "modelyard.evaluation",
    "modelyard.evaluation._hooks",
}


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "modelyard.tracking._run",
            "def log_model(self):\n    from modelyard.registry._api import log_model\n",
            "modelyard.tracking._run (line 2) imports modelyard.registry._api: layer 'runs' must "
            "not import the "
            "higher layer 'versioned things'",
        ),
        (
            "modelyard.tracking._run",
            "import importlib\ndef f():\n    return importlib.import_module('modelyard.data._service')\n",
            "modelyard.tracking._run (line 3) names modelyard.data._service (importlib): layer "
            "'runs' must not "
            "import the higher layer 'versioned things'",
        ),
        (
            "modelyard.registry._card",
            "SECTIONS = ['modelyard.evaluation._hooks:card_section']\n",
            "modelyard.registry._card (line 1) names modelyard.evaluation._hooks (string): layer "
            "'versioned things' "
            "must not import the higher layer 'run models and steps'",
        ),
        (
            "modelyard.data._api",
            "from .. import registry\n",
            "modelyard.data._api (line 1) imports modelyard.registry: data and registry are "
            "independent packages "
            "of layer 'versioned things'",
        ),
        (
            "modelyard.tracking._x",
            "import modelyard\n",
            "modelyard.tracking._x (line 1) imports modelyard: layer 'runs' must not import the "
            "higher layer 'doors'",
        ),
    ],
)
def test_the_contract_names_the_offending_import_and_the_layers(
    module: str, source: str, expected: str
) -> None:
    assert violations(dependencies(module, source, _KNOWN)) == [expected]


def test_downward_imports_and_the_bottom_layer_pass() -> None:
    source = (
        "from modelyard import _hooks\nfrom modelyard.errors import NotFoundError\n"
        "def f():\n    from modelyard.tracking._run import Run\n    import modelyard.tracking\n"
    )
    deps = dependencies("modelyard.registry._api", source, _KNOWN)
    assert {d.target for d in deps} == {
        "modelyard._hooks",
        "modelyard.errors",
        "modelyard.tracking._run",
        "modelyard.tracking",
    }
    assert violations(deps) == []
    unknown = dependencies(
        "modelyard.newthing._x",
        "from modelyard.errors import NotFoundError\n",
        _KNOWN | {"modelyard.newthing"},
    )
    assert violations(unknown) == [
        "modelyard.newthing._x has no layer: add it to LAYERS in tests/test_layers.py (and DEVELOPING.md)"
    ]
