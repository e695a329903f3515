"""The package's import graph: no cycle, and every import points down the layers.

    cli -> run -> github, kube, helm, archive -> config, logs, stopping, checklist -> errors,
    parsing

A module imports from its own part (``kube.state`` from ``kube.client``) or from a lower layer;
the outside systems never import each other, and nothing imports ``run`` or ``cli`` but the
layers above them. Imports inside functions count too: they are there only for the idle run's
start-up time (and say so), and must still point down.
"""

from __future__ import annotations

import ast
from pathlib import Path

import ci_runner

PACKAGE = Path(ci_runner.__file__).resolve().parent
LAYERS = {
    "errors": 0,
    "parsing": 0,
    "__init__": 0,
    "config": 1,
    "logs": 1,
    "stopping": 1,
    "checklist": 1,
    "github": 2,
    "kube": 2,
    "helm": 2,
    "archive": 2,
    "run": 3,
    "cli": 4,
    "__main__": 5,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """The package's modules ``path`` imports, as names relative to the package."""
    name = module_name(path)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - node.level + 1] + (node.module or "").split(".")
            base = [part for part in base if part]
            for alias in node.names:
                candidate = [*base, alias.name]
                at = PACKAGE.joinpath(*candidate)
                is_module = at.with_suffix(".py").exists() or at.is_dir()
                found.add(".".join(candidate if is_module else base) or "__init__")
                if is_module and not node.module:
                    # `from . import x` reads x off the package: its __init__ runs (or is
                    # running) first, so the package is imported too
                    found.add(".".join(base) or "__init__")
        elif isinstance(node, ast.ImportFrom | ast.Import):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for imported in names:
                if imported == "ci_runner" or imported.startswith("ci_runner."):
                    found.add(imported.removeprefix("ci_runner").lstrip(".") or "__init__")
    return found - {name}


GRAPH = {module_name(path): imports(path) for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> tuple[str, int]:
    part = module.split(".")[0]
    assert part in LAYERS, f"{module}: a new part of the package; give it a layer in this test"
    return part, LAYERS[part]


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        part, rank = layer(module)
        for target in targets:
            target_part, target_rank = layer(target)
            if target_part != part and target_rank >= rank:
                wrong.append(f"{module} imports {target}")
    assert not wrong


def test_the_package_has_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(GRAPH.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_nothing_reaches_into_sys_modules() -> None:
    reaching = [
        module_name(path) for path in PACKAGE.rglob("*.py") if "sys.modules" in path.read_text()
    ]
    assert not reaching


def test_an_import_inside_a_function_says_it_keeps_the_idle_run_light() -> None:
    """The only reason to import inside a function is an idle run's start-up time (pyhelm3,
    YAML, the archive and build code, PyJWT, cryptography), and the comment above says so."""
    unexplained = []
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if not isinstance(inner, ast.Import | ast.ImportFrom):
                    continue
                above = inner.lineno - 2
                while above >= 0 and lines[above].strip().startswith(("from ", "import ")):
                    above -= 1
                comment = []
                while above >= 0 and lines[above].strip().startswith("#"):
                    comment.append(lines[above])
                    above -= 1
                if "idle" not in " ".join(comment):
                    unexplained.append(f"{module_name(path)}:{inner.lineno}")
    assert not unexplained


def test_the_graph_sees_the_imports() -> None:
    assert "run.cycle" in GRAPH["cli"]
    assert "kube.client" in GRAPH["kube.state"]
    assert "config" in GRAPH["run.cycle"]


def test_every_subpackage_ships() -> None:
    """setup.cfg's ``find:`` takes only folders with an ``__init__.py``: without one, a folder
    works from a checkout and is missing from the wheel the image installs."""
    folders = {path.parent for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts}
    assert not [f for f in folders if not (f / "__init__.py").exists()]
