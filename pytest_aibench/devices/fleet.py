"""The devices items run on: chosen and listed once (in the xdist controller), opened where
items run, and leased so that no device ever runs two items at once."""

from __future__ import annotations

import contextlib
import shlex
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..errors import DeviceError
from . import android
from .base import Device, DeviceInfo
from .host import HostDevice, host_info
from .ssh import SshDevice, SshTarget, probe

LEASES = Path(tempfile.gettempdir()) / "pytest-aibench-leases"


def split_devices(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def discover(wanted: Sequence[str], excluded: Sequence[str], platform_sig: str | None,
             ssh_options: Sequence[str], scratch: Path, remote_dir: str,
             adb_port: int | None = None) -> list[DeviceInfo]:
    """The fleet of this run: each listed device, probed; a listed device that cannot be
    reached is an error, never silently left out."""
    devices = []
    for entry in wanted or ["host"]:
        if entry == "android" or entry.startswith("android:"):
            devices += android.discover([entry], adb_port)
        elif entry == "host":
            devices.append(host_info(platform_sig))
        elif entry.startswith("ssh://"):
            target = SshTarget.parse(entry)
            try:
                devices.append(probe(target, ssh_options, scratch / "ssh", remote_dir))
            except DeviceError as exc:
                raise DeviceError(f"device {entry} is listed but not usable: {exc}") from None
        else:
            raise DeviceError(f"unknown device {entry!r}: use host, android, android:SERIAL "
                              "or ssh://user@host:port")
    return [d for d in devices if not {d.id, d.hash, d.kind} & set(excluded)]


def open_device(info: DeviceInfo, scratch: Path, ssh_options: Sequence[str],
                remote_dir: str, adb_port: int | None = None,
                android_dir: str = android.DEFAULT_DIR) -> Device:
    if info.kind == "android":
        return android.AndroidDevice(info, adb_port, android_dir)
    if info.kind == "host":
        return HostDevice(info, scratch / "host")
    if info.kind == "ssh":
        return SshDevice(info, SshTarget.parse(info.hash), ssh_options, scratch / "ssh",
                         remote_dir)
    raise DeviceError(f"device kind {info.kind!r} ({info.id}) is not supported by this version")


def ssh_arguments(text: str | None) -> list[str]:
    return shlex.split(text or "")


@contextlib.contextmanager
def lease(info: DeviceInfo, folder: Path = LEASES) -> Iterator[None]:
    """Hold the device for one item. An exclusive file lock: every process on this machine
    (xdist workers, other pytest runs) waits for it, and the kernel releases it when the
    holder exits, even by a crash."""
    with lease_any([info], folder):
        yield


@contextlib.contextmanager
def lease_any(candidates: Sequence[DeviceInfo], folder: Path = LEASES,
              poll: float = 0.05) -> Iterator[DeviceInfo]:
    """Hold the first of ``candidates`` that is free (``--aibench-fleet pool``); wait while
    all are busy."""
    import fcntl

    folder.mkdir(parents=True, exist_ok=True)
    handles = [(info, (folder / f"{info.id}.lock").open("a")) for info in candidates]
    try:
        while True:
            for info, handle in handles:
                mode = fcntl.LOCK_EX | (fcntl.LOCK_NB if len(handles) > 1 else 0)
                try:
                    fcntl.flock(handle, mode)
                except BlockingIOError:
                    continue
                try:
                    yield info
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
                return
            time.sleep(poll)
    finally:
        for _, handle in handles:
            handle.close()
