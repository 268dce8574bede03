"""Linux boards over ssh, against real OpenSSH servers on loopback; the fleet's leases."""

import itertools
import json
import os
import shlex
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from pytest import Pytester, TempPathFactory

from pytest_aibench.devices import ssh
from pytest_aibench.devices.base import DeviceInfo
from pytest_aibench.devices.lease import lease
from pytest_aibench.devices.ssh import SshDevice, SshTarget, probe
from pytest_aibench.errors import DeviceError

from . import sshd
from .helpers import board_held_elsewhere, generic_spec, write_json, write_program

pytestmark = pytest.mark.skipif(not sshd.available(), reason="OpenSSH server not installed")

# Starts n sshd on loopback: a context giving their device URLs and the ssh options.
Boards = Callable[[int], AbstractContextManager[tuple[list[str], str]]]


@pytest.fixture
def boards(tmp_path_factory: TempPathFactory) -> Boards:
    def start(count: int) -> AbstractContextManager[tuple[list[str], str]]:
        return sshd.servers(tmp_path_factory.mktemp("sshd"), count)

    return start


SPAN_PROGRAM = """#!/usr/bin/env python3
import json, os, sys, time
start = time.time()
time.sleep(float(os.environ.get("HOLD", "0.3")))
with open(os.environ["SPANS"], "a") as out:
    out.write(json.dumps([os.environ["DEVICE"], start, time.time()]) + "\\n")
print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "us",
                               "value": (time.time() - start) * 1e6}))
open(sys.argv[1], "w").write(os.uname().machine)
"""


def span_spec(pytester: Pytester, tests: int) -> None:
    write_program(pytester.path / "prog.py", SPAN_PROGRAM)
    write_json(
        pytester.path / "spans.json",
        generic_spec(
            "spans",
            tests=[
                {
                    "identifier": f"t{i}",
                    "metric": "delay",
                    "iter": 1,
                    "env": {"SPANS": str(pytester.path / "spans.txt"), "DEVICE": "{DEVICEHASH}"},
                    "output_files": {
                        "arch": {"filename": "arch.txt", "location": "{TGTDIR}/arch.txt"}
                    },
                    "commands": ["{files.program} {output_files.arch}"],
                }
                for i in range(tests)
            ],
        ),
    )


def test_a_spec_runs_end_to_end_over_ssh(pytester: Pytester, boards: Boards) -> None:
    span_spec(pytester, 2)
    with boards(1) as (urls, options):
        result = pytester.runpytest(
            "--aibench-spec=spans.json",
            f"--aibench-devices={urls[0]}",
            f"--aibench-ssh-options={options}",
            "--aibench-json=run.json",
        )
    result.assert_outcomes(passed=2)
    run = json.loads((pytester.path / "run.json").read_text())
    device = run["items"][0]["device"]
    assert device["kind"] == "ssh" and device["hash"] == urls[0]
    assert device["abi"] == os.uname().machine and device["os"].startswith(os.uname().sysname)
    assert run["items"][0]["metrics"][0]["values"][0] > 0.25e6
    [peak] = [m for m in run["items"][0]["metrics"] if m["metric"] == "peak_memory"]
    assert peak["unit"] == "MiB" and peak["values"][0] > 1  # the board's GNU time -v
    port = urls[0].rsplit(":", 1)[1]
    result.stdout.fnmatch_lines([f"spans.json::spans[[]t0-ssh-127.0.0.1-{port}[]]*NET latency*"])


def test_only_what_was_pushed_is_removed(
    pytester: Pytester, boards: Boards, tmp_path: Path
) -> None:
    span_spec(pytester, 1)
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "keep.txt").write_text("someone else's")
    with boards(1) as (urls, options):
        pytester.runpytest(
            "--aibench-spec=spans.json",
            f"--aibench-devices={urls[0]}",
            f"--aibench-ssh-options={options}",
            f"--aibench-remote-dir={remote}",
        ).assert_outcomes(passed=1)
    assert [p.name for p in remote.iterdir()] == ["keep.txt"]


def test_a_missing_device_is_a_clear_error(pytester: Pytester, boards: Boards) -> None:
    span_spec(pytester, 1)
    with boards(1) as (urls, options):
        gone = urls[0].rsplit(":", 1)[0] + ":1"
        result = pytester.runpytest(
            "--aibench-spec=spans.json",
            f"--aibench-devices={gone}",
            f"--aibench-ssh-options={options}",
        )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"*--aibench-devices: device {gone} is listed but not usable: *cannot be reached*"]
    )


def test_list_devices_prints_the_fleet(pytester: Pytester, boards: Boards) -> None:
    with boards(1) as (urls, options):
        result = pytester.runpytest(
            "--aibench-list-devices",
            f"--aibench-devices=host,{urls[0]}",
            f"--aibench-ssh-options={options}",
            "--aibench-lease-dir=leases",  # not the machine's: other tests hold the host
        )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "kind*id*name*hash*abi*os*state",
            "host*host*free",
            f"ssh*ssh-127.0.0.1-*{urls[0]}*{os.uname().machine}*free",
        ]
    )


def test_no_device_runs_two_items_at_once_and_devices_run_in_parallel(
    pytester: Pytester, boards: Boards
) -> None:
    pytest.importorskip("xdist")
    span_spec(pytester, 4)
    with boards(4) as (urls, options):
        result = pytester.runpytest_subprocess(
            "-n",
            "4",
            "--aibench-spec=spans.json",
            f"--aibench-devices={','.join(urls)}",
            f"--aibench-ssh-options={options}",
            "-p",
            "no:cacheprovider",
        )
    result.assert_outcomes(passed=16)
    spans = [json.loads(line) for line in (pytester.path / "spans.txt").read_text().splitlines()]
    by_device: dict[str, list[tuple[float, float]]] = {}
    for device, start, end in spans:
        by_device.setdefault(device, []).append((start, end))
    assert sorted(by_device) == sorted(urls) and all(len(v) == 4 for v in by_device.values())
    for intervals in by_device.values():
        intervals.sort()
        assert all(
            end <= next_start for (_, end), (next_start, _) in itertools.pairwise(intervals)
        ), intervals
    starts = sorted(start for _, start, _ in spans)
    ends = sorted(end for _, _, end in spans)
    assert any(starts[i + 1] < ends[i] for i in range(len(starts) - 1))  # something overlapped


def test_a_lease_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    import fcntl

    info = DeviceInfo("ssh", "board", "b", "ssh://b", "x", "y")
    with (
        board_held_elsewhere(tmp_path) as holder,
        (tmp_path / "board.lock").open("a") as handle,
    ):
        with pytest.raises(BlockingIOError):
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        holder.kill()
        holder.wait()
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again: no wait, no error
    with lease(info, tmp_path):  # and the lease itself takes it without waiting
        assert (tmp_path / "board.lock").exists()


def test_pool_mode_runs_each_case_once_on_a_free_device(pytester: Pytester, boards: Boards) -> None:
    pytest.importorskip("xdist")
    span_spec(pytester, 6)
    with boards(2) as (urls, options):
        result = pytester.runpytest_subprocess(
            "-n",
            "2",
            "--aibench-fleet=pool",
            "--aibench-spec=spans.json",
            f"--aibench-devices={','.join(urls)}",
            f"--aibench-ssh-options={options}",
            "--aibench-json=run.json",
            "-p",
            "no:cacheprovider",
            "-v",
        )
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*PASSED*spans.json::spans[[]t0-ssh[]]*"])
    run = json.loads((pytester.path / "run.json").read_text())
    used = [item["device"]["hash"] for item in run["items"]]
    assert len(used) == 6 and set(used) <= set(urls)
    spans = [json.loads(line) for line in (pytester.path / "spans.txt").read_text().splitlines()]
    for url in urls:
        intervals = sorted((start, end) for device, start, end in spans if device == url)
        assert all(
            end <= next_start for (_, end), (next_start, _) in itertools.pairwise(intervals)
        ), intervals


@pytest.fixture
def board(boards: Boards) -> Iterator[SshDevice]:
    """One board, opened as a worker opens it (its control socket in a short path: a UNIX
    socket's path has at most 107 bytes)."""
    with boards(1) as (urls, options), tempfile.TemporaryDirectory() as control:
        arguments, target = shlex.split(options), SshTarget.parse(urls[0])
        info = probe(target, arguments, Path(control), "/tmp/aibench")
        device = SshDevice(info, target, arguments, Path(control), "/tmp/aibench")
        try:
            yield device
        finally:
            device.close()


def test_the_remote_shell_carries_any_bytes_both_ways(board: SshDevice, tmp_path: Path) -> None:
    """Every byte value, lines that look like the framing (markers, the here-document's
    end), no final newline: pushed and pulled back unchanged, over the one remote shell."""
    payload = bytes(range(256)) * 64 + b"\nAIBENCH_EOF\nAIBENCH_0123456789abcdef 0 1 2\n\x00tail"
    source = tmp_path / "blob.bin"
    source.write_bytes(payload)
    workdir = board.new_workdir()
    remote = board.push(source, workdir, "sub/blob.bin")
    board.pull(remote, tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == payload
    result = board.run(
        ["sh", "-c", "printf 'x\\0y'; printf 'e\\n' >&2; exit 3"], env={}, cwd=workdir, timeout=30
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, "x\0y", "e\n")
    board.remove_workdir(workdir)
    gone = board.run(["test", "-e", workdir], env={}, cwd="/tmp", timeout=30)
    assert gone.returncode == 1


def test_a_large_file_goes_in_a_session_of_its_own(
    board: SshDevice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ssh, "INLINE_PUSH_BYTES", 1000)
    program = tmp_path / "big.sh"
    program.write_text("#!/bin/sh\necho big\n" + "#" * 5000 + "\n")
    program.chmod(0o755)
    workdir = board.new_workdir()
    remote = board.push(program, workdir, "big.sh")
    ran = board.run([remote], env={}, cwd=workdir, timeout=30)
    assert (ran.returncode, ran.stdout) == (0, "big\n")  # whole, and executable


def test_a_broken_or_overrunning_remote_shell_is_replaced(board: SshDevice) -> None:
    assert board.run(["true"], env={}, cwd="/tmp", timeout=30).returncode == 0
    first = board._shell._process
    assert first is not None
    first.kill()  # the link breaks between two commands
    first.wait()
    assert board.run(["echo", "again"], env={}, cwd="/tmp", timeout=30).stdout == "again\n"
    with pytest.raises(DeviceError, match="did not answer within"):
        board._call("sleep 5", timeout=0.5)  # the shell is stuck: killed, not waited for
    assert board.run(["echo", "still"], env={}, cwd="/tmp", timeout=30).stdout == "still\n"
