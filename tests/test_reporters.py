"""FAI-PEP's reporter outputs: the local tree its regression detector reads, simple-local files,
and the raw screen records."""

import json

import pytest
from pytest import Pytester, RunResult

from .helpers import generic_spec, write_json, write_program


def observer_run(pytester: Pytester, *options: str) -> RunResult:
    write_program(pytester.path / "prog.py")
    write_json(
        pytester.path / "demo.json",
        generic_spec(
            "demo",
            tests=[
                {
                    "identifier": "small",
                    "metric": "delay",
                    "iter": 3,
                    "commands": ["{files.program} --iter {iter}"],
                }
            ],
        ),
    )
    return pytester.runpytest(
        "--aibench-spec=demo.json", "--aibench-platform-sig=lab box", *options
    )


def test_the_local_reporter_writes_fai_peps_tree_and_keeps_earlier_runs(pytester: Pytester) -> None:
    for _ in range(2):
        observer_run(pytester, "--aibench-local-reporter=tree").assert_outcomes(passed=1)
    top = pytester.path / "tree/lab-box/generic/demo/delay/small"
    runs = sorted(top.glob("*/*/*/*/*"))
    assert [path.name for path in runs] == ["0", "1"]  # <Y>/<M>/<D>/<commit>/<N>
    year, month, day, commit = runs[0].relative_to(top).parts[:4]
    assert len(year) == 4 and 1 <= int(month) <= 12 and 1 <= int(day) <= 31 and commit
    assert sorted(p.name for p in runs[0].iterdir()) == [
        "NET-latency.txt",
        "NET-peak_memory.txt",
        "conv1-latency.txt",
        "meta.txt",
    ]
    record = json.loads((runs[0] / "NET-latency.txt").read_text())
    assert record["values"] == [10.0, 11.0, 12.0] and record["unit"] == "ms"
    assert record["summary"]["p50"] == 11.0
    meta = json.loads((runs[0] / "meta.txt").read_text())
    assert meta["platform"] == "lab box" and meta["net_name"] == "demo"
    assert meta["identifier"] == "small" and meta["metric"] == "delay"


def test_simple_local_and_simple_screen_reporters(pytester: Pytester) -> None:
    result = observer_run(
        pytester, "--aibench-simple-local-reporter=simple", "--aibench-simple-screen-reporter"
    )
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "simple/small/data.txt").read_text())
    assert data["NET latency"]["values"] == [10.0, 11.0, 12.0]
    printed = [line for line in result.outlines if line.startswith('{"NET latency"')]
    assert len(printed) == 1 and json.loads(printed[0]) == data


def test_verbose_lines_name_the_measurement_and_device_with_and_without_xdist(
    pytester: Pytester,
) -> None:
    pytest.importorskip("xdist")
    for options in (["-v"], ["-v", "-n", "2"]):
        result = observer_run(pytester, *options, "-p", "no:cacheprovider")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "*PASSED [[]NET latency p50 11.00 ms on lab box[]]*demo[[]small-host[]]*"
                if "-n" in options
                else "demo.json::demo[[]small-host[]] PASSED "
                "[[]NET latency p50 11.00 ms on lab box[]]*"
            ]
        )


def test_fai_pep_reporters_take_python_tests_using_the_fixture(pytester: Pytester) -> None:
    pytester.makepyfile(
        test_fast="""
        def test_sum(aibench):
            aibench(sum, range(10))
    """
    )
    result = pytester.runpytest(
        "--aibench-simple-local-reporter=simple",
        "--aibench-local-reporter=tree",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    data = json.loads((pytester.path / "simple/test_fast.py--test_sum/data.txt").read_text())
    assert len(data["NET latency"]["values"]) == 50
    written = list((pytester.path / "tree").rglob("NET-latency.txt"))
    assert len(written) == 1 and "/pytest/test_sum/delay/" in written[0].as_posix()


def test_an_output_that_cannot_be_written_fails_the_session_and_keeps_the_others(
    pytester: Pytester,
) -> None:
    (pytester.path / "taken").write_text("a file where a folder is needed")
    result = observer_run(pytester, "--aibench-html=taken/report.html", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(
        ["aibench: --aibench-html: could not write: *taken*", "aibench: wrote run.json"]
    )
    assert json.loads((pytester.path / "run.json").read_text())["items"]
