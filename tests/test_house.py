"""The package's structure: no import cycles, no imports hidden in functions, pure data at the bottom."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parent.parent / "src" / "hrnet_zoo"


def module_name(path: Path) -> str:
    parts = ["hrnet_zoo", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def package_imports(path: Path) -> list[tuple[str, bool]]:
    """``(imported hrnet_zoo module, at module level)`` for every import of the package in ``path``."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
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
        found += [(t, id(node) in top_level) for t in targets if t.split(".")[0] == "hrnet_zoo"]
    return found


def test_no_package_imports_inside_functions():
    hidden = [f"{name} imports {target}" for name, path in MODULES.items()
              for target, top in package_imports(path) if not top]  # fmt: skip
    assert hidden == []


def test_no_import_cycles():
    graph = {n: {t for t, _ in package_imports(path) if t in MODULES and t != n} for n, path in MODULES.items()}
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
    for name, path in MODULES.items():
        if name.startswith(("hrnet_zoo.layers", "hrnet_zoo.codec")):
            inside = {t.split(".")[1] for t, _ in package_imports(path)}
            assert inside <= {"layers", "codec", "keypoints"}, name
            assert "timm" not in path.read_text() or name.startswith("hrnet_zoo.codec"), f"{name} knows timm"
