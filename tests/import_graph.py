"""The import graph of our three packages, read from the source with `ast`.

`python -m tests.import_graph` prints the arrows (one module importing another of ours,
at the top or inside a function; imports under `if TYPE_CHECKING:` excluded, they never
run), the circles among them, the arrows between the dashboard's rooms and any circle among
those, and the arrows that run against the layers.
`tests/test_layers.py` holds the code to those layers.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dashboard", "chain_scanner", "executor")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imported(tree: ast.AST, name: str, is_package: bool) -> Iterable[str]:
    """Every module name an import statement of the module `name` names, skipping blocks
    under `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if _type_checking_block(child):
                stack.extend(child.orelse)  # type: ignore[attr-defined]
                continue
            stack.append(child)
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = name.split(".")
                    base = base[: len(base) - child.level + (1 if is_package else 0)]
                    prefix = ".".join(base + ([child.module] if child.module else []))
                else:
                    prefix = child.module or ""
                for alias in child.names:
                    yield f"{prefix}.{alias.name}"


def arrows() -> set[tuple[str, str]]:
    """(importer, imported) for every import of one of our modules by another."""
    known = modules()
    edges: set[tuple[str, str]] = set()
    for name, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        for target in _imported(tree, name, path.name == "__init__.py"):
            # `from pkg import mod` names the module; `from mod import func` its module.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                edges.add((name, target))
    return edges


def circles(edges: set[tuple[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for a, b in edges:
        graph.setdefault(a, []).append(b)
        graph.setdefault(b, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main() -> None:
    edges = arrows()
    inside = {(a, b) for a, b in edges if a.split(".")[0] == b.split(".")[0] == "dashboard"}
    out = sys.stdout
    out.write(f"{len(modules())} modules, {len(edges)} arrows ({len(inside)} inside dashboard/)\n")
    for component in circles(edges):
        out.write(f"circle: {' ↔ '.join(component)}\n")
    from tests.test_layers import ROOMS, against_the_layers, room

    between = {(ROOMS[room(a)], ROOMS[room(b)]) for a, b in inside if room(a) != room(b)}
    out.write(f"{len(between)} arrows between the dashboard's rooms\n")
    for component in circles(between):
        out.write(f"room circle: {' ↔ '.join(component)}\n")
    for a, b in sorted(against_the_layers(edges)):
        out.write(f"against the layers: {a} → {b}\n")


if __name__ == "__main__":
    main()
