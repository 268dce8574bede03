"""What every device kind offers the runners: push files, run commands, pull results.

Runners speak only to this protocol, so a runner never knows whether it drives the host, a phone
over adb or a board over ssh.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import DeviceError
from ..records import DeviceDict


@dataclass(frozen=True)
class DeviceInfo:
    """A device as results and node ids name it. Plain data, so xdist can ship it to workers."""

    kind: str
    id: str
    name: str
    hash: str
    abi: str
    os: str

    def to_dict(self) -> DeviceDict:
        return DeviceDict(
            kind=self.kind, id=self.id, name=self.name, hash=self.hash, abi=self.abi, os=self.os
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceInfo:
        return cls(**{key: str(data[key]) for key in cls.__dataclass_fields__})


def remote_hash(address: str | None, serial: str) -> str:
    """What a device is recorded as: its serial (or UDID), after the address of the server it
    was found through when that is a lab host's (``lab2:5037/R58M``), so that one serial on
    two hosts is two devices. Serials and UDIDs hold no ``/``."""
    return f"{address}/{serial}" if address else serial


def split_hash(device_hash: str) -> tuple[str | None, str]:
    """The server address (``None``: this host's) and the serial of a recorded hash."""
    address, slash, serial = device_hash.rpartition("/")
    return (address, serial) if slash else (None, device_hash)


def split_address(entry: str, kind: str, example: str) -> tuple[str, str | None]:
    """``KIND@HOST:PORT[/SERIAL]``: the address and the serial (``None``: every device)."""
    address, _, serial = entry.removeprefix(f"{kind}@").partition("/")
    host, colon, port = address.rpartition(":")
    if not (colon and host and port.isdigit()):
        raise DeviceError(
            f"device {entry!r}: expected {kind}@HOST:PORT or {kind}@HOST:PORT/SERIAL "
            f"(a lab host's server, e.g. {example})"
        )
    return address, serial or None


@dataclass(frozen=True)
class CommandResult:
    argv: Sequence[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    # the program's peak resident memory as the kernel counted it, where the device can tell
    peak_memory_kib: int | None = None

    @property
    def output_lines(self) -> list[str]:
        return self.stdout.splitlines() + self.stderr.splitlines()

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.output_lines[-lines:])


class Device(Protocol):
    info: DeviceInfo
    # The machine pytest runs on: in-process frameworks run on it, A/B pins its CPUs, its RAPL
    # counters are read here. Runners ask this capability, never the device's kind.
    local: bool

    def new_workdir(self) -> str:
        """A fresh, empty folder on the device for one case: the case's ``{TGTDIR}``."""

    def remove_workdir(self, workdir: str) -> None:
        """Remove a folder made by :meth:`new_workdir`, and nothing else."""

    def push(self, local: Path, workdir: str, filename: str) -> str:
        """Copy ``local`` to ``workdir/filename`` on the device; returns the device path."""

    def pull(self, remote: str, local: Path) -> None:
        """Copy a device file to ``local`` on the host."""

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> CommandResult:
        """Run ``argv`` (no shell) with ``env`` added to the device's environment, and wait;
        a timeout kills the command and all it started."""

    # Optional capabilities: every kind has them (DeviceDefaults gives those that do nothing),
    # so callers call them instead of probing for them.

    def state(self) -> dict[str, float]:
        """Battery level and temperature as the item starts (``{}`` where unknown)."""

    def reboot(self) -> None:
        """Reboot and wait until the device can run again (a no-op where not possible)."""

    def set_frequency(self, wanted: str) -> dict[str, int]:
        """Pin the CPUs at ``max``, ``min``, ``mid`` or kHz; the frequencies set, by CPU."""

    def close(self) -> None:
        """Release what the handle holds (connections, installed apps) at the end of the run."""


class DeviceDefaults:
    """The optional capabilities of :class:`Device` for a kind that does not have them."""

    local = False

    def state(self) -> dict[str, float]:
        return {}

    def reboot(self) -> None:
        return None

    def set_frequency(self, wanted: str) -> dict[str, int]:
        return {}

    def close(self) -> None:
        return None
