"""The devices items run on: chosen and listed once (in the xdist controller), opened where
items run, and leased so that no device ever runs two items at once."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shlex
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import DeviceError
from ..options import Settings
from ..store.location import history_location
from . import android, ios
from .base import Device, DeviceInfo
from .host import HostDevice, host_info
from .lease import DEFAULT_LEASES, Notify, lease_any, leases_for
from .ssh import SshDevice, SshTarget, probe

TEMPERATURE_WAIT_S, TEMPERATURE_POLL_S = 600.0, 5.0


class Fleet:
    """The run's devices: listed once (an xdist worker gets the controller's list), each
    leased per item, opened once (rebooted and its frequency pinned where asked), let cool
    before an item and rest after it, closed as the run ends."""

    def __init__(
        self,
        settings: Settings,
        scratch: Path,
        storage: Path,
        *,
        listed: Sequence[dict[str, str]] | None = None,
        notify: Notify | None = None,
        ios_apps: Callable[[DeviceInfo], ios.IOSApps | None] | None = None,
    ) -> None:
        self.settings = settings
        self.scratch = scratch
        self.storage = storage
        self._listed = listed  # the controller's list, in an xdist worker
        self._notify = notify  # a line for the user while an item waits
        self._ios_apps = ios_apps  # the pytest_aibench_ios_apps hook
        self._open: dict[str, Device] = {}

    @cached_property
    def devices(self) -> list[DeviceInfo]:
        """The devices --aibench-devices names, probed; a :class:`DeviceError` for one that is
        not there."""
        if self._listed is not None:
            return [DeviceInfo.from_dict(entry) for entry in self._listed]
        return listed_devices(self.settings, self.scratch)

    def lease(
        self, candidates: tuple[DeviceInfo, ...]
    ) -> contextlib.AbstractContextManager[DeviceInfo]:
        """A lease on the first free device of ``candidates``, said while it is waited for."""
        settings = self.settings
        return lease_any(
            candidates,
            settings.lease_dir or DEFAULT_LEASES,
            timeout=settings.lease_timeout,
            notify=self._notify,
            store=history_location(settings.history, self.storage),
        )

    def open(self, info: DeviceInfo) -> Device:
        if info.id not in self._open:
            apps = self._ios_apps(info) if self._ios_apps and info.kind == "ios" else None
            device = open_device(info, self.settings, self.scratch, apps)
            if self.settings.reboot:
                device.reboot()
            if self.settings.set_freq:
                device.set_frequency(self.settings.set_freq)
            self._open[info.id] = device
        return self._open[info.id]

    @cached_property
    def host(self) -> Device:
        """The machine pytest runs on, where preprocess and postprocess steps run (probed once:
        its CPU model comes from /proc/cpuinfo)."""
        return self.open(host_info(self.settings.platform_sig))

    def settled_state(self, device: Device) -> dict[str, float]:
        """The device's battery and temperature as an item starts, after waiting (at most ten
        minutes) for it to cool below --aibench-max-temperature."""
        limit = self.settings.max_temperature
        state = device.state()
        deadline = time.monotonic() + TEMPERATURE_WAIT_S
        while (
            limit is not None
            and state.get("temperature_c", 0) > limit
            and time.monotonic() < deadline
        ):
            time.sleep(TEMPERATURE_POLL_S)
            state = device.state()
        return state

    def rest(self, device: Device) -> None:
        """--aibench-cooldown after an item, on a device of its own (the host runs pytest)."""
        if self.settings.cooldown and not device.local:
            time.sleep(self.settings.cooldown)

    def close(self) -> None:
        for device in self._open.values():
            device.close()


def listed_devices(settings: Settings, scratch: Path) -> list[DeviceInfo]:
    """--aibench-devices probed and named as --aibench-hash-platform-mapping says."""
    try:
        devices = discover(settings, scratch)
    except DeviceError as exc:
        raise DeviceError(f"--aibench-devices: {exc}") from None
    return _renamed(devices, settings.hash_platform_mapping)


def _renamed(devices: list[DeviceInfo], mapping_file: Path | None) -> list[DeviceInfo]:
    """--aibench-hash-platform-mapping: the platform names a lab gives its devices."""
    if mapping_file is None:
        return devices
    try:
        names: Any = json.loads(mapping_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DeviceError(f"--aibench-hash-platform-mapping {mapping_file}: {exc}") from None
    if not isinstance(names, dict):
        raise DeviceError(
            f"--aibench-hash-platform-mapping {mapping_file}: expected a "
            "JSON object of device hash to platform name"
        )
    return [dataclasses.replace(d, name=str(names.get(d.hash, d.name))) for d in devices]


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
    leases = leases_for(
        settings.lease_dir or DEFAULT_LEASES, history_location(settings.history, storage)
    )
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


def list_fleet(settings: Settings, storage: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    """``--aibench-list-devices``: the listing's rows (LISTING_COLUMNS), and a line for each
    listed entry that cannot be reached (one host down hides no other)."""
    devices: list[DeviceInfo] = []
    unreachable = []
    with tempfile.TemporaryDirectory(prefix="pytest-aibench-") as scratch:
        for entry in split_devices(settings.devices) or ["host"]:
            one = dataclasses.replace(settings, devices=entry)
            try:
                devices += listed_devices(one, Path(scratch))
            except DeviceError as exc:
                unreachable.append(str(exc))
    return listing(settings, devices, storage), unreachable
