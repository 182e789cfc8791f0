"""The code's layering, read statically: no import cycle inside the package (every import counts,
deferred ones in functions too), no test module imports another test module, and no function is
longer than a screen."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO


def imported_modules(path: Path, package: str) -> set[str]:
    """Every ``package.x`` module that ``path`` imports, at any depth of its code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == package:
                names |= {f"{package}.{alias.name}" for alias in node.names}
            else:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def module_name(path: Path) -> str:
    """``mtdnn/model/heads.py`` → ``mtdnn.model.heads``; a package's ``__init__`` is the package."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One path per cycle start (enough to name it), by depth-first search from every node."""
    found = []

    def walk(start: str, node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == start:
                found.append(path)
            elif nxt not in path and nxt > start:
                walk(start, nxt, [*path, nxt])

    for node in sorted(graph):
        walk(node, node, [node])
    return found


def test_the_package_has_no_import_cycle():
    modules = {module_name(p): p for p in (REPO / "mtdnn").rglob("*.py")}
    graph = {m: imported_modules(p, "mtdnn") & set(modules) for m, p in modules.items()}
    assert sum(map(len, graph.values())) > 100  # the graph was read, not empty
    assert cycles(graph) == []


# Lower layers never reach up: runtime (batches, precision, faults) below model (network, heads,
# checkpoints, inference) below the configuration and the training loop, and the CLI above all.
UPPER = ("mtdnn.training", "mtdnn.config", "mtdnn.grid", "mtdnn.commands", "mtdnn.train")
FORBIDDEN = {"mtdnn.runtime": ("mtdnn.model", *UPPER), "mtdnn.model": UPPER}


def test_lower_layers_never_import_upper_ones():
    reaching = {}
    for layer, upper in FORBIDDEN.items():
        folder = REPO / layer.replace(".", "/")
        for path in sorted(folder.rglob("*.py")):
            bad = {m for m in imported_modules(path, "mtdnn") if m.startswith(upper)}
            if bad:
                reaching[module_name(path)] = sorted(bad)
        assert len(list(folder.rglob("*.py"))) >= 4  # the layer was read
    assert reaching == {}


def test_cycle_search_finds_a_two_module_cycle():
    assert cycles({"a": {"b"}, "b": {"a", "c"}, "c": set()}) == [["a", "b"]]


def test_no_test_module_imports_another():
    tests = {p.stem for p in (REPO / "tests").glob("test_*.py")}
    for path in sorted((REPO / "tests").glob("*.py")):
        imported = {name.split(".")[0] for name in imported_modules(path, "tests")}
        assert not imported & tests, (path.name, sorted(imported & tests))


MAX_FUNCTION_LINES = 60
CODE_DIRS = ("mtdnn", "benchmarks", "tests", "workflow")


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(name, lines) of every function or method in ``source`` longer than ``limit`` lines,
    decorators excluded, nested functions counted inside their parent too."""
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_function_is_longer_than_sixty_lines():
    files = [p for d in CODE_DIRS for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 80  # the tree was read
    too_long = {str(p.relative_to(REPO)): long_functions(p.read_text()) for p in files}
    assert {k: v for k, v in too_long.items() if v} == {}


def test_the_length_check_counts_a_long_method():
    body = "\n".join(f"        x{i} = {i}" for i in range(60))
    source = f"class A:\n    def short(self):\n        pass\n\n    def long(self):\n{body}\n"
    assert long_functions(source) == [("long", 61)]
