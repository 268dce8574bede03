"""The machine pytest runs on, as a device."""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import DeviceError
from .base import CommandResult, DeviceDefaults, DeviceInfo
from .processes import run_process
from .rusage import measured, probe_host, split_report


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    match = re.search(r"^(?:model name|Hardware|Processor)\s*:\s*(.+)$", text, re.MULTILINE)
    name = match.group(1) if match else (platform.processor() or platform.machine())
    return re.sub(r"\s+", " ", name).strip()


def host_info(platform_sig: str | None = None) -> DeviceInfo:
    return DeviceInfo(
        kind="host",
        id="host",
        name=platform_sig or f"{platform.system()}-{cpu_model()}",
        hash=socket.gethostname(),
        abi=platform.machine(),
        os=f"{platform.system()} {platform.release()}",
    )


class HostDevice(DeviceDefaults):
    """Runs commands as local processes, each in its own process group."""

    local = True

    def __init__(self, info: DeviceInfo, base_dir: Path) -> None:
        self.info = info
        self._base_dir = base_dir

    def new_workdir(self) -> str:
        self._base_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.mkdtemp(prefix="tgt-", dir=self._base_dir) + os.sep

    def remove_workdir(self, workdir: str) -> None:
        shutil.rmtree(workdir, ignore_errors=True)

    def push(self, local: Path, workdir: str, filename: str) -> str:
        target = Path(workdir, filename)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():  # pushed again for the next repeat index
            target.unlink()
        # A link costs nothing for a multi-GB model and keeps the executable bit of programs.
        target.symlink_to(local.resolve())
        return str(target)

    def pull(self, remote: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(remote, local)

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> CommandResult:
        started = time.monotonic()
        environment = {**program_environment(), **env}
        try:
            done = run_process(
                self._measured(argv, environment, cwd), env=environment, cwd=cwd, timeout=timeout
            )
        except OSError as exc:
            raise DeviceError(f"cannot start {argv[0]!r} on the host: {exc.strerror}") from None
        except ValueError as exc:  # a NUL byte, which no command line or variable can hold
            raise DeviceError(
                f"cannot start {argv[0]!r} on the host: {exc} in its arguments "
                "or environment (from the spec's command or env)"
            ) from None
        report = split_report(done.stderr)
        return CommandResult(
            argv=list(argv),
            returncode=report.returncode(done.returncode),
            stdout=done.stdout,
            stderr=report.stderr,
            seconds=time.monotonic() - started,
            timed_out=done.timed_out,
            peak_memory_kib=report.peak_kib,
        )

    def _measured(self, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> list[str]:
        """``argv`` under this machine's ``time -v`` (devices/rusage.py); a program that is
        not there runs bare, so that starting it fails as it would without the wrapper."""
        program = argv[0] if argv else ""
        if "/" in program:
            found = os.access(os.path.join(cwd, program), os.X_OK)
        else:
            found = shutil.which(program, path=env.get("PATH")) is not None
        return measured(probe_host(), argv) if found else list(argv)


# Our own secrets: a benchmark program is someone else's code and never needs them.
SECRET_VARIABLES = frozenset({"AIBENCH_REMOTE_ACCESS_TOKEN"})


def program_environment() -> dict[str, str]:
    """The environment a benchmark program starts with: ours, less our secrets."""
    return {name: value for name, value in os.environ.items() if name not in SECRET_VARIABLES}
