"""The package's layers (docs/ARCHITECTURE.md), checked on the source with `ast` (nothing is
imported): every module has a floor, no import runs from a lower floor up to a higher one, no
two modules import each other (directly or round a circle), and no function is over 120 lines.

Imports inside functions count (a lazy import is still a dependency); imports under
`if TYPE_CHECKING:` do not (they never run). The root `adapterxl/__init__.py` is the lazy public
face and may name anything; `resources/` holds build scripts, not package modules."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "adapterxl"
MAX_FUNCTION_LINES = 120

# Floors, top to bottom. Within a floor, a unit may import the units listed after it (they
# are lower), never those before it; the ground floor's units may import each other.
FLOORS = [
    ("__main__", "cli"),                                                 # 9 commands
    ("api", "quickstart", "experiments"),                                # 8 notebook, recipes
    ("training", "checkpoint", "planning", "layer_cache"),               # 7 loop, resume, cost
    ("evaluation",),                                                     # 6 zero-shot evaluation
    ("hub",),                                                            # 5 sharing modules
    ("modules",),                                                        # 4 module dirs, engines
    ("formats",),                                                        # 3 task formats
    ("data",),                                                           # 2 readers, download
    ("tasks",),                                                          # 1 the catalogue
    ("backbone", "configs", "architectures", "heads", "e5", "memory"),   # 0b backbones
]
GROUND = ("errors", "_io", "_version", "settings", "scoring", "logs", "safe_yaml",
          "connectivity", "lock", "preemption", "tracking")              # 0a
EXEMPT = ("adapterxl",)   # the root __init__: the lazy public face
NOT_MODULES = ("resources",)   # build scripts beside the bundled samples, loaded by path


def _rank() -> dict[str, int]:
    """unit -> height: the ground is 0, then upwards in the order of FLOORS read bottom-up."""
    rank, height = {unit: 0 for unit in GROUND}, 0
    for floor in reversed(FLOORS):
        for unit in reversed(floor):
            height += 1
            rank[unit] = height
    return rank


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if len(parts) > 1 and parts[1] in NOT_MODULES:
            continue
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST):
    """Every Import / ImportFrom node that can run (not under `if TYPE_CHECKING:`)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        children = list(ast.iter_child_nodes(node))
        if isinstance(node, ast.If) and _is_type_checking(node):
            children = node.orelse
        stack.extend(children)


def _targets(name: str, path: Path, node, modules) -> list[str]:
    """The package modules an import statement in module `name` loads."""
    if isinstance(node, ast.Import):
        bases = [alias.name for alias in node.names]
        names = []
    else:
        if node.level == 0:
            base = node.module or ""
        else:
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        bases, names = [base], [f"{base}.{alias.name}" for alias in node.names]
    out = [n for n in names if n in modules]
    if len(out) < len(names) or not names:
        for base in bases:
            while base and base not in modules:
                base = base.rpartition(".")[0]
            if base:
                out.append(base)
    return [t for t in out if t != name]


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[name] = {t for node in _imports(tree) for t in _targets(name, path, node, modules)}
    return graph


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def upward_imports(graph) -> list[str]:
    rank = _rank()
    bad = []
    for importer, targets in sorted(graph.items()):
        if importer in EXEMPT:
            continue
        for target in sorted(targets):
            a, b = _unit(importer), _unit(target)
            if target in EXEMPT:   # the public face sits above everything
                bad.append(f"{importer} -> {target}")
            elif a != b and not rank[a] == rank[b] == 0 and rank[b] >= rank[a]:
                bad.append(f"{importer} -> {target}")
    return bad


def circles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
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
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def clashing_names() -> list[str]:
    """Names a package exports (`__all__`) that are also its submodules' names: after the
    submodule is imported, `package.name` is the module, not the exported object."""
    import adapterxl   # the root's __all__ is built from its lazy table (torch-free)

    out = []
    for init in sorted(PACKAGE.rglob("__init__.py")):
        names = list(adapterxl.__all__) if init.parent == PACKAGE else []
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            if (init.parent != PACKAGE and isinstance(node, ast.Assign)
                    and any(getattr(t, "id", None) == "__all__" for t in node.targets)):
                names = [e.value for e in getattr(node.value, "elts", ())
                         if isinstance(e, ast.Constant)]
        out += [f"{init.parent.relative_to(PACKAGE.parent)}: {n}" for n in names
                if (init.parent / f"{n}.py").is_file() or (init.parent / n).is_dir()]
    return out


def long_functions() -> list[str]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    out.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} "
                               f"{node.name} ({lines} lines)")
    return out


# --- the checker checks what it should (always on) ---------------------------------------------

def test_the_checker_resolves_imports_and_finds_circles_and_upward_imports(tmp_path):
    graph = {"adapterxl.tasks": {"adapterxl.errors"}, "adapterxl.errors": {"adapterxl._io"},
             "adapterxl._io": set(), "adapterxl.api": {"adapterxl"},
             "adapterxl.data.readers": {"adapterxl.tasks"},
             "adapterxl.modules.store": {"adapterxl.hub"}, "adapterxl.hub": set(),
             "adapterxl.formats": {"adapterxl.formats.qa"},
             "adapterxl.formats.qa": {"adapterxl.formats"}}
    assert upward_imports(graph) == ["adapterxl.api -> adapterxl",
                                     "adapterxl.modules.store -> adapterxl.hub"]
    assert circles(graph) == [["adapterxl.formats", "adapterxl.formats.qa"]]
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n"
                     "def f():\n    from .b import c\n")
    modules = {"adapterxl.pkg": None, "adapterxl.pkg.a": None, "adapterxl.pkg.b": None,
               "adapterxl.pkg.b.c": None}
    found = [t for node in _imports(tree)
             for t in _targets("adapterxl.pkg", Path("__init__.py"), node, modules)]
    assert found == ["adapterxl.pkg.b.c"]


def test_the_real_graph_is_read():
    graph = import_graph()
    assert "adapterxl.tasks" in graph["adapterxl.data.readers"]
    assert not [m for m in graph if m.startswith("adapterxl.resources")]
    assert "adapterxl.tasks" not in {_unit(t) for t in graph["adapterxl.errors"]}


# --- the rules ---------------------------------------------------------------------------

def test_every_module_has_a_floor():
    rank = _rank()
    unplaced = sorted({_unit(m) for m in import_graph() if m not in EXEMPT} - set(rank))
    assert not unplaced, f"modules with no floor in FLOORS/GROUND: {unplaced}"


def test_no_import_runs_up_a_floor():
    graph = import_graph()
    rank = _rank()
    graph = {m: {t for t in ts if _unit(t) in rank or t in EXEMPT}
             for m, ts in graph.items() if _unit(m) in rank or m in EXEMPT}
    bad = upward_imports(graph)
    assert not bad, "imports from a lower floor to a higher one:\n" + "\n".join(bad)


def test_no_import_circle():
    found = circles(import_graph())
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_no_exported_name_is_also_a_submodule():
    found = clashing_names()
    assert not found, "exported names that are also submodules:\n" + "\n".join(found)


def test_no_function_over_120_lines():
    found = long_functions()
    assert not found, "functions over 120 lines:\n" + "\n".join(found)
