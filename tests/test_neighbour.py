"""A good neighbour: installed beside a project that never uses it, the plugin changes nothing
(xdist's scheduling, signal handlers, marks); in a spec run a crashed xdist worker still ends the
run."""

from __future__ import annotations

import pytest
from pytest import Pytester

from .helpers import generic_spec, write_json, write_program

pytest.importorskip("xdist")

CRASH_FIRST = """
import os

def test_crash():
    os._exit(1)

def test_after():
    pass
"""


def test_a_worker_crash_ends_a_plain_xdist_run(pytester: Pytester) -> None:
    pytester.makepyfile(test_crash=CRASH_FIRST)
    result = pytester.runpytest_subprocess("-n", "1", "-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(failed=1, passed=1)
    assert (
        "LoadScheduling"
        in pytester.runpytest_subprocess(
            "-n", "1", "-v", "-p", "no:cacheprovider", timeout=120
        ).stdout.str()
    )  # xdist's own scheduler, not the plugin's


def test_a_worker_crash_ends_a_spec_run_on_the_device_scheduler(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py")
    write_json(pytester.path / "s.json", generic_spec())
    pytester.makepyfile(test_crash=CRASH_FIRST)
    result = pytester.runpytest_subprocess(
        "-n", "1", "-v", "-p", "no:cacheprovider", "--aibench-spec=s.json", "test_crash.py",
        timeout=120,
    )  # fmt: skip
    result.assert_outcomes(failed=1, passed=2)
    assert "scheduling tests via DeviceScheduling" in result.stdout.str()


def test_a_stray_mark_fails_under_strict_markers_as_without_the_plugin(pytester: Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.host\ndef test_marked():\n    pass\n")
    for plugin in ([], ["-p", "no:aibench"]):
        result = pytester.runpytest_subprocess("--strict-markers", *plugin)
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*'host' not found in `markers` configuration option*"])


def test_a_run_without_specs_keeps_its_signal_handlers_and_probes_no_device(
    pytester: Pytester,
) -> None:
    pytester.makeconftest(
        "import signal\n"
        "from pytest_aibench.stash import SESSION\n"
        "def pytest_sessionfinish(session):\n"
        "    print('default handler', signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)\n"
        "    print('probed', 'fleet' in vars(session.config.stash[SESSION]))\n"
    )
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*default handler True", "probed False"])


def test_the_sigterm_handler_arrives_with_the_first_benchmark(pytester: Pytester) -> None:
    pytester.makepyfile(
        "import signal\n"
        "def test_timed(aibench):\n"
        "    aibench(sum, range(10))\n"
        "    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL\n"
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
