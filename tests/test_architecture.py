"""The house rules that keep `studio/` readable, checked on its source: imports go one way (no
circles, lazy imports counted), the generator is composed rather than mixed in, and models are
loaded only by the one model registry."""

from __future__ import annotations

import ast
from pathlib import Path

STUDIO = Path(__file__).resolve().parents[1] / "studio"
REGISTRY = "studio.session.models"


def package_modules(package: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of `package`."""
    modules = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = package_modules(STUDIO)


def imported_modules(modules: dict[str, Path], name: str) -> set[str]:
    """The package's modules that `name` imports anywhere in its body (inside functions too)."""
    path = modules[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if full in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    # A package's own parents are imported by Python anyway; they are not an arrow of this module.
    return {m for m in found if m in modules and m != name and not name.startswith(m + ".")}


def import_circles(modules: dict[str, Path]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph = {name: imported_modules(modules, name) for name in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return circles


def test_the_circle_finder_sees_a_circle_closed_by_a_lazy_import(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from .. import top\n")  # an arrow into the circle, not part of it
    (package / "top.py").write_text("def later():\n    from .sub import leaf\n")
    (package / "sub" / "leaf.py").write_text("from ..top import later\n")
    (package / "alone.py").write_text("from .top import later\n")
    assert import_circles(package_modules(package)) == [["pkg.sub.leaf", "pkg.top"]]


def test_no_import_circles_anywhere_in_studio():
    assert import_circles(MODULES) == []


def test_the_generator_is_composed_of_plain_objects_not_mixins():
    from studio.generation import LoadedModels, RunWriter, SideBySideGenerator, SideBySideRenderer

    for cls in (SideBySideGenerator, SideBySideRenderer, RunWriter, LoadedModels):
        assert cls.__mro__[1:] == (object,), cls
    mixins = [f"{name}.{node.name}" for name, path in MODULES.items()
              for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.ClassDef) and node.name.endswith("Mixin")]
    assert mixins == []


def test_only_the_model_registry_loads_models():
    callers = set()
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                owner = node.func.value if isinstance(node.func, ast.Attribute) else None
                # Captioner.from_pretrained and the generator/tokenizer loaders; a diffusers or
                # transformers class's own from_pretrained inside the loaders is theirs to call.
                if called in ("load_generator", "load_tokenizer") or (
                        called == "from_pretrained" and isinstance(owner, ast.Name) and owner.id == "Captioner"):
                    callers.add(name)
    assert callers == {REGISTRY}


def test_tiny_mode_is_read_only_by_the_model_locations_provider():
    """Everything that differs in tiny mode asks `studio.tiny.locations.model_locations`; nothing
    else tests `config.tiny` (a preset's own `tiny` flag, read from a record, is not the setting)."""
    readers = set()
    for name, path in MODULES.items():
        if name.startswith("studio.tiny") or name == "studio.config":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "tiny":
                owner = node.value
                owner_name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", "")
                if owner_name.endswith("config") or owner_name == "args":
                    readers.add(name)
    assert readers == set()
