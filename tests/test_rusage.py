"""A program's peak resident memory, from the device's ``time -v`` (devices/rusage.py): the
report found and taken out of stderr, its figure the program's own and not pytest's."""

import json
import signal
import sys
from pathlib import Path

import pytest
from pytest import MonkeyPatch, Pytester

from pytest_aibench.devices import host as host_module
from pytest_aibench.devices.host import HostDevice, host_info
from pytest_aibench.devices.rusage import NOT_MEASURED, chosen, probe_host, split_report

from .helpers import generic_spec, write_json, write_program

needs_time = pytest.mark.skipif(probe_host() is None, reason="no time program with -v here")

# toybox's report, as its time.c prints it with -v (each figure on a line of its own)
TOYBOX_REPORT = (
    "Real time (s): 0.120000\n"
    "System time (s): 0.010000\n"
    "User time (s): 0.100000\n"
    "Max RSS (KiB): 20480\n"
    "Major faults: 0\n"
    "Minor faults: 1200\n"
    "File system inputs: 0\n"
    "File system outputs: 8\n"
    "Voluntary context switches: 3\n"
    "Involuntary context switches: 1\n"
)


def test_toyboxs_report_is_read_and_the_programs_stderr_kept() -> None:
    report = split_report("warming up\n" + TOYBOX_REPORT + "logcat line\n")
    assert report.peak_kib == 20480
    assert report.stderr == "warming up\nlogcat line\n"
    assert report.returncode(5) == 5


def test_stderr_without_a_report_is_left_as_it_is() -> None:
    report = split_report("Real trouble: no report here\n")
    assert report.peak_kib is None and report.stderr == "Real trouble: no report here\n"


def test_the_probe_names_one_of_the_candidates_only() -> None:
    assert chosen("/usr/bin/time\n") == ["/usr/bin/time", "-v"]
    assert chosen("toybox time\n") == ["toybox", "time", "-v"]
    assert chosen("") is None and chosen("rm -rf /\n") is None


@needs_time
def test_gnu_times_real_report_is_taken_out_of_stderr(host: HostDevice) -> None:
    script = "import sys; sys.stderr.write('own line\\n'); sys.exit(3)"
    result = host.run([sys.executable, "-c", script], env={}, cwd=host.new_workdir(), timeout=30)
    assert result.returncode == 3 and result.stderr == "own line\n"
    assert result.peak_memory_kib is not None and result.peak_memory_kib > 1000


@needs_time
def test_a_signal_that_killed_the_program_is_its_return_code(host: HostDevice) -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    result = host.run([sys.executable, "-c", script], env={}, cwd=host.new_workdir(), timeout=30)
    assert result.returncode == -signal.SIGSEGV and result.stderr == ""


@needs_time
def test_the_peak_is_the_programs_own_not_pytests(host: HostDevice) -> None:
    """With 256 MiB held here, a program that allocates 64 MiB reports at least that and far
    less than what pytest holds: a child's own ``wait4`` figure would include pytest's."""
    held = bytearray(b"\x01") * (256 << 20)  # written, so resident
    script = "block = bytearray(b'\\x01') * (64 << 20)"
    result = host.run([sys.executable, "-c", script], env={}, cwd=host.new_workdir(), timeout=30)
    assert held[-1] == 1
    assert result.peak_memory_kib is not None
    assert 64 << 10 <= result.peak_memory_kib < 200 << 10


@pytest.fixture
def host(tmp_path: Path) -> HostDevice:
    return HostDevice(host_info(), tmp_path / "scratch")


MEMORY_PROGRAM = """#!/usr/bin/env python3
import json
block = bytearray(b"\\x01") * (48 << 20)
print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms", "value": 1}))
"""


@needs_time
def test_a_program_items_peak_memory_is_recorded(pytester: Pytester) -> None:
    write_program(pytester.path / "prog.py", MEMORY_PROGRAM)
    write_json(pytester.path / "demo.json", generic_spec("demo", repeat=2))
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    [item] = json.loads((pytester.path / "run.json").read_text())["items"]
    metrics = {f"{m['type']} {m['metric']}": m for m in item["metrics"]}
    peak = metrics["NET peak_memory"]
    assert peak["unit"] == "MiB" and len(peak["values"]) == 2  # one per run of the program
    assert all(48 <= value < 150 for value in peak["values"])
    result.stdout.fnmatch_lines(["*NET peak_memory*MiB"])


def test_a_device_without_time_says_memory_was_not_measured(
    pytester: Pytester, monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.setattr(host_module, "probe_host", lambda: None)
    write_program(pytester.path / "prog.py", MEMORY_PROGRAM)
    write_json(pytester.path / "demo.json", generic_spec("demo"))
    result = pytester.runpytest("--aibench-spec=demo.json", "--aibench-json=run.json")
    result.assert_outcomes(passed=1)
    [item] = json.loads((pytester.path / "run.json").read_text())["items"]
    assert [m["metric"] for m in item["metrics"]] == ["latency"]
    assert item["extra"]["memory"] == NOT_MEASURED
