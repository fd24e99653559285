"""The package's layout, read from its import graph: stages import one way, nothing cycles."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import rtc_assert

PACKAGE = Path(rtc_assert.__file__).parent
CORE_STAGES = ("probes", "traces", "scoring", "metrics", "decide")
"""Pure stages: no front-end, renderer or model runtime."""
HEAVY = ("pytest", "_pytest", "rich", "torch", "transformers", "vllm", "httpx", "aiohttp", "peft")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(tree: ast.Module, *, module_level: bool) -> set[str]:
    """Modules imported, outside ``if TYPE_CHECKING:``; only top-level ones if asked."""
    found: set[str] = set()

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if isinstance(child, ast.Import) and (top or not module_level):
                found.update(alias.name for alias in child.names)
            elif (
                isinstance(child, ast.ImportFrom)
                and child.module
                and child.level == 0
                and (top or not module_level)
            ):
                found.add(child.module)
                found.update(f"{child.module}.{alias.name}" for alias in child.names)
            nested = isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            visit(child, top and not nested)

    visit(tree, True)
    return found


MODULES = {
    _module_name(path): ast.parse(path.read_text(encoding="utf-8"))
    for path in sorted(PACKAGE.rglob("*.py"))
    if "zoo" not in path.parts
}


def _graph(*, module_level: bool) -> dict[str, set[str]]:
    return {
        name: {m for m in _imports(tree, module_level=module_level) if m in MODULES and m != name}
        for name, tree in MODULES.items()
    }


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_package_root_holds_a_dozen_modules_at_most():
    root = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root) <= 12, root


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """An import cycle in ``graph``, if any; a module importing its own package's
    ``__init__`` (which re-exports it) is not one."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for target in sorted(graph.get(node, ())):
            if _in(node, target):
                continue
            if state.get(target) == "open":
                return [*path, node, target]
            if target not in state and (found := visit(target, [*path, node])):
                return found
        state[node] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module, [])):
            return found
    return None


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}}) == ["a.x", "a.y", "a.z", "a.x"]
    assert _cycle({"a.x": {"a"}, "a": {"a.x"}}) is None


def test_no_import_cycle_at_import_time():
    cycle = _cycle(_graph(module_level=True))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("stage", CORE_STAGES)
def test_core_stages_import_no_front_end_renderer_or_runtime(stage):
    forbidden_inside = (
        "generation",
        "reports",
        "pytest_plugin",
        "cli",
        "config",
        "session",
        "record",
    )
    for name, tree in MODULES.items():
        if not _in(name, f"rtc_assert.{stage}"):
            continue
        for imported in _imports(tree, module_level=False):
            assert imported.split(".")[0] not in HEAVY, f"{name} imports {imported}"
            for other in forbidden_inside:
                assert not _in(imported, f"rtc_assert.{other}"), f"{name} imports {imported}"


def test_the_cli_imports_nothing_from_the_pytest_side():
    for name, tree in MODULES.items():
        if _in(name, "rtc_assert.cli"):
            for imported in _imports(tree, module_level=False):
                assert not _in(imported, "rtc_assert.pytest_plugin"), f"{name} imports {imported}"
                assert imported.split(".")[0] not in ("pytest", "_pytest"), name


def test_no_backend_imports_another_backends_module():
    backends = [m for m in MODULES if m.startswith("rtc_assert.generation.backends.")]
    for name in backends:
        for imported in _imports(MODULES[name], module_level=False):
            for other in backends:
                assert other == name or not _in(imported, other), f"{name} imports {imported}"


def test_reports_are_rendered_from_the_record_only():
    allowed = ("rtc_assert.reports", "rtc_assert.record", "rtc_assert.errors")
    shared_types = ("rtc_assert.metrics", "rtc_assert.traces.classify", "rtc_assert.sweep")
    for name, tree in MODULES.items():
        if not _in(name, "rtc_assert.reports"):
            continue
        for imported in _imports(tree, module_level=False):
            if imported.startswith("rtc_assert"):
                ok = any(_in(imported, p) for p in (*allowed, *shared_types))
                assert ok, f"{name} imports {imported}"


def test_the_public_surface_is_what_all_lists():
    exported = {
        name
        for name, value in vars(rtc_assert).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert set(rtc_assert.__all__) - {"__version__"} == exported
    assert len(rtc_assert.__all__) == len(set(rtc_assert.__all__))


def test_every_error_is_defined_in_errors_and_exported():
    from rtc_assert import errors

    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, Exception)
        and value.__module__ == errors.__name__
    }
    assert defined <= set(rtc_assert.__all__)
    for name, tree in MODULES.items():
        if name == "rtc_assert.errors":
            continue
        raised = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(getattr(base, "id", "") in defined | {"RtcAssertError"} for base in node.bases)
        ]
        assert not raised, f"{name} defines errors outside errors.py: {raised}"


def test_the_old_import_paths_keep_working():
    import rtc_assert.assertions
    import rtc_assert.finetune
    import rtc_assert.plugin

    assert rtc_assert.plugin.pytest_addoption is not None
    assert callable(rtc_assert.assertions.assert_valid_rate)
    assert callable(rtc_assert.finetune.tokenize) and callable(rtc_assert.finetune.collate)


def test_the_entry_point_exports_every_hook_and_fixture():
    """`rtc_assert.plugin` star-imports the hooks module's `__all__`: a hook left out of it
    would never be registered."""
    import rtc_assert.plugin
    from rtc_assert.pytest_plugin import hooks

    defined = {
        name
        for name, value in vars(hooks).items()
        if name.startswith("pytest_") and inspect.isfunction(value)
    } | {"rtc", "rtc_config"}
    assert defined <= set(hooks.__all__)
    assert all(hasattr(rtc_assert.plugin, name) for name in hooks.__all__)
