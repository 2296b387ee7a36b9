"""The package's shape: engine modules never import the book's helpers, and no module imports itself round a circle."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ptutor"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The ptutor modules `path` imports (at any depth of the file: lazy imports in functions count too)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ptutor")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("ptutor"):
                found |= {f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names}
    return {m if m in MODULES else m.rpartition(".")[0] for m in found} - {name}


MODULES = {module_name(p) for p in PACKAGE.rglob("*.py")}
GRAPH = {module_name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def test_the_graph_is_read_from_real_imports():
    assert "ptutor.methods.base" in GRAPH["ptutor.methods.lora"] and "ptutor.cache" in GRAPH["ptutor.book.widgets"]


def test_the_engine_never_imports_the_book():
    upward = {m: sorted(i for i in deps if i.startswith("ptutor.book")) for m, deps in GRAPH.items()
              if not m.startswith("ptutor.book")}
    assert not {m: d for m, d in upward.items() if d}, upward


def test_no_module_imports_itself_round_a_circle():
    """Package __init__ files re-export their modules, so edges into a package's own __init__ from inside it are
    left out; every other path must never lead back to where it started."""
    def edges(m):
        return {d for d in GRAPH.get(m, ()) if not (d in ("ptutor", "ptutor.methods", "ptutor.book", "ptutor.tasks")
                                                    and m.startswith(d + "."))}

    def cycle_from(start):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges(node):
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    circles = [c for c in map(cycle_from, sorted(GRAPH)) if c]
    assert not circles, "import circles: " + "; ".join(" -> ".join(c) for c in circles)
