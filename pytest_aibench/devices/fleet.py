"""The devices items run on: listed once (in the xdist controller), opened where items run."""

from __future__ import annotations

from pathlib import Path

from ..errors import DeviceError
from .base import Device, DeviceInfo
from .host import HostDevice, host_info


def discover(platform_sig: str | None) -> list[DeviceInfo]:
    """The fleet of this run. Only the host for now; phones and boards join it later."""
    return [host_info(platform_sig)]


def open_device(info: DeviceInfo, scratch: Path) -> Device:
    if info.kind == "host":
        return HostDevice(info, scratch / "host")
    raise DeviceError(f"device kind {info.kind!r} ({info.id}) is not supported by this version")
