"""iOS devices: found through usbmuxd, driven as FAI-PEP drives them, with pymobiledevice3.

An iPhone runs apps, not commands. A spec command for iOS starts with ``{program}``, an ``.ipa``
holding a benchmark app; the rest of the command, ``--key value`` pairs, is the app's
arguments. For each command the device:

1. installs the ``.ipa`` (once per run and device; the bundle id comes from its Info.plist);
2. copies the case's files into the app's container, under ``tmp/aibench-<random>/``;
3. writes the arguments as a JSON object to ``tmp/benchmark.json`` in the container (FAI-PEP's
   contract) and also passes them on the launch command line;
4. launches the app, and waits until it writes ``tmp/BENCH_DONE`` (optionally holding an exit
   status); what it wrote to ``tmp/BENCH_LOG`` is the command's output.

Paths given to the app are relative to its container (its home directory). The app lifecycle
goes through an :class:`IOSApps` service: pymobiledevice3's by default, or whatever a
``pytest_aibench_ios_apps`` hook returns (a lab on macOS could drive ``xcrun devicectl``).
"""

from __future__ import annotations

import contextlib
import json
import plistlib
import re
import secrets
import shutil
import time
import zipfile
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

from ..errors import DeviceError
from .base import CommandResult, DeviceDefaults, DeviceInfo, remote_hash, split_address, split_hash

ARGUMENTS_FILE = "tmp/benchmark.json"
DONE_FILE = "tmp/BENCH_DONE"
LOG_FILE = "tmp/BENCH_LOG"
MISSING = "iOS devices need pymobiledevice3: pip install 'pytest-aibench[ios]'"

T = TypeVar("T")


class IOSApps(Protocol):
    """Install, feed, launch and read back one benchmark app on one device."""

    def install(self, ipa: Path) -> None: ...

    def push(self, bundle_id: str, local: Path, remote: str) -> None: ...

    def pull(self, bundle_id: str, remote: str, local: Path) -> None:
        """Copy a container file to ``local``; ``OSError`` when it is not there."""

    def exists(self, bundle_id: str, remote: str) -> bool: ...

    def remove(self, bundle_id: str, remote: str) -> None:
        """Remove a container file or folder (with its contents); nothing if it is missing."""

    def launch(self, bundle_id: str, arguments: Sequence[str], env: Mapping[str, str]) -> int:
        """Start the app (ending a running instance first); returns its pid."""

    def kill(self, pid: int) -> None: ...


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here: asyncio loads ssl, which a run without iOS devices never needs

    return asyncio.run(coroutine)


def _mux_error(exc: Exception, usbmux: str | None) -> DeviceError:
    where = usbmux or "the default socket (/var/run/usbmuxd; USBMUXD_SOCKET_ADDRESS overrides)"
    return DeviceError(
        f"usbmuxd does not answer at {where}: {exc}; start it (usbmuxd -f) or "
        "pass --aibench-usbmux HOST:PORT|PATH"
    )


def device_id(udid: str) -> str:
    return "ios-" + re.sub(r"[^\w.-]", "_", udid)


def connected(usbmux: str | None) -> list[str]:
    """UDIDs of the devices usbmuxd sees."""
    try:
        from pymobiledevice3 import usbmux as mux
    except ImportError:
        raise DeviceError(MISSING) from None
    try:
        return [device.serial for device in _run(mux.list_devices(usbmux_address=usbmux))]
    except Exception as exc:  # ConnectionFailedToUsbmuxdError, MuxException, OSError
        raise _mux_error(exc, usbmux) from None


def probe(udid: str, usbmux: str | None, scratch: Path) -> DeviceInfo:
    """Model, CPU architecture and iOS version from lockdownd (values it gives without a
    pairing, so listing a device never pops the trust dialog)."""
    from pymobiledevice3 import lockdown

    async def read_values() -> dict[str, Any]:
        client = await lockdown.create_using_usbmux(
            udid, autopair=False, usbmux_address=usbmux, pairing_records_cache_folder=scratch
        )
        try:
            return dict(client.all_values)
        finally:
            await client.close()

    scratch.mkdir(parents=True, exist_ok=True)
    try:
        values = _run(read_values())
    except Exception as exc:
        raise DeviceError(f"iOS device {udid}: lockdownd does not answer: {exc}") from None
    return DeviceInfo(
        kind="ios",
        id=device_id(udid),
        name=str(values.get("ProductType", "iPhone")),
        hash=udid,
        abi=str(values.get("CPUArchitecture", "arm64")),
        os=f"iOS {values.get('ProductVersion', '?')}",
    )


def discover(wanted: Sequence[str], usbmux: str | None, scratch: Path) -> list[DeviceInfo]:
    """``ios`` (every connected device) or ``ios:UDID`` through ``usbmux``, and the same
    through a lab host's usbmuxd (``ios@HOST:PORT``, ``ios@HOST:PORT/UDID``); a listed device
    that usbmuxd does not see is an error."""
    found = []
    for entry in wanted:
        if entry.startswith("ios@"):
            address, udid = split_address(entry, "ios", "ios@lab3:27015")
            mux: str | None = address
        else:
            address, mux = None, usbmux
            udid = entry.split(":", 1)[1] if ":" in entry else None
        present = connected(mux)
        if udid is None and not present:
            raise DeviceError(
                f"no iOS device is connected (usbmuxd at {mux or 'this host'} lists none)"
            )
        for each in [udid] if udid else present:
            if each not in present:
                raise DeviceError(
                    f"iOS device {each!r} is not connected (connected: "
                    f"{', '.join(present) or 'none'})"
                )
            info = probe(each, mux, scratch / "pairing")
            recorded = remote_hash(address, each)
            found.append(replace(info, id=device_id(recorded), hash=recorded))
    return found


def bundle_id(ipa: Path) -> str:
    """The CFBundleIdentifier of the one app in an .ipa (``Payload/<name>.app/Info.plist``)."""
    try:
        with zipfile.ZipFile(ipa) as archive:
            plists = [
                name
                for name in archive.namelist()
                if re.fullmatch(r"Payload/[^/]+\.app/Info\.plist", name)
            ]
            if len(plists) != 1:
                raise DeviceError(
                    f"{ipa}: expected one Payload/*.app in the .ipa, found {len(plists)}"
                )
            info = plistlib.loads(archive.read(plists[0]))
    except (OSError, zipfile.BadZipFile, plistlib.InvalidFileException) as exc:
        raise DeviceError(f"{ipa}: not a readable .ipa: {exc}") from None
    if not info.get("CFBundleIdentifier"):
        raise DeviceError(f"{ipa}: {plists[0]} has no CFBundleIdentifier")
    return str(info["CFBundleIdentifier"])


def paired_arguments(arguments: Sequence[str]) -> dict[str, str]:
    """``--key value`` and ``--key=value`` as ``{"key": "value"}``; a bare ``--flag`` is
    ``"true"``. What an app reads from benchmark.json."""
    paired: dict[str, str] = {}
    index = 0
    while index < len(arguments):
        word = arguments[index]
        if not word.startswith("--"):
            raise DeviceError(
                f"iOS apps take --key value arguments; {word!r} is not one "
                f"(arguments: {' '.join(arguments)})"
            )
        key, equals, value = word[2:].partition("=")
        if not equals:
            has_value = index + 1 < len(arguments) and not arguments[index + 1].startswith("--")
            value = arguments[index + 1] if has_value else "true"
            index += has_value
        paired[key] = value
        index += 1
    return paired


class IOSDevice(DeviceDefaults):
    """The Device protocol over an app: pushes are kept on the host until a command names the
    app whose container receives them."""

    def __init__(self, info: DeviceInfo, apps: IOSApps, staging: Path, poll: float = 0.2) -> None:
        self.info, self.apps, self.poll = info, apps, poll
        self.staging = staging
        self._staged: dict[str, dict[str, Path]] = {}  # workdir -> filename -> host file
        self._installed: dict[Path, str] = {}  # .ipa -> bundle id
        self._app_of: dict[str, str] = {}  # workdir -> bundle id its files went to

    def new_workdir(self) -> str:
        workdir = f"tmp/aibench-{secrets.token_hex(8)}"
        self._staged[workdir] = {}
        return workdir

    def remove_workdir(self, workdir: str) -> None:
        self._staged.pop(workdir, None)
        app = self._app_of.pop(workdir, None)
        if app is not None and workdir.startswith("tmp/aibench-"):
            with contextlib.suppress(DeviceError, OSError):
                self.apps.remove(app, workdir)

    def push(self, local: Path, workdir: str, filename: str) -> str:
        self._staged.setdefault(workdir, {})[filename] = local
        return f"{workdir}/{filename}"

    def pull(self, remote: str, local: Path) -> None:
        workdir = remote.split("/", 2)
        app = self._app_of.get("/".join(workdir[:2]))
        if app is None:
            raise OSError(f"iOS device {self.info.hash}: {remote} is in no app's container")
        local.parent.mkdir(parents=True, exist_ok=True)
        self.apps.pull(app, remote, local)

    def _app(self, argv: Sequence[str], workdir: str) -> str:
        staged = self._staged.get(workdir, {})
        program = staged.get(argv[0].rsplit("/", 1)[-1]) if argv else None
        if program is None or program.suffix != ".ipa" or argv[0] != f"{workdir}/{program.name}":
            raise DeviceError(
                f"iOS devices run apps: the command must start with {{program}}, "
                f"an .ipa given with --aibench-program (found {' '.join(argv)!r})"
            )
        if program not in self._installed:
            app = bundle_id(program)
            self.apps.install(program)
            self._installed[program] = app
        return self._installed[program]

    def _deliver(self, app: str, workdir: str, program_name: str) -> None:
        """Copy the case's files into the container (again if an earlier command sent them to
        another app)."""
        if self._app_of.get(workdir) == app:
            return
        for filename, local in self._staged.get(workdir, {}).items():
            if filename != program_name:
                self.apps.push(app, local, f"{workdir}/{filename}")
        self._app_of[workdir] = app

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> CommandResult:
        app = self._app(argv, cwd)
        self._deliver(app, cwd, argv[0].rsplit("/", 1)[-1])
        arguments = list(argv[1:])
        self._send_arguments(app, cwd, paired_arguments(arguments))
        started = time.monotonic()
        pid = self.apps.launch(app, arguments, env)
        status = self._wait_done(app, timeout)
        seconds = time.monotonic() - started
        if status is None:
            with contextlib.suppress(DeviceError, OSError):
                self.apps.kill(pid)
        return CommandResult(
            argv=list(argv),
            returncode=124 if status is None else status,
            stdout=self._read(app, LOG_FILE),
            stderr="",
            seconds=seconds,
            timed_out=status is None,
        )

    def _send_arguments(self, app: str, workdir: str, arguments: dict[str, str]) -> None:
        for stale in (DONE_FILE, LOG_FILE):
            self.apps.remove(app, stale)
        local = self._local(workdir, "benchmark.json")
        local.write_text(json.dumps(arguments, indent=2), encoding="utf-8")
        self.apps.push(app, local, ARGUMENTS_FILE)

    def _wait_done(self, app: str, timeout: float) -> int | None:
        """The exit status the app left in BENCH_DONE (0 when it is empty), or None when it
        did not finish within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.apps.exists(app, DONE_FILE):
                text = self._read(app, DONE_FILE).strip()
                return int(text) if re.fullmatch(r"-?\d+", text) else 0
            time.sleep(self.poll)
        return None

    def _read(self, app: str, remote: str) -> str:
        """A small container file's text; empty when the app did not write it."""
        local = self._local("container", remote.rsplit("/", 1)[-1])
        try:
            self.apps.pull(app, remote, local)
        except OSError:
            return ""
        return local.read_text(encoding="utf-8", errors="replace")

    def _local(self, workdir: str, filename: str) -> Path:
        folder = self.staging / workdir.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        return folder / filename

    def close(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


class Pymobiledevice3Apps:
    """:class:`IOSApps` over pymobiledevice3: installation_proxy installs, house_arrest (AFC)
    reaches the app's container, DVT process control launches (iOS 17 and later reach DVT
    through the tunnel of ``pymobiledevice3 remote tunneld``). Needs a paired device in
    Developer Mode with the developer disk image mounted. Not run on an iPhone here: there
    is none on our machines."""

    def __init__(self, info: DeviceInfo, usbmux: str | None) -> None:
        address, self.udid = split_hash(info.hash)  # a lab host's usbmuxd, where it has one
        self.usbmux = address or usbmux
        self.ios17 = int(re.sub(r"\D.*", "", info.os.removeprefix("iOS ")) or 0) >= 17

    async def _lockdown(self) -> Any:
        from pymobiledevice3 import lockdown

        client = await lockdown.create_using_usbmux(
            self.udid, usbmux_address=self.usbmux, autopair=False
        )
        if not client.paired:
            await client.close()
            raise DeviceError(
                f"iOS device {self.udid} is not paired with this host; pair it "
                "(pymobiledevice3 lockdown pair) and trust the host on the phone"
            )
        return client

    def _afc(self, bundle_id: str, action: Any) -> Any:
        from pymobiledevice3.services.house_arrest import HouseArrestService

        async def go() -> Any:
            client = await self._lockdown()
            try:
                afc = await HouseArrestService.create(client, bundle_id)
                return await action(afc)
            finally:
                await client.close()

        return _run(go())

    def install(self, ipa: Path) -> None:
        from pymobiledevice3.services.installation_proxy import InstallationProxyService

        async def go() -> None:
            client = await self._lockdown()
            try:
                await InstallationProxyService(lockdown=client).install_from_local(ipa)
            finally:
                await client.close()

        _run(go())

    def push(self, bundle_id: str, local: Path, remote: str) -> None:
        async def action(afc: Any) -> None:
            await afc.makedirs("/" + remote.rsplit("/", 1)[0])
            await afc.set_file_contents("/" + remote, local.read_bytes())

        self._afc(bundle_id, action)

    def pull(self, bundle_id: str, remote: str, local: Path) -> None:
        async def action(afc: Any) -> bytes:
            if not await afc.exists("/" + remote):
                raise FileNotFoundError(f"{remote} is not in the container of {bundle_id}")
            return bytes(await afc.get_file_contents("/" + remote))

        local.write_bytes(self._afc(bundle_id, action))

    def exists(self, bundle_id: str, remote: str) -> bool:
        async def action(afc: Any) -> bool:
            return bool(await afc.exists("/" + remote))

        return bool(self._afc(bundle_id, action))

    def remove(self, bundle_id: str, remote: str) -> None:
        async def action(afc: Any) -> None:
            if await afc.exists("/" + remote):
                await afc.rm("/" + remote, force=True)

        self._afc(bundle_id, action)

    async def _provider(self) -> Any:
        if not self.ios17:
            return await self._lockdown()
        from pymobiledevice3.tunneld.api import get_tunneld_device_by_udid

        provider = await get_tunneld_device_by_udid(self.udid)
        if provider is None:
            raise DeviceError(
                f"iOS device {self.udid} runs iOS 17 or later: start "
                "`pymobiledevice3 remote tunneld` so that apps can be launched"
            )
        return provider

    def _process_control(self, action: Any) -> Any:
        from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
        from pymobiledevice3.services.dvt.instruments.process_control import ProcessControl

        async def go() -> Any:
            provider = await self._provider()
            try:
                async with DvtProvider(provider) as dvt, ProcessControl(dvt) as control:
                    return await action(control)
            finally:
                await provider.close()

        return _run(go())

    def launch(self, bundle_id: str, arguments: Sequence[str], env: Mapping[str, str]) -> int:
        async def action(control: Any) -> int:
            return int(
                await control.launch(
                    bundle_id, arguments=list(arguments), kill_existing=True, environment=dict(env)
                )
            )

        return int(self._process_control(action))

    def kill(self, pid: int) -> None:
        async def action(control: Any) -> None:
            await control.kill(pid)

        self._process_control(action)
