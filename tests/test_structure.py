"""The package's structure: no import cycles inside src/biovae, no private names imported across
modules, no source file over 400 lines. Read with ast, nothing is imported."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted((SRC / "biovae").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Import nodes outside `if TYPE_CHECKING:` blocks (annotations only, never run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _graph():
    """module -> [(imported module, names taken from it, line)] for imports inside biovae."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = []
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges += [(a.name, [], node.lineno) for a in node.names if a.name in mods]
                continue
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("biovae"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in mods:  # `from package import module`
                    edges.append((sub, [], node.lineno))
                elif base in mods:
                    edges.append((base, [alias.name], node.lineno))
        graph[name] = edges
    return graph


def test_no_import_cycles():
    graph = {m: sorted({t for t, _, _ in edges if t != m}) for m, edges in _graph().items()}
    state, cycles = {}, []

    def visit(m, path):
        state[m] = "open"
        for t in graph.get(m, []):
            if state.get(t) == "open":
                cycles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_private_names_imported_across_modules():
    bad = [f"{m}:{line} imports {name} from {t}" for m, edges in _graph().items() for t, names, line in edges
           for name in names if name.startswith("_") and not name.startswith("__") and t != m]
    assert not bad, "\n".join(bad)


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in (SRC / "biovae").rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long
