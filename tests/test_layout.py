"""The layout of ``bestofl_models`` (docs/ARCHITECTURE.md): one package per stage, each importing only the stages
below it; no import circle, counting the imports inside functions too; no module over 450 lines except the data
tables named here; every package says what it owns and may import."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOT = REPO / "bestofl_models"
#: Lowest first: a module may import its own package and those before it.
STAGES = ("errors", "store", "selection", "generation", "verifiers", "harness", "report", "testing")
#: The old module paths kept for one release (``_moved``, ``embedded.py``) and the root package sit above all.
ABOVE_ALL = {"bestofl_models", "bestofl_models._moved", "bestofl_models.embedded"}
MAX_LINES = 450
#: Modules allowed over MAX_LINES, with the reason (docs/ARCHITECTURE.md, "Module sizes").
DATA_TABLES: dict[str, str] = {}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Every ``bestofl_models`` module ``name`` imports, at module level or inside functions (not under
    ``if TYPE_CHECKING``), without its own packages (always imported before it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
               for n in ast.walk(node)}
    targets: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            wanted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                stem = ".".join([*base, *([node.module] if node.module else [])])
            else:
                stem = node.module or ""
            wanted = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in known else stem for alias in node.names]
        else:
            continue
        for target in wanted:
            parts = target.split(".")
            targets.update(".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in known)
    return {t for t in targets if not name.startswith(t + ".") and t != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def stage(name: str) -> int:
    return STAGES.index(name.split(".")[1])


def strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_every_module_belongs_to_a_stage():
    assert {n for n in modules() if n not in ABOVE_ALL and n.split(".")[1] not in STAGES} == set()


def test_no_import_circle_even_through_imports_inside_functions():
    assert strongly_connected(graph()) == []


def test_a_stage_imports_only_the_stages_below_it():
    upward = sorted(f"{name} imports {target}" for name, targets in graph().items() if name not in ABOVE_ALL
                    for target in targets if target not in ABOVE_ALL and stage(target) > stage(name))
    assert upward == []


def test_no_module_over_the_size_limit_except_the_named_data_tables():
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in modules().items()}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES and name not in DATA_TABLES} == {}
    assert set(DATA_TABLES) <= set(sizes)


def test_every_package_says_what_it_owns_and_may_import():
    for init in sorted(ROOT.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        if init.parent.name in STAGES and init.parent.parent == ROOT:
            assert doc and "import" in doc, f"{init.relative_to(REPO)} needs a docstring naming what it may import"


def test_the_old_module_paths_are_the_new_modules():
    import importlib

    from bestofl_models._moved import MOVED

    for old, new in MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
    assert importlib.import_module("bestofl_models.embedded") is importlib.import_module(
        "bestofl_models.generation.embedded")
    from bestofl_models.harness import BestOfL, BestOfLLM, MultiORM, SelfConsistency
    from bestofl_models.selection import METHODS, select  # noqa: F401
    from bestofl_models.store import CandidateStore  # noqa: F401

    assert issubclass(BestOfL, BestOfLLM) and MultiORM and SelfConsistency
