"""The devices items run on: chosen and listed once (in the xdist controller), opened where
items run, and leased so that no device ever runs two items at once."""

from __future__ import annotations

import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import DeviceError
from ..options import Settings
from . import android, ios
from .base import Device, DeviceInfo
from .host import HostDevice, host_info
from .ssh import SshDevice, SshTarget, probe


def split_devices(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def discover(settings: Settings, scratch: Path) -> list[DeviceInfo]:
    """The fleet of this run: each device ``--aibench-devices`` lists, probed (all at once: a
    lab's boards each take a round trip or a handshake); a listed device that cannot be
    reached is an error, never silently left out."""
    entries = split_devices(settings.devices) or ["host"]
    with ThreadPoolExecutor(max_workers=min(8, len(entries))) as pool:
        found = list(pool.map(lambda entry: _discover(entry, settings, scratch), entries))
    devices = [device for entry_devices in found for device in entry_devices]
    excluded = set(split_devices(settings.excluded_devices))
    return [d for d in devices if not {d.id, d.hash, d.kind} & excluded]


def _discover(entry: str, settings: Settings, scratch: Path) -> list[DeviceInfo]:
    if entry == "android" or entry.startswith(("android:", "android@")):
        return android.discover([entry], settings.adb_port)
    if entry == "ios" or entry.startswith(("ios:", "ios@")):
        return ios.discover([entry], settings.usbmux, scratch / "ios")
    if entry == "host":
        return [host_info(settings.platform_sig)]
    if entry.startswith("ssh://"):
        target = SshTarget.parse(entry)
        try:
            return [
                probe(
                    target,
                    ssh_arguments(settings.ssh_options),
                    scratch / "ssh",
                    settings.remote_dir,
                )
            ]
        except DeviceError as exc:
            raise DeviceError(f"device {entry} is listed but not usable: {exc}") from None
    raise DeviceError(
        f"unknown device {entry!r}: use host, android, android:SERIAL, "
        "android@HOST:PORT[/SERIAL], ios, ios:UDID, ios@HOST:PORT[/UDID] or "
        "ssh://user@host:port"
    )


def open_device(
    info: DeviceInfo, settings: Settings, scratch: Path, ios_apps: ios.IOSApps | None = None
) -> Device:
    """A handle on a listed device; ``ios_apps`` replaces pymobiledevice3 for iOS apps."""
    if info.kind == "android":
        return android.AndroidDevice(info, settings.adb_port, settings.android_dir)
    if info.kind == "host":
        return HostDevice(info, scratch / "host")
    if info.kind == "ssh":
        return SshDevice(
            info,
            SshTarget.parse(info.hash),
            ssh_arguments(settings.ssh_options),
            scratch / "ssh",
            settings.remote_dir,
        )
    if info.kind == "ios":
        apps = ios_apps or ios.Pymobiledevice3Apps(info, settings.usbmux)
        return ios.IOSDevice(info, apps, scratch / "ios" / info.id)
    raise DeviceError(f"device kind {info.kind!r} ({info.id}) is not supported by this version")


def ssh_arguments(text: str | None) -> list[str]:
    return shlex.split(text or "")


LISTING_COLUMNS = ("kind", "id", "name", "hash", "abi", "os", "state")


def listing(settings: Settings, devices: list[DeviceInfo], storage: Path) -> list[tuple[str, ...]]:
    """The fleet as ``--aibench-list-devices`` and ``aibench devices`` show it: each device
    with who holds its lease (the lab's, where the history store is a server), and the phones
    the adb servers know but cannot use (offline, unauthorized) with their adb state."""
    from ..reporting.publish import history_location
    from .lease import DEFAULT_LEASES, leases_for

    leases = leases_for(settings.lease_dir or DEFAULT_LEASES, history_location(settings, storage))
    try:
        rows: list[tuple[str, ...]] = [
            (d.kind, d.id, d.name, d.hash, d.abi, d.os, leases.holder(d) or "free") for d in devices
        ]
    finally:
        leases.close()
    listed = {d.hash for d in devices}
    adb_entries = [
        entry
        for entry in split_devices(settings.devices)
        if entry == "android" or entry.startswith(("android:", "android@"))
    ]
    for device_hash, state in android.states(adb_entries, settings.adb_port).items():
        if device_hash not in listed and state != "device":
            rows.append(
                ("android", android.device_id(device_hash), "-", device_hash, "-", "-", state)
            )
    return rows
