"""Installing the plugin must not slow every pytest run: its import loads nothing heavy."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

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


# The pytest-facing layer: the modules that hold pytest's hooks and fixtures (and the aibench
# command). Only they reach pytest, and only they import the package's own modules inside
# functions for start-up speed; pyproject.toml's per-file-ignores name the same files.
FACES = (
    "plugin",
    "session",
    "collector",
    "collect",
    "items",
    "run_end",
    "preparing",
    "xdist",
    "settings",
    "stash",
    "marks",
    "cli",
    "__main__",
    "reporting.terminal_hooks",
)


def below_the_faces() -> list[str]:
    faces = {f"pytest_aibench.{face}" for face in FACES}
    return sorted(name for name in package_modules() if name not in faces)


def test_no_module_below_the_pytest_face_reaches_pytest() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {below_the_faces()!r}:\n"
        "    importlib.import_module(name)\n"
        "print(' '.join(m for m in ('pytest', '_pytest') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


def test_the_faces_are_those_the_lint_rule_exempts() -> None:
    """The faces here and in pyproject.toml's per-file-ignores of PLC0415 are one list."""
    text = (PACKAGE_ROOT / "pyproject.toml").read_text("utf-8")
    exempt = {
        face
        for line in text.splitlines()
        if line.startswith('"pytest_aibench/') and "PLC0415" in line and "TID253" not in line
        for face in _expand(line.split('"')[1].removeprefix("pytest_aibench/"))
    }
    assert exempt == set(FACES) - {"stash", "marks", "__main__"}  # none in their functions


def _expand(pattern: str) -> list[str]:
    """``{a,b}.py`` and ``reporting/x.py`` as module names."""
    stem = pattern.removesuffix(".py").replace("/", ".")
    if "{" not in stem:
        return [stem]
    head, _, rest = stem.partition("{")
    names, _, tail = rest.partition("}")
    return [f"{head}{name}{tail}" for name in names.split(",")]


# The house's layers, top first (docs/architecture.md draws them): a module imports only from
# its own layer or those below it. A name stands for a module and everything under it; the
# longest name that matches places a module.
LAYERS = (
    ("faces", (*FACES, "hookspec")),
    ("running", ("running", "ab", "cold", "execution")),
    ("work", ("runners", "energy.sources", "energy.android", "energy.monsoon", "energy.rapl",
              "energy.sampler", "energy.trace", "devices", "cache", "dashboard", "continuous")),
    ("control", ("verdicts.control",)),
    ("outputs", ("reporting",)),
    ("store", ("store",)),
    ("settings", ("options",)),
    ("judgement", ("verdicts",)),
    ("records", ("runfile", "kept_outputs", "parsers", "metrics", "generation", "recorder", "spec",
                 "tensors", "backends", "records", "names", "atomic", "errors", "endpoint",
                 "energy")),
)  # fmt: skip


def layer_of(module: str) -> int:
    name = module.removeprefix("pytest_aibench").removeprefix(".")
    if not name:  # the package's __init__: __version__, and public names found on first use
        return len(LAYERS) - 1
    placed = [
        (len(prefix), index)
        for index, (_, prefixes) in enumerate(LAYERS)
        for prefix in prefixes
        if name == prefix or name.startswith(f"{prefix}.")
    ]
    assert placed, f"{module} belongs to no layer: add it to LAYERS and docs/architecture.md"
    return max(placed)[1]


def test_every_import_goes_down_the_layers() -> None:
    upward = [
        f"{module} ({LAYERS[layer_of(module)][0]}) imports {imported}"
        for module, imports in module_imports().items()
        if module != "pytest_aibench"
        for imported in imports
        if layer_of(imported) < layer_of(module)
    ]
    assert upward == []


def test_the_store_imports_none_of_its_users() -> None:
    """store/ is a database layer: devices/, reporting/, the dashboard and continuous mode use
    it, and importing it loads none of them, directly or through another module."""
    users = tuple(f"pytest_aibench.{name}" for name in ("devices", "reporting", "dashboard"))
    users += ("pytest_aibench.continuous",)
    code = (
        "import sys, pytest_aibench.store.history, pytest_aibench.store.leases\n"
        f"print(' '.join(m for m in sys.modules if m.startswith({users!r})))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []


MOST_LAZY_IMPORTS = 5  # below the faces: each one waits for a heavy library (SQLAlchemy)


def test_imports_inside_functions_below_the_faces_are_few() -> None:
    lazy = {
        module: found
        for module in below_the_faces()
        if (found := sorted(imported for imported, inside in _package_imports(module) if inside))
    }
    assert sum(map(len, lazy.values())) <= MOST_LAZY_IMPORTS, lazy


MOST_METHODS = 20


def test_no_class_holds_more_than_twenty_methods() -> None:
    sizes = {
        f"{module}.{node.name}": sum(
            isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) for child in node.body
        )
        for module, path in package_modules().items()
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.ClassDef)
    }
    assert {name: n for name, n in sizes.items() if n > MOST_METHODS} == {}


VERDICT_WORDS = ("regressed", "improved", "unchanged", "insufficient", "inconclusive")


def test_verdict_words_are_spelled_only_in_records() -> None:
    """Every other module takes them from records.py (REGRESSED, ...): one vocabulary."""
    spelled = [
        f"{module}:{node.lineno}"
        for module, path in package_modules().items()
        if module != "pytest_aibench.records"
        for node in ast.walk(ast.parse(path.read_text("utf-8")))
        if isinstance(node, ast.Constant) and node.value in VERDICT_WORDS
    ]
    assert spelled == []


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports_from(tree: ast.AST, inside: bool = False) -> Iterator[tuple[ast.ImportFrom, bool]]:
    """Every ``from ... import`` of a module, whether it is inside a function, except those
    under ``if TYPE_CHECKING:`` (never run)."""
    for node in ast.iter_child_nodes(tree):
        if _is_type_checking(node):
            continue
        if isinstance(node, ast.ImportFrom):
            yield node, inside
        yield from _imports_from(node, inside or isinstance(node, ast.FunctionDef))


PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def package_modules() -> dict[str, Path]:
    return {
        ".".join(p.relative_to(PACKAGE_ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (PACKAGE_ROOT / "pytest_aibench").rglob("*.py")
    }


def _package_imports(module: str) -> Iterator[tuple[str, bool]]:
    """The package modules ``module`` imports, each with whether it does so in a function."""
    paths = package_modules()
    path = paths[module]
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for imp, inside in _imports_from(ast.parse(path.read_text("utf-8"))):
        if imp.level:
            parts = package.split(".")[: len(package.split(".")) - imp.level + 1]
            base = ".".join([*parts, *([imp.module] if imp.module else [])])
        elif (imp.module or "").startswith("pytest_aibench"):
            base = str(imp.module)
        else:
            continue
        for alias in imp.names:
            name = f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base
            if name in paths and name != module:
                yield name, inside


def module_imports() -> dict[str, set[str]]:
    """Each module of the package and the package modules it imports, whenever it does: at
    module level or when a function runs (a cycle through a function is a cycle all the same)."""
    return {module: {name for name, _ in _package_imports(module)} for module in package_modules()}


def reaches(graph: dict[str, set[str]], start: str, goal: str) -> bool:
    """Whether importing ``start`` imports ``goal``, directly or through other modules."""
    seen: set[str] = set()
    waiting = [start]
    while waiting:
        for nxt in graph[waiting.pop()] - seen:
            if nxt == goal:
                return True
            seen.add(nxt)
            waiting.append(nxt)
    return False


def test_no_import_cycle_in_the_package() -> None:
    graph = module_imports()
    assert [module for module in graph if reaches(graph, module, module)] == []


def _with_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Importing ``a.b.c`` from outside ``a.b`` runs ``a.b``'s ``__init__`` first: such an
    import also reaches that package (the top package's ``__init__`` imports nothing eagerly;
    a module importing a sibling does not depend on its own package's ``__init__``)."""
    return {
        module: imported
        | {
            parent
            for name in imported
            if (parent := name.rsplit(".", 1)[0]) in graph
            and parent != "pytest_aibench"
            and not module.startswith(f"{parent}.")
        }
        for module, imported in graph.items()
    }


WALK_RECORDER = '''
import json, sys
import pytest

STEPS = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Every call from one of the package's modules into another while the item runs."""
    def profile(frame, event, arg):
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        callee = frame.f_globals.get("__name__", "")
        ours = {caller[:14], callee[:14]} == {"pytest_aibench"}
        if event == "call" and caller != callee and ours:
            STEPS.append((caller, callee, frame.f_code.co_name))
    sys.setprofile(profile)
    try:
        return (yield)
    finally:
        sys.setprofile(None)
        with open("walk.json", "w") as out:
            json.dump(STEPS, out)
'''

OBSERVER_PROGRAM = (
    "#!/usr/bin/env python3\n"
    'print(\'Caffe2Observer {"type": "NET", "metric": "latency", "unit": "us", '
    '"value": 5}\')\n'
)
MOST_CLIMBS = 2


def _program_project(pytester: pytest.Pytester) -> list[str]:
    """A program spec, its program and a control program; the options that run it."""
    import json

    for name in ("treatment", "control"):
        program = pytester.path / name
        program.write_text(OBSERVER_PROGRAM)
        program.chmod(0o755)
    test = {
        "identifier": "w",
        "metric": "delay",
        "iter": 10,
        "warmup": 0,
        "commands": ["{program}"],
    }
    spec = {"model": {"name": "walk", "framework": "generic", "format": "generic"}, "tests": [test]}
    (pytester.path / "walk_spec.json").write_text(json.dumps(spec))
    return ["--aibench-spec=walk_spec.json", f"--aibench-program={pytester.path / 'treatment'}"]


def _onnx_project(pytester: pytest.Pytester) -> list[str]:
    """ONNX Runtime in this process, its golden output checked."""
    import json

    from .test_inprocess import GOLDEN, onnx_model, spec, write_golden

    onnx_model(pytester)
    write_golden(pytester)
    test = {"identifier": "w", "metric": "delay", "iter": 10, **GOLDEN}
    (pytester.path / "walk_spec.json").write_text(
        json.dumps(spec("onnx", "model", "mlp.onnx", test))
    )
    return ["--aibench-spec=walk_spec.json"]


@pytest.mark.parametrize("how", ["program", "program, A/B", "in process"])
def test_a_walk_of_one_execution_seldom_climbs_back_up(pytester: pytest.Pytester, how: str) -> None:
    """One spec item run, every call between two of the package's modules recorded: a call
    into a module that imports the caller's, directly or not, climbs back up the house (a
    callback handed down, such as a runner's lambda its helper module calls, is one)."""
    import json

    pytester.makeconftest(WALK_RECORDER)
    options = _onnx_project(pytester) if how == "in process" else _program_project(pytester)
    if how == "program, A/B":
        options += [f"--aibench-ab-control={pytester.path / 'control'}", "--aibench-ab-max-time=2"]
    # the item passes or, A/B left undecided on a busy machine, is inconclusive: both walk alike
    assert pytester.runpytest_subprocess(*options).ret == pytest.ExitCode.OK
    steps = {
        (caller, callee)
        for caller, callee, _ in json.loads((pytester.path / "walk.json").read_text())
    }
    graph = _with_packages(module_imports())
    assert len(steps) > 20  # the walk was recorded: run_case, running, execution, runners, ...
    climbs = sorted((caller, callee) for caller, callee in steps if reaches(graph, callee, caller))
    assert len(climbs) <= MOST_CLIMBS, climbs
