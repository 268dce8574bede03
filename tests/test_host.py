"""The host device: argv commands, env, working directory, timeouts that kill the group."""

import os
import sys
import time
from pathlib import Path

import pytest

from pytest_aibench.devices.host import HostDevice, host_info
from pytest_aibench.errors import DeviceError


@pytest.fixture
def host(tmp_path: Path) -> HostDevice:
    return HostDevice(host_info(), tmp_path / "scratch")


def test_info_names_the_platform_and_host(host: HostDevice) -> None:
    info = host_info("my-rig")
    assert info.kind == "host" and info.name == "my-rig"
    assert host.info.hash == os.uname().nodename
    assert host.info.name.startswith(os.uname().sysname)


def test_run_passes_env_and_cwd_and_reports_exit_code(host: HostDevice, tmp_path: Path) -> None:
    workdir = host.new_workdir()
    script = (
        "import os,sys; print(os.environ['X'], os.getcwd()); "
        "print('e', file=sys.stderr); sys.exit(3)"
    )
    result = host.run(
        [sys.executable, "-c", script], env={**os.environ, "X": "42"}, cwd=workdir, timeout=30
    )
    assert result.returncode == 3
    assert result.stdout.split() == ["42", workdir.rstrip("/")]
    assert result.stderr.strip() == "e"
    assert not result.timed_out


def test_timeout_kills_the_whole_process_group(host: HostDevice, tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    script = (
        "import subprocess,sys,time;"
        f"p=subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']);"
        f"open({str(marker)!r},'w').write(str(p.pid)); time.sleep(60)"
    )
    result = host.run(
        [sys.executable, "-c", script], env=dict(os.environ), cwd=str(tmp_path), timeout=1.0
    )
    assert result.timed_out  # the program sleeps 60 s: it was stopped, not waited for
    child = int(marker.read_text())
    for _ in range(50):
        if not alive(child):
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"grandchild {child} survived the timeout")


def alive(pid: int) -> bool:
    """Running or sleeping; a killed process waiting to be reaped (zombie) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def test_missing_program_is_a_device_error(host: HostDevice, tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="cannot start '/no/such/program'"):
        host.run(["/no/such/program"], env={}, cwd=str(tmp_path), timeout=5)


def test_push_and_pull_round_trip_and_workdirs_are_fresh(host: HostDevice, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"abc")
    first, second = host.new_workdir(), host.new_workdir()
    assert first != second and os.listdir(first) == []
    placed = host.push(source, first, "model.bin")
    assert Path(placed).read_bytes() == b"abc"
    host.pull(placed, tmp_path / "back" / "m.bin")
    assert (tmp_path / "back" / "m.bin").read_bytes() == b"abc"
    host.remove_workdir(first)
    assert not os.path.exists(first) and source.exists()


ESCAPE = """
import os, sys
if os.fork() == 0:
    os.setsid()  # a session of its own: out of the program's process group
    if os.fork() == 0:  # and an environment without the command's tag, its pipes let go
        null = os.open(os.devnull, os.O_RDWR)
        for descriptor in (0, 1, 2):
            os.dup2(null, descriptor)
        os.execve("/bin/sleep", ["sleep", "600"], {})
    open(sys.argv[1], "w").write(str(os.getpid() + 1))
    os._exit(0)
os.wait()
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")
def test_a_descendant_that_leaves_the_session_and_clears_its_environment_is_killed(
    host: HostDevice, tmp_path: Path
) -> None:
    marker = tmp_path / "escaped.pid"
    result = host.run(
        [sys.executable, "-c", ESCAPE, str(marker)], env=dict(os.environ), cwd=str(tmp_path),
        timeout=30,
    )  # fmt: skip
    assert result.returncode == 0 and not result.timed_out
    escaped = int(marker.read_text())
    assert not alive(escaped), f"pid {escaped} outlived its command"
