"""Linux boards over ssh (``ssh://user@host:port``), through the OpenSSH client.

One master connection per device (ControlMaster) carries one remote shell that stays open for
every command, copy and clean-up of the worker (:class:`RemoteShell`): a command costs one round
trip, where a new ssh session costs about 0.1 s even over a master connection (OpenSSH sets up
a session channel and forks the user's shell each time). Commands run with every word quoted,
under the remote ``timeout`` so that a hung benchmark dies on the board too.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import re
import secrets
import select
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
from .rusage import PROBE, chosen, split_report
from .shell import shell_command

INLINE_PUSH_BYTES = 4 << 20  # larger files are pushed in an ssh session of their own


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


class RemoteShell:
    """A shell on the board, fed one script at a time on its stdin. Each script's output goes
    to files on the board; then one line (a fresh random marker, the exit status and the two
    sizes) and the bytes themselves come back, so output of any content is framed exactly.
    Files travel as base64 in a here-document (the board needs ``base64``: coreutils or
    busybox). A shell that breaks or overruns its deadline is killed; the next call starts
    another."""

    def __init__(self, argv: Sequence[str], scratch: str, url: str) -> None:
        self._argv, self._scratch, self._url = list(argv), scratch, url
        self._process: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is not None and self.alive:
            return self._process
        self.close()  # the pipes of one that ended
        self._buffer = b""
        # the ssh client dies with pytest (the board's own `timeout` ends the command there)
        self._process = subprocess.Popen(
            [*self._argv, "exec sh"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            preexec_fn=child_dies_with_parent(),
        )
        return self._process

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def call(self, script: str, timeout: float = 60) -> tuple[int, bytes, bytes]:
        """Run ``script`` (stdin from /dev/null); its exit status, stdout and stderr."""
        process = self._started()
        marker = "AIBENCH_" + secrets.token_hex(8)  # new each call: no stale line passes
        out = f"{self._scratch}/.{marker}"
        scratch = shlex.quote(self._scratch)
        wrapped = (
            f"mkdir -p {scratch}; (\n{script}\n) </dev/null >{out}.o 2>{out}.e; "
            f"printf '%s %s %s %s\\n' {marker} $? $(wc -c <{out}.o) $(wc -c <{out}.e); "
            f"cat {out}.o {out}.e; rm -f {out}.o {out}.e\n"
        )
        deadline = time.monotonic() + timeout
        try:
            assert process.stdin is not None
            process.stdin.write(wrapped.encode())
            process.stdin.flush()
            header = self._read_line(process, deadline).split()
            if len(header) != 4 or header[0] != marker.encode():
                raise DeviceError(f"{self._url}: the remote shell answered {header!r}")
            status, out_size, err_size = (int(field) for field in header[1:])
            body = self._read(process, out_size + err_size, deadline)
        except (OSError, ValueError) as exc:  # a broken pipe, a garbled header
            self.close()
            raise DeviceError(f"{self._url} cannot be reached: {exc}") from None
        except DeviceError:
            self.close()
            raise
        return status, body[:out_size], body[out_size:]

    def _read_line(self, process: subprocess.Popen[bytes], deadline: float) -> bytes:
        while b"\n" not in self._buffer:
            self._fill(process, deadline)
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def _read(self, process: subprocess.Popen[bytes], size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._fill(process, deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _fill(self, process: subprocess.Popen[bytes], deadline: float) -> None:
        assert process.stdout is not None
        left = deadline - time.monotonic()
        ready, _, _ = select.select([process.stdout], [], [], max(left, 0))
        if not ready:
            self.close()
            raise DeviceError(f"{self._url} did not answer within the command's deadline")
        chunk = os.read(process.stdout.fileno(), 1 << 20)
        if not chunk:
            self.close()
            raise DeviceError(f"{self._url} cannot be reached: the remote shell ended")
        self._buffer += chunk

    def close(self) -> None:
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
            self._process = None


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
        self._shell = RemoteShell(self._argv(None), self.remote_dir, target.url())

    def _argv(self, command: str | None) -> list[str]:
        destination = ["-p", str(self.target.port), self.target.destination]
        return ["ssh", *self._options, *destination, *([command] if command else [])]

    def _connect(self) -> None:
        """The master connection, opened by a plain ssh call before a remote shell starts:
        its errors (refused, bad key) come back as ssh prints them."""
        try:
            done = subprocess.run(
                self._argv("true"),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
                preexec_fn=child_dies_with_parent(),
            )
        except subprocess.TimeoutExpired:
            raise DeviceError(f"{self.target.url()} did not answer within 60 s") from None
        if done.returncode != 0:
            raise DeviceError(
                f"{self.target.url()} cannot be reached: "
                f"{_text(done.stderr).strip() or 'ssh failed'}"
            )

    def _call(self, script: str, timeout: float = 60) -> tuple[int, bytes, bytes]:
        if not self._shell.alive:
            self._connect()
        return self._shell.call(script, timeout)

    def _checked(self, script: str) -> bytes:
        status, out, err = self._call(script)
        if status != 0:
            raise DeviceError(f"{self.target.url()}: {script[:200]!r} failed: {_text(err).strip()}")
        return out

    def new_workdir(self) -> str:
        """A fresh name; the folder is made by the first push or run (one ssh call fewer per
        case: every call costs a round trip to the board)."""
        return f"{self.remote_dir}/tgt-{secrets.token_hex(8)}/"

    def remove_workdir(self, workdir: str) -> None:
        """Remove the case's folder, and nothing else; a board that is gone keeps it (the item
        already fails for that reason, which this must not hide)."""
        if workdir.startswith(self.remote_dir + "/tgt-"):
            with contextlib.suppress(DeviceError):
                self._call(f"rm -rf {shlex.quote(workdir)}")

    def close(self) -> None:
        """End the remote shell, then the shared connection."""
        self._shell.close()
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
        """Copy through the ssh connection itself: no scp or sftp server needed. Small files
        go through the remote shell; a large one (a model) in an ssh session of its own, as
        raw bytes, whose fixed cost is nothing beside its transfer."""
        remote = workdir.rstrip("/") + "/" + filename
        folder, quoted = shlex.quote(remote.rsplit("/", 1)[0]), shlex.quote(remote)
        mode = "chmod +x " + quoted if os.access(local, os.X_OK) else "true"
        if local.stat().st_size > INLINE_PUSH_BYTES:
            self._push_stream(local, f"mkdir -p {folder} && cat > {quoted} && {mode}")
            return remote
        end = "AIBENCH_EOF"  # "_" is not base64: no line of the payload is this one
        payload = base64.encodebytes(local.read_bytes()).decode()
        self._checked(
            f"mkdir -p {folder} && base64 -d > {quoted} <<'{end}' && {mode}\n{payload}{end}"
        )
        return remote

    def _push_stream(self, local: Path, command: str) -> None:
        with local.open("rb") as source:
            done = subprocess.run(
                self._argv(command),
                stdin=source,
                capture_output=True,
                check=False,
                preexec_fn=child_dies_with_parent(),
            )
        if done.returncode != 0:
            raise DeviceError(
                f"{self.target.url()}: copying {local} failed: {_text(done.stderr).strip()}"
            )

    def pull(self, remote: str, local: Path) -> None:
        status, out, err = self._call(f"cat {shlex.quote(remote)}")
        if status != 0:
            raise OSError(f"{self.target.url()}: cannot read {remote}: {_text(err).strip()}")
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(out)

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> CommandResult:
        command = shell_command(argv, env=env, cwd=cwd, timeout=timeout, under=self._time_program)
        started = time.monotonic()
        status, out, err = self._call(command, timeout=timeout + 30)
        # timeout(1) exits 124 after TERM, 137 when KILL was needed
        timed_out = status in (124, 137) and time.monotonic() - started >= timeout
        report = split_report(_text(err))
        return CommandResult(
            argv=list(argv),
            returncode=status,
            stdout=_text(out),
            stderr=report.stderr,
            seconds=time.monotonic() - started,
            timed_out=timed_out,
            peak_memory_kib=report.peak_kib,
        )

    @functools.cached_property
    def _time_program(self) -> list[str] | None:
        """The board's ``time -v``, asked once (devices/rusage.py)."""
        return chosen(_text(self._call(PROBE)[1]))


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
    try:
        text = _text(
            device._checked(
                "uname -s -r -m; grep -m1 -E '^(model name|Hardware|Processor)' /proc/cpuinfo"
                " || true"
            )
        )
    finally:
        device._shell.close()
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
