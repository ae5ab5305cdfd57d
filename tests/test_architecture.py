"""The shape of the package: route modules that never import each other, small modules, no benchmark code."""

from __future__ import annotations

import ast
from pathlib import Path

import sdedge

PACKAGE = Path(sdedge.__file__).resolve().parent
MAX_LINES = 400


def modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(path: Path, name: str) -> set[str]:
    """The sdedge modules a module imports (absolute and relative)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(name.split(".")[: -node.level] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return {n for n in names if n.startswith("sdedge")}


def defines_blueprint(path: Path) -> bool:
    return any(isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Blueprint"
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))))


def test_no_blueprint_module_imports_another() -> None:
    found = modules()
    blueprints = {name for name, path in found.items() if defines_blueprint(path)}
    assert {"sdedge.routes.native", "sdedge.routes.jobs", "sdedge.routes.a1111", "sdedge.routes.openai"} <= blueprints
    for name in blueprints:
        others = imported(found[name], name) & (blueprints - {name})
        assert not others, f"{name} imports the route module(s) {others}"


def test_no_module_passes_400_lines() -> None:
    long = {name: n for name, path in modules().items() if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_package_carries_no_benchmark_code() -> None:
    assert not [p for p in PACKAGE.rglob("*.py") if "bench" in p.name], "benchmarks live in benchmarks/, not the wheel"


def test_every_module_is_in_the_readme_layout_table() -> None:
    readme = (PACKAGE.parent / "README.md")
    if not readme.exists():  # an installed wheel without the source tree
        return
    layout = readme.read_text(encoding="utf-8").split("### Layout", 1)[1].split("\n### ", 1)[0]
    unnamed = [str(path.relative_to(PACKAGE)) for path in sorted(PACKAGE.rglob("*.py"))
               if path.name not in ("__init__.py", "__main__.py") and "migrations" not in path.parts
               and f"`{path.relative_to(PACKAGE)}`" not in layout]
    assert not unnamed, f"README's Layout table does not say what these are: {unnamed}"
