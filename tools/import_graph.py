"""The import graph of the package, counting imports inside functions:  python tools/import_graph.py [ROOT]

Prints the folder-level cycles, each folder's (or top module's) import level and what it imports,
and the modules that import each other in a loop. ROOT is a checkout (default: this one), so the
same command measures an older commit checked out elsewhere (`git worktree add /tmp/old REV`).
lint-imports checks the layer contract; this shows the shape behind it.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = "ctcl_map"
NOT_PACKAGE = {"tests", "tools", "bench", "samples", "docs", "build", ".venv", ".git"}  # bench/: where tools/bench/ stood before


def modules_of(root: Path) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[0] in NOT_PACKAGE:
            continue
        name = ".".join((PACKAGE, *parts))
        found[name.removesuffix(".__init__")] = path
    return found


def imports_of(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the package modules it imports (anywhere in it)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                module = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
                submodules = [f"{module}.{alias.name}" for alias in node.names]
                # `from package import module` imports the module; the package only for other names
                targets = [t for t in submodules if t in modules]
                if len(targets) < len(submodules):
                    targets.append(module)
            else:
                continue
            for target in targets:
                resolved = known(target) if target.startswith(PACKAGE) else None
                if resolved and resolved != name:
                    edges[name].add(resolved)
    return edges


def strongly_connected(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components, iteratively (each a list of nodes)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in nodes:
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for successor in successors:
                if successor not in index:
                    index[successor] = low[successor] = len(index)
                    stack.append(successor)
                    on_stack.add(successor)
                    work.append((successor, iter(sorted(edges.get(successor, ())))))
                    advanced = True
                    break
                if successor in on_stack:
                    low[node] = min(low[node], index[successor])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def folder_of(module: str, root: Path) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "__init__"
    return parts[0] + "/" if (root / parts[0]).is_dir() else parts[0]


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]).resolve()
    modules = modules_of(root)
    edges = imports_of(modules)
    folders: dict[str, set[str]] = defaultdict(set)
    for module, targets in edges.items():
        for target in targets:
            if folder_of(module, root) != folder_of(target, root):
                folders[folder_of(module, root)].add(folder_of(target, root))
    names = sorted({folder_of(m, root) for m in modules})
    components = strongly_connected(names, folders)
    component_of = {member: number for number, component in enumerate(components) for member in component}
    levels: dict[int, int] = {}

    def level(number: int) -> int:
        if number not in levels:
            below = {component_of[t] for m in components[number] for t in folders.get(m, ())} - {number}
            levels[number] = 1 + max((level(b) for b in below), default=0)
        return levels[number]

    cycles = [c for c in components if len(c) > 1]
    inside = sum(1 for c in cycles for a in c for b in folders.get(a, ()) if b in c)
    print(f"modules: {len(modules)}, module imports: {sum(len(t) for t in edges.values())}")
    print(f"folder cycles: {cycles or 'none'} ({inside} folder imports inside them)")
    for number in sorted(range(len(components)), key=lambda n: (-level(n), components[n])):
        targets = sorted({t for m in components[number] for t in folders.get(m, ())} - set(components[number]))
        print(f"  level {level(number)}: {', '.join(components[number])} -> {', '.join(targets)}")
    loops = [c for c in strongly_connected(sorted(modules), edges) if len(c) > 1]
    print(f"modules importing each other in a loop: {sum(len(c) for c in loops)} in {len(loops)} loops")
    for loop in loops:
        print("   ", ", ".join(m.removeprefix(PACKAGE + ".") for m in loop))


if __name__ == "__main__":
    main()
