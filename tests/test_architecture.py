"""The package's shape: imports point down the flow, form no cycle, and respect private names.

DESIGN.md's flow (dataset -> network -> mapping -> Circuit -> engine -> ... -> report, CLI on top)
is written here once as an ordered list of layers; the test reads every module's imports with
``ast`` (module level and inside functions alike) and checks them against it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import neurodtco

PACKAGE_DIR = Path(neurodtco.__file__).parent

#: Lowest first. A module may import from its own layer and the layers below, never above.
LAYERS: list[set[str]] = [
    {"_validate", "seeds", "yamlfile", "ops", "stats"},
    {"devices"},
    {"circuit"},
    {"data"},
    {"network"},
    {"mapping"},
    {"engines", "netlist", "ngspice_run"},
    {"plots"},
    {"defects"},
    {"imperfections"},
    {"periphery"},
    {"correction"},
    {"mitigation"},
    {"wafer"},
    {"store"},
    {"study"},
    {"report"},
    {"cli", "__main__", ""},  # "" is the package's own __init__ (the public API re-exports)
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:]) if "." in dotted else Path()
    base = PACKAGE_DIR / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _imports() -> dict[str, set[str]]:
    """For every module of the package, the fully qualified names it imports from the package."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in PACKAGE_DIR.rglob("*.py"):
        module = _module_name(path)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if not source.startswith("neurodtco"):
                    continue
                for alias in node.names:
                    candidate = f"{source}.{alias.name}"
                    found[module].add(candidate)
            elif isinstance(node, ast.Import):
                found[module].update(a.name for a in node.names if a.name.startswith("neurodtco"))
    return found


def _layer_of(dotted: str) -> int:
    parts = dotted.split(".")
    top = parts[1] if len(parts) > 1 else ""
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"{dotted}: top-level name {top!r} is in no layer; add it to LAYERS in this test")


def _owner(dotted: str) -> str:
    """The module path a name belongs to (``a.b.c`` for ``a.b.c.name`` when ``a.b.c`` is a module)."""
    return dotted if _is_module(dotted) else dotted.rsplit(".", 1)[0]


def test_every_module_has_a_layer() -> None:
    for module in _imports():
        _layer_of(module)


def test_imports_point_down_the_flow() -> None:
    upward = []
    for module, names in sorted(_imports().items()):
        for name in sorted(names):
            target = _owner(name)
            if target == "neurodtco":  # `from .. import netlist` names a submodule, resolved above
                continue
            if _layer_of(target) > _layer_of(module):
                upward.append(f"{module} imports {name}")
    assert not upward, "imports pointing back up the flow:\n" + "\n".join(upward)


def test_no_import_cycle_between_top_level_parts() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, names in _imports().items():
        src = module.split(".")[1] if "." in module else ""
        for name in names:
            parts = _owner(name).split(".")
            dst = parts[1] if len(parts) > 1 else ""
            if src != dst and dst:
                graph[src].add(dst)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path
                            else f"import cycle through {nxt}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_no_module_imports_another_packages_private_names() -> None:
    offences = []
    for module, names in sorted(_imports().items()):
        for name in sorted(names):
            parts = name.split(".")
            for depth, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:depth])  # the package or module that keeps the name private
                    if not (module == owner or module.startswith(owner + ".")):
                        offences.append(f"{module} imports {name}")
                    break
    assert not offences, "private names used outside their package:\n" + "\n".join(offences)


def test_the_checks_see_real_imports() -> None:
    """Guards the parser itself: known edges of the flow must be found."""
    found = _imports()
    assert any(n.startswith("neurodtco.circuit") for n in found["neurodtco.engines.nodal"])
    assert any(n.startswith("neurodtco.devices") for n in found["neurodtco.circuit"])
    assert _layer_of("neurodtco.cli") > _layer_of("neurodtco.engines.nodal") > _layer_of("neurodtco.circuit")
