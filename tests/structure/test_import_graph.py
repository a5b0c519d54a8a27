"""The package's shape: imports point one way (no cycles), and no import hides in a function to dodge one.

Imports inside ``if TYPE_CHECKING:`` do not run and are left out. A function may import a backend
module lazily (``litestar_saq.backends.*``: an unused broker client is never imported) or an optional
third-party package; an import of any other ``litestar_saq`` module inside a function could only be
there to break a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import litestar_saq

PACKAGE_DIR = Path(litestar_saq.__file__).parent
LAZY_ALLOWED_PREFIX = "litestar_saq.backends."


def module_name(path: Path) -> str:
    parts = ["litestar_saq", *path.relative_to(PACKAGE_DIR).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Fully qualified names an import statement refers to (module, and module.attribute)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        package = module_name(path).split(".")
        if path.name != "__init__.py":
            package = package[:-1]
        package = package[: len(package) - node.level + 1]
        base = ".".join([*package, base] if base else package)
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


class ImportCollector(ast.NodeVisitor):
    """Collects the runtime imports of one module, noting those made inside functions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.imports: list[str] = []
        self.in_functions: list[tuple[int, str]] = []
        self._function_depth = 0

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for statement in node.orelse:
                self.visit(statement)
            return
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._function_depth += 1
        self.generic_visit(node)
        self._function_depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        names = imported_names(self.path, node)
        self.imports += names
        if self._function_depth:
            self.in_functions += [(node.lineno, name) for name in names[:1]]

    visit_ImportFrom = visit_Import


def package_modules() -> dict[str, ImportCollector]:
    collectors = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        collector = ImportCollector(path)
        collector.visit(ast.parse(path.read_text(encoding="utf-8")))
        collectors[module_name(path)] = collector
    return collectors


def import_graph() -> dict[str, set[str]]:
    collectors = package_modules()
    return {
        name: {target for target in collector.imports if target in collectors and target != name}
        for name, collector in collectors.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts, or ``None``."""
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in visiting:
            return [*visiting[visiting.index(module) :], module]
        if module in done:
            return None
        visiting.append(module)
        for target in sorted(graph[module]):
            # The package's __init__ re-exports its modules: an edge back to it is not a design cycle.
            if target == "litestar_saq":
                continue
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(module)
        return None

    for module in sorted(graph):
        cycle = visit(module)
        if cycle:
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert graph.get("litestar_saq.plugin")  # the walk saw real imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_package_import_hides_inside_a_function() -> None:
    hidden = [
        f"{name}:{line} imports {target}"
        for name, collector in package_modules().items()
        for line, target in collector.in_functions
        if target.startswith("litestar_saq") and not target.startswith(LAZY_ALLOWED_PREFIX)
    ]
    assert hidden == []


def test_the_layers_point_one_way() -> None:
    graph = import_graph()
    below_the_plugin = (
        "cli",
        "supervisor",
        "server_lifespan",
        "_child",
        "web",
        "tracing",
        "testing",
        "worker",
        "worker_group",
    )
    for module in below_the_plugin:
        name = f"litestar_saq.{module}"
        reaches = reachable(graph, name)
        assert "litestar_saq.plugin" not in reaches, f"{name} imports the plugin"


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for target in graph[stack.pop()] - seen:
            if target != "litestar_saq":
                seen.add(target)
                stack.append(target)
    return seen


def test_no_module_imports_through_the_package_root() -> None:
    """``from litestar_saq import x`` inside the package ties the module to ``__init__``, which imports
    everything: two such modules form a cycle through it. Import ``litestar_saq.x`` by its full path."""
    through_root = [
        f"{name} imports {target}"
        for name, collector in package_modules().items()
        for target in collector.imports
        if target == "litestar_saq" and name != "litestar_saq"
    ]
    assert through_root == []
