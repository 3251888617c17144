"""The layering of the code: no import cycles, the CLI on top, the engine and profiler below;
no function in the shipped packages longer than MAX_FUNCTION_LINES; every shipped module
named in ARCHITECTURE.md, the code map.

Every import is read from the source with `ast`, lazy imports inside functions included, so a
cycle cannot hide behind a function-level import.
"""

from __future__ import annotations

import ast
import graphlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("planner", "solvers", "profiles", "reports", "bench")
SHIPPED = ("planner", "solvers", "profiles", "reports")
MAX_FUNCTION_LINES = 80  # from `def` to the last line, docstring included


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _target(name: str) -> str | None:
    """The project module an import names: the module itself, or the package holding it."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {t for n in names if (t := _target(n)) is not None}


def _unit(module: str) -> str:
    """The layer a module belongs to: a stage of planner/, or a whole package elsewhere."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "planner" and len(parts) > 1 else parts[0]


def _graph(*, top_level_only: bool, by_unit: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        source = _unit(module) if by_unit else module
        for target in _imports(path, top_level_only=top_level_only):
            target = _unit(target) if by_unit else target
            # Importing a submodule runs its parent package first; that is not a dependency.
            if target != source and not module.startswith(target + "."):
                graph.setdefault(source, set()).add(target)
    return graph


@pytest.mark.parametrize("top_level_only, by_unit", [(True, False), (False, False),
                                                     (False, True)],
                         ids=["module-level imports", "every import", "stages and packages"])
def test_no_import_cycle(top_level_only, by_unit):
    graph = _graph(top_level_only=top_level_only, by_unit=by_unit)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_the_cli_is_the_top_layer():
    graph = _graph(top_level_only=False, by_unit=False)
    importers = sorted(m for m, targets in graph.items()
                       if any(t.startswith("planner.cli") for t in targets)
                       and not m.startswith("planner.cli") and m != "planner.__main__")
    assert importers == []


def test_engine_and_profiler_import_nothing_above_them():
    graph = _graph(top_level_only=False, by_unit=True)
    assert graph.get("solvers", set()) == set()
    assert graph.get("profiles", set()) == set()


def test_shipped_packages_do_not_import_benchmarks():
    graph = _graph(top_level_only=False, by_unit=True)
    for unit, targets in graph.items():
        if unit.split(".")[0] in SHIPPED:
            assert "bench" not in targets, unit


def test_the_graph_sees_lazy_imports():
    """The reader must see imports inside functions, or the cycle test proves nothing."""
    lazy = _imports(MODULES["planner.cli.plan"], top_level_only=False)
    eager = _imports(MODULES["planner.cli.plan"], top_level_only=True)
    assert "planner.pipeline" in lazy - eager


def _long_functions(root: Path = ROOT, packages: tuple[str, ...] = SHIPPED) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    assert node.end_lineno is not None
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_FUNCTION_LINES:
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: "
                                     f"{lines} lines")
    return found


def test_no_function_is_longer_than_80_lines():
    """A function that long does several jobs: split it into named steps, each doing one."""
    assert _long_functions() == []


def test_the_length_rule_sees_a_long_function(tmp_path):
    """The rule must count a function's lines, or the test above proves nothing."""
    package = tmp_path / "planner"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (package / "long.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    (package / "short.py").write_text("def short():\n    return 1\n", encoding="utf-8")
    assert _long_functions(tmp_path, ("planner",)) == [
        f"planner/long.py:1 long: {MAX_FUNCTION_LINES + 1} lines"]


def _unnamed_modules(architecture: str, root: Path = ROOT,
                     packages: tuple[str, ...] = SHIPPED) -> list[str]:
    """The shipped modules ARCHITECTURE.md does not name: neither by their path, nor by their
    file name in the table row of their folder (`| `planner/rules/` | ... `spot.py` ...`),
    nor by a folder of theirs in its parent's row (generated code, as `kserve_grpc/`)."""
    rows = {m.group(1): line for line in architecture.splitlines()
            if (m := re.match(r"\| `([\w/]+/)` \|", line))}

    def named(path: Path) -> bool:
        rel = path.relative_to(root)
        if rel.as_posix() in architecture:
            return True
        folders = [rel.parents[i] for i in range(len(rel.parts) - 1)]  # innermost first
        return f"`{rel.name}`" in rows.get(f"{folders[0].as_posix()}/", "") or any(
            f"`{inner.name}/`" in rows.get(f"{outer.as_posix()}/", "")
            for inner, outer in zip(folders, folders[1:], strict=False))

    return [path.relative_to(root).as_posix() for package in packages
            for path in sorted((root / package).rglob("*.py"))
            if path.name != "__init__.py" and not named(path)]


def test_every_shipped_module_is_in_the_code_map():
    """ARCHITECTURE.md is where a reader looks for what owns what: a module missing from it
    is one nobody finds."""
    assert _unnamed_modules((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")) == []


def test_the_code_map_rule_sees_a_missing_module(tmp_path):
    """A module is named by its path, its file name in its folder's row, or its folder's name
    in the parent's row; else the rule must report it."""
    for rel in ("planner/rules/spot.py", "planner/errors.py", "planner/gen/x_pb2.py",
                "planner/rules/fit.py", "planner/other.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("", encoding="utf-8")
    architecture = ("| `planner/rules/` | `fit.py` (whether a replica fits) |\n"
                    "| `planner/` | `gen/` (generated) |\n"
                    "the errors (`planner/errors.py`), and spot.py alone names nothing\n")
    assert _unnamed_modules(architecture, tmp_path, ("planner",)) == [
        "planner/other.py", "planner/rules/spot.py"]
