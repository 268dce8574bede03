"""Hostile specs and faults: nothing written or deleted outside the folders the user named, no
run lost to one bad value, a bad spec an error of its own file, bounded work, interrupted runs
that leave earlier results alone, secrets kept, quoted device commands, pytest's own workflow."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest import CaptureFixture, MonkeyPatch, Pytester

from pytest_aibench.devices.base import DeviceInfo
from pytest_aibench.devices.lease import lease_any
from pytest_aibench.devices.shell import shell_command
from pytest_aibench.errors import DeviceError
from pytest_aibench.names import UnsafeName, path_component
from pytest_aibench.records import RunFile

from .conftest import FileServer, Route
from .helpers import board_held_elsewhere, case_of, generic_spec, write_json, write_program

NAN_PROGRAM = """#!/usr/bin/env python3
import json, sys
values = [float(v) for v in sys.argv[1].split(",")]
for v in values:
    print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms", "value": v}))
"""


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def strict_json(path: Path) -> RunFile:
    """JSON as other tools read it: NaN and Infinity tokens refused."""

    def refuse(token: str) -> None:
        raise ValueError(f"{path} holds {token}")

    run: RunFile = json.loads(path.read_text(), parse_constant=refuse)
    return run


# -- 1. names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("../../x", "..-..-x"),
        ("/etc/passwd", "_etc-passwd"),
        ("feature/x", "feature-x"),
        ("C:\\models", "C--models"),
        ("-rf", "_rf"),
        ("mobilenet v2", "mobilenet-v2"),
    ],
)
def test_spec_text_becomes_one_safe_path_component(text: str, safe: str) -> None:
    assert path_component(text, "name") == safe


@pytest.mark.parametrize("text", ["", ".", "..", "!!!", "...", "/", "-", "../.."])
def test_text_that_names_no_file_is_refused(text: str) -> None:
    with pytest.raises(UnsafeName, match="cannot name a file or folder"):
        path_component(text, "identifier")


def test_long_names_are_cut_and_stay_apart() -> None:
    first, second = path_component("a" * 300 + "1", "x"), path_component("a" * 300 + "2", "x")
    assert len(first.encode()) <= 200 and first != second


def test_a_model_name_that_climbs_out_downloads_inside_the_cache(
    pytester: Pytester, file_server: FileServer
) -> None:
    file_server.routes["/w.bin"] = Route(body=b"weights")
    write_program(pytester.path / "work/prog.py")
    spec = generic_spec("../../escape", framework="generic")
    spec["model"]["format"] = "/tmp"
    spec["model"]["files"]["weights"] = {
        "filename": ".bashrc",  # with path parts it is refused (tests/test_spec.py)
        "location": file_server.url("/w.bin"),
    }
    write_json(pytester.path / "work/demo.json", spec)
    before, around = files_under(pytester.path), set(pytester.path.parent.iterdir())
    result = pytester.runpytest(
        "--aibench-spec=work/demo.json",
        "--aibench-model-cache=cache",
        "--aibench-history=off",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    new = files_under(pytester.path) - before
    assert new and all(name.startswith(("cache", ".benchmarks")) for name in new), new
    assert set(pytester.path.parent.iterdir()) == around
    assert [p.relative_to(pytester.path).parts[0] for p in pytester.path.rglob(".bashrc")] == [
        "cache"
    ]


@pytest.mark.parametrize("identifier", ["..", "!!!", "."])
def test_an_identifier_that_names_no_folder_fails_its_spec_only(
    pytester: Pytester, identifier: str
) -> None:
    write_program(pytester.path / "prog.py")
    bad = generic_spec("bad")
    bad["tests"][0]["identifier"] = identifier
    write_json(pytester.path / "specs/bad.json", bad)
    write_json(pytester.path / "specs/good.json", generic_spec("good"))
    reports = pytester.path / "out" / "reports"
    (reports / "earlier").mkdir(parents=True)
    (reports / "earlier" / "data.txt").write_text("an earlier run")
    (pytester.path / "out" / "neighbour.txt").write_text("keep me")
    shutil.copy(pytester.path / "prog.py", pytester.path / "specs/prog.py")
    result = pytester.runpytest(
        "--aibench-spec=specs", f"--aibench-simple-local-reporter={reports}"
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*bad.json: tests[[]0[]].identifier: identifier '{identifier}'"
            " cannot name a file or folder*"
        ]
    )
    assert (pytester.path / "out" / "neighbour.txt").read_text() == "keep me"
    assert (reports / "earlier" / "data.txt").read_text() == "an earlier run"
    assert (reports / "0" / "data.txt").is_file()


def test_the_simple_local_reporter_replaces_data_but_keeps_the_rest_of_a_folder(
    pytester: Pytester,
) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    reports = pytester.path / "reports"
    (reports / "0").mkdir(parents=True)
    (reports / "0" / "notes.txt").write_text("mine")
    (reports / "0" / "data.txt").write_text("old")
    pytester.runpytest(
        "--aibench-spec=demo.json", f"--aibench-simple-local-reporter={reports}"
    ).assert_outcomes(passed=1)
    assert (reports / "0" / "notes.txt").read_text() == "mine"
    assert "NET latency" in (reports / "0" / "data.txt").read_text()


def test_simple_local_files_of_one_run_never_overwrite_each_other(pytester: Pytester) -> None:
    write_program(pytester.path / "specs/prog.py")
    for name in ("first", "second"):  # both identifiers are {ID} = 0, on the same device
        write_json(pytester.path / f"specs/{name}.json", generic_spec(name))
    reports = pytester.path / "reports"
    pytester.runpytest(
        "--aibench-spec=specs", f"--aibench-simple-local-reporter={reports}"
    ).assert_outcomes(passed=2)
    folders = sorted(path.parent.name for path in reports.glob("*/data.txt"))
    assert len(folders) == 2 and folders[0].endswith("-first") and folders[1].endswith("-second")


# -- 2. one bad value -------------------------------------------------------------------------


def test_a_nan_sample_fails_its_item_and_every_output_is_still_written(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py", NAN_PROGRAM)
    tests: list[dict[str, Any]] = [
        {"identifier": "nan", "metric": "delay", "commands": ["{files.program} 1,nan,3"]},
        {"identifier": "inf", "metric": "delay", "commands": ["{files.program} 1,inf,-inf"]},
        {"identifier": "fine", "metric": "delay", "commands": ["{files.program} 1,2,3"]},
    ]
    write_json(pytester.path / "demo.json", generic_spec("demo", tests=tests))
    html = ("--aibench-html=report.html",) if importlib.util.find_spec("matplotlib") else ()
    result = pytester.runpytest(
        "--aibench-spec=demo.json",
        "--aibench-json=run.json",
        "--aibench-save=night",
        "--aibench-benchmark-json=pb.json",
        *html,
    )
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*not finite*NET latency: 1 nan*"])
    run = strict_json(pytester.path / "run.json")
    metrics = {case_of(item)["identifier"]: item["metrics"][0] for item in run["items"]}
    assert metrics["nan"]["values"] == [1.0, 3.0] and metrics["nan"]["non_finite"] == {"nan": 1}
    assert metrics["nan"]["num_runs"] == 3 and metrics["nan"]["summary"]["p50"] == 2.0
    assert metrics["inf"]["non_finite"] == {"inf": 1, "-inf": 1}
    assert "non_finite" not in metrics["fine"]
    [saved] = (pytester.path / ".aibench").glob("*_night.json")
    strict_json(saved)
    strict_json(pytester.path / "pb.json")
    if html:
        assert "demo[nan-host]" in (pytester.path / "report.html").read_text()
    result.stdout.fnmatch_lines(["*aibench: 6 metric rows from 3 items*"])


def test_an_all_zero_golden_gives_no_infinite_error(tmp_path: Path) -> None:
    from pytest_aibench.verdicts.golden import compare
    from pytest_aibench.verdicts.rules import Tolerance

    result = compare("y", [0.0, 1e-7], [0.0, 0.0], Tolerance())
    assert result.passed and result.rel_l2 is None and result.max_abs == pytest.approx(1e-7)


def test_a_golden_mismatch_names_an_element_beyond_the_tolerance() -> None:
    from pytest_aibench.verdicts.golden import compare
    from pytest_aibench.verdicts.rules import Tolerance

    # Element 0 has the largest absolute error but lies within rtol of its large golden value;
    # element 1 is the one that fails.
    result = compare("y", [1000.05, 0.01], [1000.0, 0.0], Tolerance(atol=1e-3, rtol=1e-4))
    assert not result.passed and result.worst_index == (1,)


# -- 3. a bad spec is an error of its own file ------------------------------------------------


def deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


def test_nesting_deeper_than_python_reads_fails_its_own_collection_only(pytester: Pytester) -> None:
    write_program(pytester.path / "specs/prog.py")
    text = json.dumps(generic_spec("bad")).replace(
        '"metric"', '"x": ' + "[" * 100_000 + "]" * 100_000 + ', "metric"', 1
    )
    (pytester.path / "specs/bad.json").write_text(text)
    write_json(pytester.path / "specs/good.json", generic_spec("good"))
    result = pytester.runpytest("--aibench-spec=specs")
    result.stdout.fnmatch_lines(["*bad.json: nested more than 64 levels deep*"])
    result.assert_outcomes(passed=1, errors=1)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (lambda s: s["tests"][0].update(extra=deep(200)), "*nested more than 64 levels deep*"),
        (lambda s: s["tests"][0].update(statistics=["p100.5"]), "*statistics[[]0[]]*p100.5*"),
        (lambda s: s["tests"][0].update(warmup=1e9), "*warmup*1000000000*"),
        (lambda s: s["tests"][0].update(iter=10**9), "*iter*"),
        (
            lambda s: s["tests"][0].update(platform_args={"sleep_before_run": 1e9}),
            "*sleep_before_run*",
        ),
        (lambda s: s["tests"][0].update(inputs={"x": {"shapes": [[1, 0, 3]]}}), "*shapes*"),
        (lambda s: s["tests"][0].update(tflite={"num_threads": 0}), "*num_threads*"),
        (lambda s: s["tests"][0].update(env={"A=1; touch X; B": "1"}), "*env*"),
    ],
)
def test_a_hostile_spec_fails_its_own_collection_only(
    pytester: Pytester, bad: Callable[[dict[str, Any]], object], message: str
) -> None:
    write_program(pytester.path / "specs/prog.py")
    spec = generic_spec("bad")
    bad(spec)
    (pytester.path / "specs/bad.json").write_text(json.dumps(spec))
    write_json(pytester.path / "specs/good.json", generic_spec("good"))
    result = pytester.runpytest("--aibench-spec=specs")
    result.stdout.fnmatch_lines([message])
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize("name", ["-x", "_x", "skip", "xfail", "-_x"])
def test_a_metric_or_format_that_cannot_be_a_mark_still_runs(pytester: Pytester, name: str) -> None:
    write_program(pytester.path / "prog.py")
    spec = generic_spec("demo", framework="generic")
    spec["model"]["format"] = name
    spec["tests"][0]["metric"] = name
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest_subprocess(
        "--aibench-spec=demo.json", "--strict-markers", "-W", "error"
    )
    result.assert_outcomes(passed=1)


def test_a_yaml_alias_bomb_is_refused_quickly(pytester: Pytester) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    lines += [
        "model: {name: m, format: generic}",
        "tests: [{metric: delay, commands: ['{program}'], extra: *a8}]",
    ]
    (pytester.path / "bomb.yaml").write_text("\n".join(lines))
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "good.json", generic_spec("good"))
    result = pytester.runpytest(
        "--aibench-spec=bomb.yaml", "--aibench-spec=good.json", "--aibench-string-map", '{"x": "y"}'
    )
    result.stdout.fnmatch_lines(["*expands to more than 2,000,000 values*"])
    result.assert_outcomes(passed=1, errors=1)


def test_many_input_shapes_share_no_shape_lists() -> None:
    """Linear expansion: each case holds its own shape, not a copy of all of them."""
    from pytest_aibench.spec.legacy import split_shapes

    shapes = [[1, 3, i + 1] for i in range(2000)]
    cases = split_shapes(
        {"metric": "delay", "inputs": {"x": {"shapes": shapes, "type": "f"}}}, "s.json", "tests[0]"
    )
    assert [case["inputs"]["x"]["shapes"] for case in cases[:2]] == [[[1, 3, 1]], [[1, 3, 2]]]
    assert all(len(case["inputs"]["x"]["shapes"]) == 1 for case in cases)
    cases[0]["inputs"]["x"]["shapes"][0][0] = 99
    assert shapes[0][0] == 1 and cases[1]["inputs"]["x"]["type"] == "f"


# -- 4. bounded work --------------------------------------------------------------------------


def test_the_timeout_covers_the_whole_case_including_its_sleep(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    spec = generic_spec(
        "demo",
        tests=[
            {
                "metric": "delay",
                "platform_args": {"sleep_before_run": 60},
                "commands": ["{files.program}"],
            }
        ],
    )
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-timeout=1")
    # Without the case budget the command would run after the minute's sleep, and pass.
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the case ran past its timeout of 1 s (warmup, sleeps and runs*"])


# -- 5. interrupted runs, orphans -------------------------------------------------------------


HANG = """#!/usr/bin/env python3
import os, sys, time
pid_file = sys.argv[1]
if os.fork() == 0:
    os.setsid()  # a child that leaves the program's process group
    open(pid_file + ".child", "w").write(str(os.getpid()))
    time.sleep(300)
    sys.exit(0)
open(pid_file, "w").write(str(os.getpid()))
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


def wait_for(path: Path, seconds: float = 30) -> str:
    deadline = time.monotonic() + seconds
    while not (path.exists() and path.read_text()):
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return path.read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups, /proc")
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_keeps_earlier_results_and_leaves_no_process(
    pytester: Pytester, how: signal.Signals
) -> None:
    write_program(pytester.path / "hang.py", HANG)
    pids = pytester.path / "pid"
    write_program(pytester.path / "prog.py")
    tests: list[dict[str, Any]] = [
        {
            "identifier": "quick",
            "metric": "delay",
            "iter": 3,
            "commands": ["{files.program} --iter {iter}"],
        },
        {"identifier": "stuck", "metric": "delay", "commands": [f"{{files.hang}} {pids}"]},
    ]
    spec = generic_spec("demo", tests=tests)
    spec["model"]["files"]["hang"] = {"filename": "hang.py", "location": "hang.py"}
    write_json(pytester.path / "demo.json", spec)
    (pytester.path / "run.json").write_text('{"earlier": true}')
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "--aibench-spec=demo.json",
            "--aibench-json=run.json",
            "--aibench-save=nightly",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    program, child = int(wait_for(pids)), int(wait_for(Path(f"{pids}.child")))
    os.killpg(process.pid, how) if how != signal.SIGKILL else process.kill()
    output, _ = process.communicate(timeout=60)
    deadline = time.monotonic() + 10
    while (alive(program) or alive(child)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(program), output
    assert not alive(child), output  # it left the program's group: its tag found it
    if how != signal.SIGKILL:  # kill -9 leaves pytest no time to say or keep anything
        assert "interrupted" in output
        assert list((pytester.path / ".aibench" / "partial").glob("*.json"))
    assert (pytester.path / "run.json").read_text() == '{"earlier": true}'
    assert not list((pytester.path / ".aibench").glob("*_nightly.json"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_program_whose_child_keeps_stdout_open_does_not_hold_the_run(tmp_path: Path) -> None:
    from pytest_aibench.devices.processes import run_process

    script = (
        "import os, sys, time\n"
        "if os.fork() == 0:\n    os.setsid(); time.sleep(120)\n"
        "print('done')\n"
    )
    done = run_process(
        [sys.executable, "-c", script], env=dict(os.environ), cwd=str(tmp_path), timeout=20
    )
    # Held by the child's copy of stdout, the wait would run into the timeout (timed_out).
    assert done.returncode == 0 and "done" in done.stdout and not done.timed_out


# -- 6. saved runs ----------------------------------------------------------------------------


def test_concurrent_saves_under_one_name_keep_every_run_and_branch_names_compare(
    pytester: Pytester,
) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    args = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "--aibench-spec=demo.json",
        "--aibench-history=off",
    ]
    runs = [
        subprocess.Popen(
            [*args, "--aibench-save=feature/x"], cwd=pytester.path, stdout=subprocess.DEVNULL
        )
        for _ in range(3)
    ]
    assert [run.wait(timeout=120) for run in runs] == [0, 0, 0]
    saved = sorted((pytester.path / ".aibench").glob("*.json"))
    assert len(saved) == 3 and all(p.name.endswith("_feature-x.json") for p in saved)
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-compare=feature/x")
    result.stdout.fnmatch_lines(["*aibench: compared with *_feature-x.json*"])
    escape = pytester.runpytest("--aibench-spec=demo.json", "--aibench-save=../..")
    assert escape.ret == pytest.ExitCode.USAGE_ERROR
    escape.stderr.fnmatch_lines(["*--aibench-save: save name '../..' cannot name a file*"])


# -- 7. the cache fetches what the spec asks for ----------------------------------------------


def test_two_specs_with_one_file_name_but_two_sources_get_their_own_bytes(
    pytester: Pytester, file_server: FileServer
) -> None:
    from pytest_aibench.cache import ModelCache
    from pytest_aibench.spec.load import load_cases

    file_server.routes["/a"] = Route(body=b"first")
    file_server.routes["/b"] = Route(body=b"second")
    cache = ModelCache(root=pytester.path / "cache")
    got = []
    for route in ("/a", "/b"):
        spec = {
            "model": {
                "name": "m",
                "format": "onnx",
                "files": {"model": {"filename": "m.onnx", "location": file_server.url(route)}},
            },
            "tests": [{"metric": "delay"}],
        }
        case = load_cases(write_json(pytester.path / f"{route[1:]}.json", spec))[0]
        got.append(cache.fetch(case.model_files[0], case).read_bytes())
    assert got == [b"first", b"second"]
    assert file_server.hits["/a"] == file_server.hits["/b"] == 1


# -- 8. secrets -------------------------------------------------------------------------------


def test_programs_do_not_see_the_access_token_and_debug_logs_mask_it(
    pytester: Pytester, monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.setenv("AIBENCH_REMOTE_ACCESS_TOKEN", "s3cret-env")
    seen = pytester.path / "seen.txt"
    write_program(
        pytester.path / "prog.py",
        (
            "#!/usr/bin/env python3\nimport json, os\n"
            f"open({str(seen)!r}, 'w').write("
            "os.environ.get('AIBENCH_REMOTE_ACCESS_TOKEN', 'absent'))\n"
            "print('AIBENCH ' + json.dumps({'type': 'NET', 'metric': 'latency', 'unit': 'ms', "
            "'value': 1}))\n"
        ),
    )
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest_subprocess(
        "--aibench-spec=demo.json",
        "--aibench-json=run.json",
        "--debug=debug.log",
        "--aibench-remote-access-token",
        "s3cret-flag",
    )
    result.assert_outcomes(passed=1)
    assert seen.read_text() == "absent"
    log = (pytester.path / "debug.log").read_text()
    assert "s3cret-flag" not in log and "--aibench-remote-access-token', '***'" in log


def test_an_https_to_http_redirect_is_refused() -> None:
    import urllib.error
    from email.message import Message

    from pytest_aibench.reporting.remote import Refused, _redirect_target

    headers = Message()
    headers["Location"] = "http://results.invalid/store"
    error = urllib.error.HTTPError("https://results.invalid/store", 301, "moved", headers, None)
    with pytest.raises(Refused, match=r"redirect to another origin, http://results\.invalid:80"):
        _redirect_target("https://results.invalid/store", error)


# -- 9. device commands -----------------------------------------------------------------------


def test_device_shell_commands_quote_values_and_refuse_odd_names() -> None:
    line = shell_command(
        ["prog", "a b", "$(x)"], env={"MODE": "x; rm -rf /"}, cwd="/d i r", timeout=5
    )
    assert line == (
        "mkdir -p '/d i r' && cd '/d i r' && MODE='x; rm -rf /' timeout -k 2 5 prog 'a b' '$(x)'"
    )
    with pytest.raises(DeviceError, match="not a plain name"):
        shell_command(["prog"], env={"A=1; touch X; B": "1"}, cwd="/d", timeout=5)


# -- 10. a second user on the same host -------------------------------------------------------


BOARD = DeviceInfo("ssh", "board", "b", "ssh://b", "x", "y")


def test_a_waiting_run_says_who_holds_the_device_and_gives_up_after_its_timeout(
    tmp_path: Path,
) -> None:
    with board_held_elsewhere(tmp_path) as holder:
        said: list[str] = []
        with (
            pytest.raises(DeviceError, match="no device was free within"),
            lease_any([BOARD], tmp_path, timeout=0.5, notify=said.append),
        ):
            pass
        assert said == [
            f"aibench: waiting for board, held by pid {holder.pid} since "
            f"{said[0].rsplit('since ', 1)[1]}"
        ]


# The second user's side of the shared lease folder: tests/test_leases.py


# -- 11. pytest's own workflow ----------------------------------------------------------------


def test_last_failed_reruns_only_the_failed_spec_item(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    tests: list[dict[str, Any]] = [
        {
            "identifier": "ok",
            "metric": "delay",
            "iter": 3,
            "commands": ["{files.program} --iter {iter}"],
        },
        {
            "identifier": "broken",
            "metric": "delay",
            "platform_args": {"env": {"EXIT_CODE": "3"}},
            "commands": ["{files.program}"],
        },
    ]
    write_json(pytester.path / "demo.json", generic_spec("demo", tests=tests))
    pytester.runpytest("--aibench-spec=demo.json").assert_outcomes(passed=1, failed=1)
    again = pytester.runpytest("--aibench-spec=demo.json", "--lf")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*run-last-failure: rerun previous 1 failure*"])


def test_markers_lists_the_plugins_marks_and_not_aibench_deselects_fixture_tests(
    pytester: Pytester,
) -> None:
    markers = pytester.runpytest("--markers")  # without specs, only the plugin's own mark
    markers.stdout.fnmatch_lines(["@pytest.mark.aibench(*"])
    assert "@pytest.mark.onnx" not in markers.stdout.str()
    with_specs = pytester.runpytest("--markers", f"--aibench-spec={pytester.path}")
    with_specs.stdout.fnmatch_lines(["@pytest.mark.aibench(*", "@pytest.mark.onnx:*"])
    pytester.makepyfile(
        test_fixture="def test_timed(aibench):\n    aibench(sum, [1, 2])\n"
        "def test_plain():\n    pass\n"
    )
    result = pytester.runpytest("-m", "not aibench")
    result.assert_outcomes(passed=1, deselected=1)


def test_an_ini_flag_that_is_no_boolean_is_a_usage_error(pytester: Pytester) -> None:
    pytester.makeini("[pytest]\naibench_autosave = nope\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*aibench_autosave: expected true or false*'nope'*"])


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--aibench-alpha=1.5", "*--aibench-alpha: expected a probability between 0 and 1*"),
        ("--aibench-timeout=0", "*--aibench-timeout: expected a number of seconds > 0*"),
    ],
)
def test_out_of_range_options_are_usage_errors(
    pytester: Pytester, option: str, message: str
) -> None:
    result = pytester.runpytest(option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


# -- 12. errors a person can read -------------------------------------------------------------


def test_a_failed_download_is_one_located_paragraph(
    pytester: Pytester, file_server: FileServer
) -> None:
    file_server.routes["/gone"] = Route(status=404)
    write_program(pytester.path / "prog.py")
    spec = generic_spec("demo")
    spec["model"]["files"]["weights"] = {"filename": "w.bin", "location": file_server.url("/gone")}
    write_json(pytester.path / "demo.json", spec)
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-model-cache=cache")
    result.assert_outcomes(errors=1)
    url = file_server.url("/gone")
    result.stdout.fnmatch_lines(
        [f"*demo.json model.files.weights: download of {url} failed: HTTP 404*Check that the URL*"]
    )
    assert "Traceback" not in result.stdout.str() and "cache.py" not in result.stdout.str()


def test_observer_rows_that_do_not_parse_are_counted_and_shown(pytester: Pytester) -> None:
    write_program(
        pytester.path / "prog.py",
        (
            "#!/usr/bin/env python3\nimport json\n"
            "print('AIBENCH ' + json.dumps({'type': 'NET', 'metric': 'latency', 'unit': 'ms', "
            "'value': 1}))\n"
            'print(\'AIBENCH {"type": "NET", "value": 2\')\n'
            "print('AIBENCH {broken')\n"
        ),
    )
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "aibench: demo.json::demo[[]0-host[]]: 2 observer row(s) could "
            "not be parsed and were left out, e.g. *"
        ]
    )
    extra = json.loads((pytester.path / "run.json").read_text())["items"][0]["extra"]
    assert extra["unparsed_rows"]["count"] == 2


def test_an_input_file_that_names_no_model_input_is_an_error(pytester: Pytester) -> None:
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "specifications/models"))
    try:
        import make_mlp
    finally:
        sys.path.pop(0)
    import numpy as np

    (pytester.path / "mlp.onnx").write_bytes(make_mlp.onnx_bytes())
    np.save(pytester.path / "x.npy", make_mlp.golden_arrays()["x"])
    write_json(
        pytester.path / "mlp.json",
        {
            "model": {
                "name": "mlp",
                "format": "onnx",
                "files": {"model": {"filename": "mlp.onnx", "location": "mlp.onnx"}},
            },
            "tests": [
                {
                    "identifier": "typo",
                    "metric": "delay",
                    "iter": 3,
                    "input_files": {"X_typo": {"filename": "x.npy", "location": "x.npy"}},
                }
            ],
        },
    )
    result = pytester.runpytest("--aibench-spec=mlp.json")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*tests[[]0[]].input_files.X_typo: the model has no input "
            "'X_typo'; its inputs are [[]'x'[]]*"
        ]
    )


def test_litert_in_process_skips_under_the_cuda_backend(pytester: Pytester) -> None:
    pytest.importorskip("ai_edge_litert")
    write_json(
        pytester.path / "t.json",
        {
            "model": {
                "name": "m",
                "format": "tflite",
                "files": {"graph": {"filename": "m.tflite", "location": "m.tflite"}},
            },
            "tests": [{"identifier": "g", "metric": "delay"}],
        },
    )
    (pytester.path / "m.tflite").write_bytes(b"not read: the backend is refused first")
    result = pytester.runpytest("--aibench-spec=t.json", "--aibench-backend=cuda", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*LiteRT in process runs on cpu or xnnpack (XNNPACK) only*"])


def test_aibench_command_version_and_db_after_the_action(
    tmp_path: Path, capsys: CaptureFixture[str]
) -> None:
    from pytest_aibench import __version__
    from pytest_aibench.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"aibench {__version__}"
    missing = tmp_path / "none.sqlite"
    assert main(["history", "runs", "--db", str(missing)]) == 1
    assert f"no history database at {missing}" in capsys.readouterr().err


# -- 13. like with like -----------------------------------------------------------------------


def test_a_case_whose_inputs_changed_under_the_same_node_id_is_reported_not_judged(
    pytester: Pytester,
) -> None:
    write_program(pytester.path / "prog.py")

    def run(shape: list[int], *args: str) -> pytest.RunResult:
        tests: list[dict[str, Any]] = [
            {
                "identifier": "{ID}",
                "metric": "delay",
                "iter": 3,
                "inputs": {"x": {"shapes": [shape]}},
                "commands": ["{files.program}"],
            }
        ]
        write_json(pytester.path / "demo.json", generic_spec("demo", tests=tests))
        return pytester.runpytest("--aibench-spec=demo.json", *args)

    run([1, 3, 32, 32], "--aibench-save=base").assert_outcomes(passed=1)
    same = run([1, 3, 32, 32], "--aibench-compare=base")
    same.stdout.fnmatch_lines(["*compared with*: 0 regression(s)"])
    assert "inputs or model files changed" not in same.stdout.str()
    changed = run([4, 3, 64, 64], "--aibench-compare=base")
    changed.assert_outcomes(passed=1)
    changed.stdout.fnmatch_lines(
        [
            "aibench: 1 items whose inputs or model files changed "
            "(reported, not judged): demo.json::demo[[]0-host[]]"
        ]
    )


def test_tests_using_the_fixture_hold_the_host_lease_under_xdist(pytester: Pytester) -> None:
    pytest.importorskip("xdist")
    spans = pytester.path / "spans"
    spans.mkdir()
    pytester.makepyfile(
        test_timed=f"""
import time, pytest
from pathlib import Path

@pytest.mark.parametrize("n", range(4))
@pytest.mark.aibench(iterations=3, warmup=0)
def test_timed(aibench, n):
    start = time.time()
    aibench(time.sleep, 0.1)
    Path({str(spans)!r}, str(n)).write_text(f"{{start}} {{time.time()}}")
"""
    )
    pytester.runpytest_subprocess(
        "-n", "2", "-p", "no:cacheprovider", f"--aibench-lease-dir={pytester.path / 'leases'}"
    ).assert_outcomes(passed=4)
    intervals = sorted(tuple(map(float, p.read_text().split())) for p in spans.iterdir())
    assert len(intervals) == 4
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(intervals))
