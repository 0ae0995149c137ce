"""The package's structure: the floors docs/architecture.md states, no import cycles, no imports hidden in
functions, a small top-level surface and one public path per object."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import hrnet_zoo

SRC = Path(__file__).parent.parent / "src" / "hrnet_zoo"
ARCHITECTURE_DOC = Path(__file__).parent.parent / "docs" / "architecture.md"


def module_name(path: Path) -> str:
    parts = ["hrnet_zoo", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def package_imports(path: Path) -> list[tuple[str, str]]:
    """``(imported hrnet_zoo module, where)`` for every import of the package in ``path``; ``where`` is
    ``"top"`` (module level), ``"typing"`` (an ``if TYPE_CHECKING:`` block at module level) or ``"hidden"``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    typing_only = {id(n) for block in tree.body if _is_type_checking_block(block) for n in ast.walk(block)}
    found = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            for alias in node.names:  # `from . import x` imports the submodule x
                candidate = f"{module}.{alias.name}"
                targets.append(candidate if candidate in MODULES else module)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        where = "top" if id(node) in top_level else "typing" if id(node) in typing_only else "hidden"
        found += [(t, where) for t in targets if t.split(".")[0] == "hrnet_zoo"]
    return found


def documented_floors() -> list[tuple[str, list[str]]]:
    """The floors of docs/architecture.md's house table, bottom first: ``(floor, module prefixes)``."""
    text = ARCHITECTURE_DOC.read_text()
    table = text[text.index("| floor | modules |") :].split("\n\n", 1)[0].splitlines()[2:]
    floors = []
    for row in table:
        floor, modules = (cell.strip() for cell in row.strip("|").split("|")[:2])
        names = [m.removesuffix(".py").removesuffix("/").replace("/", ".") for m in re.findall(r"`([^`]+)`", modules)]
        floors.append((floor, ["hrnet_zoo" if n == "__init__" else f"hrnet_zoo.{n}" for n in names]))
    return floors


def floor_of(module: str, floors: list[tuple[str, list[str]]]) -> int:
    matches = [
        (len(prefix), i)
        for i, (_, prefixes) in enumerate(floors)
        for prefix in prefixes
        if module == prefix or (prefix != "hrnet_zoo" and module.startswith(prefix + "."))
    ]
    assert matches, f"{module} is on no floor of docs/architecture.md"
    return max(matches)[1]


def test_every_module_is_on_a_documented_floor():
    floors = documented_floors()
    assert len(floors) >= 8
    for name in MODULES:
        floor_of(name, floors)


def test_each_floor_imports_only_from_the_floors_below():
    floors = documented_floors()
    upward = []
    for name, path in MODULES.items():
        own = floor_of(name, floors)
        for target, _ in package_imports(path):
            if target in MODULES and floor_of(target, floors) > own:
                upward.append(f"{name} ({floors[own][0]}) imports {target} ({floors[floor_of(target, floors)][0]})")
    assert upward == []


def test_no_package_imports_inside_functions():
    hidden = [
        f"{name} imports {target}"
        for name, path in MODULES.items()
        for target, where in package_imports(path)
        if where == "hidden"
    ]
    assert hidden == []


def test_no_import_cycles():
    graph = {
        n: {t for t, where in package_imports(path) if t in MODULES and t != n and where == "top"}
        for n, path in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])


def test_pure_data_and_blocks_sit_at_the_bottom():
    assert package_imports(MODULES["hrnet_zoo.keypoints"]) == []
    assert package_imports(MODULES["hrnet_zoo._utils"]) == []
    for name, path in MODULES.items():
        if name.startswith(("hrnet_zoo.layers", "hrnet_zoo.codec")):
            inside = {t.split(".")[1] for t, _ in package_imports(path)}
            assert inside <= {"layers", "codec", "keypoints"}, name
            assert "timm" not in path.read_text() or name.startswith("hrnet_zoo.codec"), f"{name} knows timm"


def test_a_small_surface_with_one_path_per_object():
    assert len(hrnet_zoo.__all__) <= 20
    assert "register_model" not in dir(hrnet_zoo), "timm's names are not re-exported"
    namespaces = [n for n in MODULES if n.count(".") == 1 and MODULES[n].name == "__init__.py"]
    paths: dict[int, list[str]] = {}
    for namespace in ["hrnet_zoo", *namespaces]:
        module = __import__(namespace, fromlist=["__all__"])
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not isinstance(obj, (str, int, float, tuple, dict)):  # constants may repeat by value
                paths.setdefault(id(obj), []).append(f"{namespace}.{name}")
    repeated = [p for p in paths.values() if len(p) > 1]
    assert repeated == []


def test_machinery_modules_are_private():
    for name in ("_factory", "_download", "_utils", "models._builder", "models._features", "models._checkpoint"):
        assert f"hrnet_zoo.{name}" in MODULES, name
