"""Installing the plugin must not slow every pytest run: its import loads nothing heavy."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

HEAVY = (
    "numpy",
    "scipy",
    "jsonschema",
    "fastjsonschema",
    "yaml",
    "sqlite3",
    "ssl",
    "asyncio",
    "urllib.request",
    "urllib3",
    "filelock",
    "onnxruntime",
    "torch",
    "matplotlib",
)


def test_importing_the_plugin_loads_no_heavy_module() -> None:
    code = (
        "import sys, pytest_aibench.plugin\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


PURE_AND_DEVICE_SIDE = (
    "spec",
    "parsers.observer",
    "parsers.tflite",
    "parsers.ort_profile",
    "metrics",
    "recorder",
    "verdicts",
    "names",
    "options",
    "atomic",
    "cache",
    "execution",
    "running",
    "ab.blocks",
    "ab.worker",
    "devices.fleet",
    "devices.lease",
    "devices.android",
    "devices.ios",
    "devices.ssh",
    "runners",
    "energy.sources",
    "runfile",
    "reporting.exports",
    "reporting.publish",
    "reporting.terminal",
    "lab.history",
    "lab.leases",
    "reporting.remote",
)


def test_the_core_devices_runners_and_reporting_do_not_reach_pytest() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {PURE_AND_DEVICE_SIDE!r}:\n"
        "    importlib.import_module('pytest_aibench.' + name)\n"
        "print(' '.join(m for m in ('pytest', '_pytest') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports_from(tree: ast.AST) -> Iterator[ast.ImportFrom]:
    """Every ``from ... import`` of a module, at module level or inside its functions, except
    those under ``if TYPE_CHECKING:`` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node):
            continue
        if isinstance(node, ast.ImportFrom):
            yield node
        yield from _imports_from(node)


PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def package_modules() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(PACKAGE_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (PACKAGE_ROOT / "pytest_aibench").rglob("*.py")
    }


def module_imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports, whenever it does: at
    module level or when a function runs (a cycle through a function is a cycle all the same)."""
    paths = package_modules()
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        found: set[str] = set()
        for imp in _imports_from(ast.parse(path.read_text("utf-8"))):
            if imp.level:
                parts = package.split(".")[: len(package.split(".")) - imp.level + 1]
                base = ".".join([*parts, *([imp.module] if imp.module else [])])
            elif (imp.module or "").startswith("pytest_aibench"):
                base = str(imp.module)
            else:
                continue
            found |= {
                f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base for a in imp.names
            }
        graph[module] = found & set(paths) - {module}
    return graph


def test_no_import_cycle_in_the_package() -> None:
    graph = module_imports()

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start] - seen:
            seen.add(nxt)
            if nxt == goal or reaches(nxt, goal, seen):
                return True
        return False

    assert [module for module in graph if reaches(module, module, set())] == []
