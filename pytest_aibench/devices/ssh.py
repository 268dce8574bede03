"""Linux boards over ssh (``ssh://user@host:port``), through the OpenSSH client.

One master connection per device is shared by every command and copy (ControlMaster), so a
case pays for one ssh handshake, not one per file. Commands run through the remote shell with
every word quoted, under the remote ``timeout`` so that a hung benchmark dies on the board too.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import DeviceError
from .base import CommandResult, DeviceDefaults, DeviceInfo
from .processes import child_dies_with_parent
from .shell import shell_command

SSH_ERROR = 255  # what ssh exits with when the connection, not the command, failed


@dataclass(frozen=True)
class SshTarget:
    user: str | None
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> SshTarget:
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise DeviceError(f"expected a device such as ssh://user@host:22, found {url!r}")
        return cls(parts.username, parts.hostname, parts.port or 22)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    @property
    def device_id(self) -> str:
        """For node ids: ``ssh-board1-22``, no characters pytest's -k would trip on."""
        return re.sub(r"[^\w.-]", "_", f"ssh-{self.host}-{self.port}")

    def url(self) -> str:
        return f"ssh://{self.destination}:{self.port}"


class SshDevice(DeviceDefaults):
    def __init__(
        self,
        info: DeviceInfo,
        target: SshTarget,
        options: Sequence[str],
        control_dir: Path,
        remote_dir: str,
    ) -> None:
        self.info = info
        self.target = target
        self.remote_dir = remote_dir.rstrip("/")
        control_dir.mkdir(parents=True, exist_ok=True)
        self._options = [
            "-o",
            "BatchMode=yes",
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={control_dir}/%C",
            "-o",
            "ControlPersist=60",
            *options,
        ]
        self._cleanups: list[subprocess.Popen[bytes]] = []

    def _argv(self, command: str) -> list[str]:
        return [
            "ssh",
            *self._options,
            "-p",
            str(self.target.port),
            self.target.destination,
            command,
        ]

    def _ssh(
        self, command: str, timeout: float = 60, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        try:
            # the ssh client dies with pytest (the board's own `timeout` ends the command there)
            done = subprocess.run(
                self._argv(command),
                capture_output=True,
                timeout=timeout,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
                check=False,
                preexec_fn=child_dies_with_parent(),
            )
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.target.url()} did not answer within {timeout:g} s") from None
        if done.returncode == SSH_ERROR:
            raise DeviceError(
                f"{self.target.url()} cannot be reached: "
                f"{_text(done.stderr).strip() or 'ssh failed'}"
            )
        return done

    def _checked(self, command: str, stdin: bytes | None = None) -> bytes:
        done = self._ssh(command, stdin=stdin)
        if done.returncode != 0:
            raise DeviceError(
                f"{self.target.url()}: {command!r} failed: {_text(done.stderr).strip()}"
            )
        return done.stdout

    def new_workdir(self) -> str:
        """A fresh name; the folder is made by the first push or run (one ssh call fewer per
        case: every call costs a round trip to the board)."""
        return f"{self.remote_dir}/tgt-{secrets.token_hex(8)}/"

    def remove_workdir(self, workdir: str) -> None:
        """Remove the case's folder, and nothing else, without waiting for the board."""
        if workdir.startswith(self.remote_dir + "/tgt-"):
            self._cleanups.append(
                subprocess.Popen(
                    self._argv(f"rm -rf {shlex.quote(workdir)}"),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def close(self) -> None:
        """Wait for the removals still under way, then end the shared connection."""
        for cleanup in self._cleanups:
            cleanup.wait()
        self._cleanups.clear()
        subprocess.run(
            [
                "ssh",
                *self._options,
                "-p",
                str(self.target.port),
                "-O",
                "exit",
                self.target.destination,
            ],
            capture_output=True,
            check=False,
        )

    def push(self, local: Path, workdir: str, filename: str) -> str:
        """Copy through the ssh connection itself (``cat``): no scp or sftp server needed."""
        remote = workdir.rstrip("/") + "/" + filename
        folder, quoted = shlex.quote(remote.rsplit("/", 1)[0]), shlex.quote(remote)
        mode = "chmod +x " + quoted if os.access(local, os.X_OK) else "true"
        self._checked(f"mkdir -p {folder} && cat > {quoted} && {mode}", stdin=local.read_bytes())
        return remote

    def pull(self, remote: str, local: Path) -> None:
        done = self._ssh(f"cat {shlex.quote(remote)}")
        if done.returncode != 0:
            raise OSError(
                f"{self.target.url()}: cannot read {remote}: {_text(done.stderr).strip()}"
            )
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(done.stdout)

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> CommandResult:
        command = shell_command(argv, env=env, cwd=cwd, timeout=timeout)
        started = time.monotonic()
        done = self._ssh(command, timeout=timeout + 30)
        # timeout(1) exits 124 after TERM, 137 when KILL was needed
        timed_out = done.returncode in (124, 137) and time.monotonic() - started >= timeout
        return CommandResult(
            argv=list(argv),
            returncode=done.returncode,
            stdout=_text(done.stdout),
            stderr=_text(done.stderr),
            seconds=time.monotonic() - started,
            timed_out=timed_out,
        )


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def probe(
    target: SshTarget, options: Sequence[str], control_dir: Path, remote_dir: str
) -> DeviceInfo:
    """Ask the board what it is: name from its CPU model, ABI and OS from uname."""
    scratch = DeviceInfo(
        kind="ssh", id=target.device_id, name=target.host, hash=target.url(), abi="", os=""
    )
    device = SshDevice(scratch, target, options, control_dir, remote_dir)
    text = _text(
        device._checked(
            "uname -s -r -m; grep -m1 -E '^(model name|Hardware|Processor)' /proc/cpuinfo || true"
        )
    )
    lines = [*text.splitlines(), ""]
    system, _, rest = lines[0].partition(" ")
    release, _, machine = rest.rpartition(" ")
    cpu = lines[1].split(":", 1)[-1].strip() or machine
    return DeviceInfo(
        kind="ssh",
        id=target.device_id,
        name=f"{system}-{cpu}",
        hash=target.url(),
        abi=machine,
        os=f"{system} {release}",
    )
