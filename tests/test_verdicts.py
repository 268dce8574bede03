"""Save, compare, verdicts and exports through the pytest command line. The benchmark program
prints latencies drawn from a seeded distribution, so every verdict here is reproducible."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest
from pytest import Pytester, RunResult

from .helpers import generic_spec, write_json, write_program, written_run


class Bench(Protocol):
    """Runs the two-item demo spec with the program's seed and slow-down factor."""

    def __call__(self, *args: str, seed: int = 1, factor: float = 1.0) -> RunResult: ...


class AB(Protocol):
    """Runs the A/B spec: control.py against ``treatment``."""

    def __call__(self, treatment: str, *args: str) -> RunResult: ...


PROGRAM = """#!/usr/bin/env python3
import json, os, random
rng = random.Random(int(os.environ.get("SEED", "1")))
factor = float(os.environ.get("FACTOR", "1"))
for _ in range(60):
    value = 1000 * factor * rng.gauss(1, 0.03)
    print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "us",
                                   "value": value}))
print("AIBENCH " + json.dumps({"type": "NET", "metric": "score", "unit": "", "value": 1}))
"""


@pytest.fixture
def bench(pytester: Pytester) -> Bench:
    write_program(pytester.path / "prog.py", PROGRAM)
    tests = [
        {"identifier": name, "metric": "delay", "commands": ["{files.program}"]}
        for name in ("a", "b")
    ]
    write_json(pytester.path / "demo.json", generic_spec("demo", tests=tests))

    def run(*args: str, seed: int = 1, factor: float = 1.0) -> pytest.RunResult:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SEED", str(seed))
            env.setenv("FACTOR", str(factor))
            return pytester.runpytest("--aibench-spec=demo.json", *args)

    return run


def saved(pytester: Pytester) -> list[str]:
    return sorted(path.name for path in (pytester.path / ".aibench").glob("*.json"))


def test_unchanged_runs_pass_and_show_the_comparison(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-save=main", seed=1).assert_outcomes(passed=2)
    [name] = saved(pytester)
    assert re.fullmatch(r"\d{8}T\d{6}Z_nocommit_[0-9a-f]{8}_main\.json", name), name
    result = bench("--aibench-compare=main", seed=2)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*item*metric*p50*control*change*detects*verdict",
            "*demo[[]a-host[]]*NET latency*us*-*%*+*%*unchanged",
            "*demo[[]a-host[]]*NET score*not judged",
            "detects: the smallest slowdown the verdict's rule catches 9 times in 10 at the "
            "spread it saw",
            f"aibench: compared with {name}: 0 regression(s)",
        ]
    )


def test_several_saved_runs_are_one_control_with_their_drift(
    pytester: Pytester, bench: Bench
) -> None:
    for seed in (1, 2, 3):
        bench("--aibench-save=main", seed=seed).assert_outcomes(passed=2)
    result = bench("--aibench-compare=main", "--aibench-compare-runs=3", "--aibench-json=run.json")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["aibench: compared with *_main.json and 2 earlier runs: 0 *"])
    item = written_run(pytester.path)["items"][0]
    verdict = item["verdicts"][0]
    assert verdict["method"].startswith("across control runs") and verdict["status"] == "unchanged"
    assert verdict["control_runs"] == 3 and verdict["n_control"] == 3 * 60
    slower = bench("--aibench-compare=main", "--aibench-compare-runs=3", seed=4, factor=1.5)
    slower.assert_outcomes(failed=2)
    slower.stdout.fnmatch_lines(
        ["NET latency p50 regressed: * -> * (+*%, 99% CI *), *3 control runs*"]
    )


def test_saved_runs_that_disagree_say_so_and_point_to_ab(pytester: Pytester, bench: Bench) -> None:
    for factor in (1.0, 3.0, 3.1):  # one run in another regime
        bench("--aibench-save=main", factor=factor).assert_outcomes(passed=2)
    result = bench("--aibench-compare=main", "--aibench-compare-runs=3")
    result.stdout.fnmatch_lines(
        [
            "aibench: demo.json::demo[[]a-host[]]: NET latency: the 3 control runs disagree: "
            "p50 * to * us (+*%), in regimes * us (1 run); *-* us (2 runs); stored runs cannot "
            "tell a 5% change here: compare by A/B on this device (--aibench-ab-control *"
        ]
    )


def test_the_history_store_s_last_runs_are_a_control(pytester: Pytester, bench: Bench) -> None:
    missing = bench("--aibench-compare=history", "--aibench-history=off")
    assert missing.ret == pytest.ExitCode.USAGE_ERROR
    missing.stderr.fnmatch_lines(["*--aibench-compare=history: no history store at *"])
    for seed in (1, 2, 3):  # every run is appended to .aibench/history.sqlite, saved or not
        bench(seed=seed).assert_outcomes(passed=2)
    result = bench("--aibench-compare=history", "--aibench-compare-runs=3")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["aibench: compared with the history store's last 3 run(s): 0 *"])
    slower = bench("--aibench-compare=history", "--aibench-compare-runs=3", seed=4, factor=1.5)
    slower.assert_outcomes(failed=2)
    slower.stdout.fnmatch_lines(["NET latency p50 regressed: * -> * *3 control runs*"])


def test_a_slower_program_fails_with_the_verdict(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-autosave").assert_outcomes(passed=2)
    result = bench("--aibench-compare", seed=2, factor=1.2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "aibench: regression against *.json:",
            "NET latency p50 regressed: * -> * us (+*%, 95% CI +*% to +*%), Mann-Whitney p=*, "
            "n=60 control / 60 treatment; one control run: drift between runs unseen "
            "(--aibench-compare-runs); +*% or more caught 9 times in 10",
        ]
    )
    result.stdout.fnmatch_lines(["*demo[[]b-host[]]*NET latency*+1?.?%*regressed"])


def test_faster_programs_are_reported_as_improved(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-save=base").assert_outcomes(passed=2)
    result = bench("--aibench-compare=base", seed=2, factor=0.8)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*demo[[]a-host[]]*NET latency*-*%*improved"])


def test_rules_per_metric_and_min_effect(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-save=base").assert_outcomes(passed=2)
    bench("--aibench-compare=base", "--aibench-min-effect=30%", seed=2, factor=1.2).assert_outcomes(
        passed=2
    )
    bench(
        "--aibench-compare=base",
        "--aibench-min-effect=30%",
        "--aibench-fail-on=NET latency:p90:10%",
        seed=2,
        factor=1.2,
    ).assert_outcomes(failed=2)


def test_unmatched_items_are_reported_not_failed(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-save=base", "-k", "a-host").assert_outcomes(passed=1)
    result = bench("--aibench-compare=base", "-k", "b-host", seed=2)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "aibench: 1 items not in the control run (reported, not judged): "
            "demo.json::demo[[]b-host[]]",
            "aibench: 1 items in the control run only (reported, not judged): "
            "demo.json::demo[[]a-host[]]",
        ]
    )


def test_another_device_model_is_refused_unless_forced(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-save=base", "--aibench-platform-sig=phone-a").assert_outcomes(passed=2)
    refused = bench("--aibench-compare=base", "--aibench-platform-sig=phone-b", seed=2)
    refused.assert_outcomes(failed=2)
    refused.stdout.fnmatch_lines(
        [
            "aibench: not compared with *: the control ran on 'phone-a', "
            "this run on 'phone-b'. *--aibench-compare-force"
        ]
    )
    bench(
        "--aibench-compare=base",
        "--aibench-platform-sig=phone-b",
        "--aibench-compare-force",
        seed=2,
    ).assert_outcomes(passed=2)


def test_missing_control_is_a_usage_error(pytester: Pytester, bench: Bench) -> None:
    result = bench("--aibench-compare=nothing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no run saved as 'nothing' in *.aibench*--aibench-save NAME*"])


def test_fdr_fails_the_run_not_the_items(pytester: Pytester, bench: Bench) -> None:
    bench("--aibench-save=base").assert_outcomes(passed=2)
    result = bench("--aibench-compare=base", "--aibench-fdr", seed=2, factor=1.2)
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*compared with *: 2 regression(s)"])


def test_exports_read_by_pytest_benchmark_and_github_format(
    pytester: Pytester, bench: Bench
) -> None:
    cli = shutil.which("pytest-benchmark", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("pytest-benchmark is not installed")
    bench("--aibench-benchmark-json=pb.json", "--aibench-github-json=gh.json").assert_outcomes(
        passed=2
    )
    shown = subprocess.run(
        [cli, "compare", "pb.json", "--columns=min,median,max,rounds"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "demo[a-host]" in shown.stdout and "demo[b-host]" in shown.stdout
    benchmarks = json.loads((pytester.path / "pb.json").read_text())["benchmarks"]
    assert {b["group"] for b in benchmarks} == {"NET latency"}  # time metrics only
    assert benchmarks[0]["stats"]["rounds"] == 60
    assert 0.0009 < benchmarks[0]["stats"]["median"] < 0.0011  # seconds
    entries = json.loads((pytester.path / "gh.json").read_text())
    names = {entry["name"] for entry in entries}
    assert "demo.json::demo[a-host] NET latency" in names
    latency = next(e for e in entries if e["name"] == "demo.json::demo[a-host] NET latency")
    assert latency["unit"] == "us" and 900 < latency["value"] < 1100


AB_PROGRAM = """#!/usr/bin/env python3
import json, os, random, sys
from pathlib import Path
log = Path(os.environ["AB_LOG"])
calls = len(log.read_text().splitlines()) if log.exists() else 0
with log.open("a") as out:
    out.write(Path(sys.argv[0]).name + "\\n")
if "CPU_LOG" in os.environ:
    with open(os.environ["CPU_LOG"], "a") as out:
        out.write(" ".join(map(str, sorted(os.sched_getaffinity(0)))) + "\\n")
rng = random.Random(calls)
iterations = int(sys.argv[sys.argv.index("--iter") + 1])
for _ in range(iterations):
    value = 1000 * FACTOR * rng.gauss(1, 0.03)
    print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "us",
                                   "value": value}))
"""


@pytest.fixture
def ab(pytester: Pytester) -> AB:
    for name, factor in (("control.py", 1.0), ("same.py", 1.0), ("slower.py", 1.2)):
        write_program(pytester.path / name, AB_PROGRAM.replace("FACTOR", str(factor)))
    spec = {
        "model": {"name": "demo", "format": "generic"},
        "tests": [
            {
                "identifier": "ab",
                "metric": "delay",
                "iter": 60,
                "warmup": 1,
                "env": {"AB_LOG": str(pytester.path / "ab.log")},
                "commands": ["{program} --warmup {warmup} --iter {iter}"],
            }
        ],
    }
    write_json(pytester.path / "ab.json", spec)

    def run(treatment: str, *args: str) -> pytest.RunResult:
        (pytester.path / "ab.log").unlink(missing_ok=True)
        return pytester.runpytest(
            "--aibench-spec=ab.json",
            "--aibench-json=run.json",
            f"--aibench-ab-control={pytester.path / 'control.py'}",
            f"--aibench-program={pytester.path / treatment}",
            *args,
        )

    return run


def test_ab_interleaves_paired_blocks_until_decided_and_passes_when_nothing_changed(
    pytester: Pytester, ab: AB
) -> None:
    result = ab("same.py", "--aibench-ab-blocks=4", "--aibench-ab-min-effect=5%")
    result.assert_outcomes(passed=1)
    calls = (pytester.path / "ab.log").read_text().split()
    item = written_run(pytester.path)["items"][0]
    blocks = item["extra"]["ab"]["blocks"]
    assert blocks >= 10  # the sequential rule's first look, past the 4 blocks asked for
    assert sorted(calls) == ["control.py"] * blocks + ["same.py"] * blocks
    pairs = [set(calls[i : i + 2]) for i in range(0, 2 * blocks, 2)]
    assert all(pair == {"control.py", "same.py"} for pair in pairs)  # both in every block
    verdict = item["verdicts"][0]
    assert item["comparison"] == "ab" and verdict["status"] == "unchanged"
    assert verdict["method"].startswith("paired blocks") and verdict["n_control"] == blocks
    assert len(item["metrics"][0]["values"]) == 15 * blocks  # 60 iterations / 4 blocks each
    assert len(item["extra"]["ab"]["control"][0]["values"]) == 15 * blocks
    result.stdout.fnmatch_lines(["*ab.json::demo[[]ab-host[]]*NET latency*unchanged"])


def test_ab_regression_is_verified_then_fails_with_exit_code_1(pytester: Pytester, ab: AB) -> None:
    result = ab("slower.py", "--aibench-verify=1")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "aibench: A/B regression against */control.py, held in 2 of 2 interleaved runs:",
            "NET latency p50 regressed: * -> * us (+*%, 99.*% CI +*% to +*%), "
            "10 paired blocks; +*% or more caught 9 times in 10",
        ]
    )
    calls = (pytester.path / "ab.log").read_text().split()
    assert calls.count("slower.py") == 20  # decided at the first look (10 blocks), run twice


def test_an_undecided_ab_item_is_inconclusive_and_fails_only_when_asked(
    pytester: Pytester, ab: AB
) -> None:
    budget = ("--aibench-ab-max-time=0.01", "--aibench-ab-min-effect=20%")  # 1.2x: at the edge
    result = ab("slower.py", *budget)
    assert result.ret == pytest.ExitCode.OK
    # Never a silent pass: counted apart in pytest's last line, named with why and what to do.
    outcomes = result.parseoutcomes()
    assert outcomes["inconclusive"] == 1 and not {"passed", "failed"} & set(outcomes)
    result.stdout.fnmatch_lines(
        [
            "aibench: INCONCLUSIVE ab.json::demo[[]ab-host[]]: NET latency undecided after 5 "
            "paired blocks, * s (*); to decide it: more time (--aibench-ab-max-time, *",
            "*=* 1 inconclusive in *",
        ]
    )
    verdict = written_run(pytester.path)["items"][0]["verdicts"][0]
    assert verdict["status"] == "inconclusive" and verdict["n_control"] == 5  # ab-blocks
    verbose = ab("slower.py", *budget, "-v")
    verbose.stdout.fnmatch_lines(["*ab.json::demo[[]ab-host[]] INCONCLUSIVE [[]NET latency*"])
    failed = ab("slower.py", *budget, "--aibench-fail-inconclusive")
    assert failed.ret == pytest.ExitCode.TESTS_FAILED
    failed.stdout.fnmatch_lines(
        ["aibench: A/B against */control.py undecided after 5 paired blocks (* s, *max-time):"]
    )


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_ab_sides_share_the_cpus_their_threads_need(pytester: Pytester, ab: AB) -> None:
    """Both sides of a program's A/B run on as many CPUs as the test's ``threads`` (one by
    default), the same CPUs for both, recorded per side; more threads than CPUs is said."""
    spec = json.loads((pytester.path / "ab.json").read_text())
    test = spec["tests"][0]
    test["env"]["CPU_LOG"] = str(pytester.path / "cpus.log")
    allowed = sorted(os.sched_getaffinity(0))
    for threads, expected in ((None, allowed[-1:]), (len(allowed), allowed), (999, allowed)):
        if threads:
            test["threads"] = threads
        write_json(pytester.path / "ab.json", spec)
        (pytester.path / "cpus.log").unlink(missing_ok=True)
        shown = ("-W", "default::pytest_aibench.errors.AibenchWarning")  # this suite: errors
        result = ab("same.py", "--aibench-ab-min-effect=20%", *shown)
        assert result.ret == pytest.ExitCode.OK
        seen = {line for line in (pytester.path / "cpus.log").read_text().splitlines()}
        assert seen == {" ".join(map(str, expected))}  # every run of both sides
        sides = written_run(pytester.path)["items"][0]["extra"]["ab"]["sides"]
        assert sides["control"] == sides["treatment"]
        assert sides["control"]["cpus"] == expected
        assert sides["control"]["threads"] == (threads or 1)
    result.stdout.fnmatch_lines(
        ["*AibenchWarning: *ab.json tests[[]0[]]: the spec asks for 999 threads; this device has *"]
    )


def test_ab_mode_needs_the_treatment_program(pytester: Pytester, ab: AB) -> None:
    result = pytester.runpytest(
        "--aibench-spec=ab.json", f"--aibench-ab-control={pytester.path / 'control.py'}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--aibench-ab-control needs --aibench-program*"])
