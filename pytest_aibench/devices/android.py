"""Android devices through an adb server (adbutils).

Files go to a fresh folder under ``--aibench-android-dir`` (default ``/data/local/tmp/aibench``)
for each case, and only that folder is removed afterwards, never the whole directory (FAI-PEP
wiped it). Commands run through ``adb shell`` (protocol v2, so exit codes and stderr are the
program's own) under the device's ``timeout``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import secrets
import shlex
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DeviceError
from .base import CommandResult, DeviceDefaults, DeviceInfo, remote_hash, split_address, split_hash
from .rusage import PROBE, chosen, split_report
from .shell import shell_command

DEFAULT_DIR = "/data/local/tmp/aibench"
CPUFREQ_ROOT = "/sys/devices/system/cpu"


def _pick(available: Sequence[int], wanted: str) -> int:
    """``max``, ``min``, ``mid`` or the available frequency nearest a kHz value."""
    if wanted == "max":
        return available[-1]
    if wanted == "min":
        return available[0]
    if wanted == "mid":
        return available[len(available) // 2]
    try:
        khz = int(wanted)
    except ValueError:
        raise DeviceError(
            f"--aibench-set-freq: expected max, min, mid or kHz, found {wanted!r}"
        ) from None
    return min(available, key=lambda freq: abs(freq - khz))


@dataclass(frozen=True)
class AdbServer:
    """An adb server: this host's (``android``, ``android:SERIAL``) or a lab host's
    (``android@HOST:PORT``, ``android@HOST:PORT/SERIAL``), as the lab's adb clients reach
    their phones (``adb -H HOST -P PORT``)."""

    address: str | None = None  # HOST:PORT of a lab host's server; None: this host's
    port: int | None = None  # this host's: --aibench-adb-port, $ANDROID_ADB_SERVER_PORT or 5037

    def client(self) -> Any:
        try:
            import adbutils
        except ImportError:
            raise DeviceError(
                f"reaching {self.shown} needs adbutils: pip install 'pytest-aibench[android]'"
            ) from None
        if self.address:
            host, _, number = self.address.rpartition(":")
            return adbutils.AdbClient(host=host.strip("[]"), port=int(number))
        port = self.port or int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
        return adbutils.AdbClient(host="127.0.0.1", port=port)

    @property
    def shown(self) -> str:
        return f"the adb server at {self.address}" if self.address else "this host's adb server"


def parse_entry(entry: str, port: int | None) -> tuple[AdbServer, str | None]:
    """A --aibench-devices entry: the server, and the serial it names (``None``: every one)."""
    if entry.startswith("android@"):
        address, serial = split_address(entry, "android", "android@lab2:5037")
        return AdbServer(address), serial
    return AdbServer(port=port), entry.split(":", 1)[1] if ":" in entry else None


def server_of(device_hash: str, port: int | None) -> tuple[AdbServer, str]:
    """The server and serial of a recorded device hash (see :func:`base.remote_hash`)."""
    address, serial = split_hash(device_hash)
    return AdbServer(address, port), serial


def client(port: int | None) -> Any:
    return AdbServer(port=port).client()


def device_id(serial: str) -> str:
    return "android-" + re.sub(r"[^\w.-]", "_", serial)


PROPERTIES = (
    "ro.product.model",
    "ro.build.version.release",
    "ro.build.version.sdk",
    "ro.product.cpu.abi",
)


def probe(handle: Any, server: AdbServer | None = None) -> DeviceInfo:
    """Name, ABI and OS from the device's properties."""
    # one round trip: the values one per line, in this order
    answer = str(handle.shell("; ".join(f"getprop {key}" for key in PROPERTIES)))
    values = [*answer.splitlines(), *[""] * len(PROPERTIES)]
    props = {key: value.strip() for key, value in zip(PROPERTIES, values, strict=False)}
    recorded = remote_hash((server or AdbServer()).address, handle.serial)
    return DeviceInfo(
        kind="android",
        id=device_id(recorded),
        name=props["ro.product.model"],
        hash=recorded,
        abi=props["ro.product.cpu.abi"],
        os=f"Android {props['ro.build.version.release']} (SDK {props['ro.build.version.sdk']})",
    )


def discover(wanted: Sequence[str], port: int | None) -> list[DeviceInfo]:
    """``android`` (every device of this host's server), ``android:SERIAL``, and the same of a
    lab host's server (``android@HOST:PORT``, ``android@HOST:PORT/SERIAL``); a listed serial
    that is not connected in state ``device`` is an error."""
    found = []
    for entry in wanted:
        server, serial = parse_entry(entry, port)
        connected = _connected(server)
        for each in [serial] if serial else list(connected):
            if each not in connected:
                raise DeviceError(
                    f"android device {each!r} is not connected to {server.shown} (connected: "
                    f"{', '.join(sorted(connected)) or 'none'})"
                )
            found.append(probe(connected[each], server))
    return found


def _connected(server: AdbServer) -> dict[str, Any]:
    client = server.client()
    try:
        return {d.serial: d for d in client.device_list()}
    except Exception as exc:  # adbutils raises its own errors, or OSError when no server
        raise DeviceError(f"{server.shown} does not answer: {exc}") from None


def states(wanted: Sequence[str], port: int | None) -> dict[str, str]:
    """Every device the entries' servers know, by recorded hash, with its adb state (device,
    offline, unauthorized, ...): what ``aibench devices`` shows beside the usable ones."""
    found = {}
    for entry in wanted:
        server, serial = parse_entry(entry, port)
        try:
            listed = server.client().list()
        except Exception as exc:
            found[entry] = f"unreachable ({exc})"
            continue
        for device in listed:
            if serial in (None, device.serial):
                found[remote_hash(server.address, device.serial)] = str(device.state)
    return found


class AndroidDevice(DeviceDefaults):
    def __init__(self, info: DeviceInfo, port: int | None, remote_dir: str) -> None:
        self.info = info
        self.remote_dir = remote_dir.rstrip("/")
        self._server, self._serial = server_of(info.hash, port)
        self._handle = self._server.client().device(self._serial)
        self._cleaner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aibench-adb-rm")

    def _shell(self, command: str, timeout: float = 60) -> Any:
        try:
            return self._handle.shell2(command, timeout=timeout, v2=True)
        except Exception as exc:  # AdbError, AdbTimeout, OSError: the device is gone
            raise DeviceError(f"android device {self.info.hash} stopped answering: {exc}") from None

    def shell(self, command: str) -> str:
        """What a shell command printed (power sources read sysfs and dumpsys this way)."""
        return str(self._shell(command).stdout)

    def new_workdir(self) -> str:
        return f"{self.remote_dir}/tgt-{secrets.token_hex(8)}/"

    def remove_workdir(self, workdir: str) -> None:
        """Remove the case's folder, nothing else, without waiting for the device (off the
        next item's path; :meth:`close` waits). A device that is gone keeps it: the item
        already fails for that reason, which this must not hide."""
        if workdir.startswith(self.remote_dir + "/tgt-"):
            self._cleaner.submit(self._remove, workdir)

    def _remove(self, workdir: str) -> None:
        with contextlib.suppress(DeviceError):
            self._shell(f"rm -rf {shlex.quote(workdir)}")

    def close(self) -> None:
        """Wait for the removals under way."""
        self._cleaner.shutdown(wait=True)

    def push(self, local: Path, workdir: str, filename: str) -> str:
        remote = workdir.rstrip("/") + "/" + filename
        # no mkdir first: adbd makes the folders of a file it receives (one round trip fewer)
        mode = 0o755 if os.access(local, os.X_OK) else 0o644
        sync = self._handle.sync
        # adbutils' push first asks whether the target is a folder (a round trip of its own);
        # ours is always a file's path, so its file push is called directly where it has one
        send = getattr(sync, "_push_file", sync.push)
        try:
            send(str(local), remote, mode=mode)
        except Exception as exc:
            raise DeviceError(
                f"android device {self.info.hash}: pushing {local} failed: {exc}"
            ) from None
        return remote

    def pull(self, remote: str, local: Path) -> None:
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._handle.sync.pull(remote, str(local))
        except Exception as exc:
            raise OSError(f"android device {self.info.hash}: cannot pull {remote}: {exc}") from None

    def state(self) -> dict[str, float]:
        """Battery level (%) and temperature (degrees C) from ``dumpsys battery``."""
        text = str(self._shell("dumpsys battery").stdout)
        found = dict(re.findall(r"^\s*(level|temperature):\s*(-?\d+)", text, re.MULTILINE))
        state: dict[str, float] = {}
        if "level" in found:
            state["battery_level"] = float(found["level"])
        if "temperature" in found:
            state["temperature_c"] = float(found["temperature"]) / 10
        return state

    def reboot(self, timeout: float = 300) -> None:
        """Reboot and wait until the device is back in state ``device`` with
        ``sys.boot_completed`` set (a device reached over TCP is connected again)."""
        with contextlib.suppress(Exception):  # the connection drops as the device goes down
            self._handle.shell("reboot", timeout=10)
        adb, serial = self._server.client(), self._serial
        deadline = time.monotonic() + timeout
        time.sleep(1)
        while time.monotonic() < deadline:
            if ":" in serial:
                with contextlib.suppress(Exception):
                    adb.connect(serial, timeout=5)
            ready = {d.serial for d in adb.device_list()}
            if serial in ready:
                with contextlib.suppress(Exception):
                    booted = str(adb.device(serial).shell(["getprop", "sys.boot_completed"]))
                    if booted.strip() == "1":
                        self._handle = adb.device(serial)
                        return
            time.sleep(0.5)
        raise DeviceError(
            f"android device {serial} did not come back within {timeout:g} s of a reboot"
        )

    def _cpus(self) -> list[str]:
        listed = str(self._shell(f"ls {CPUFREQ_ROOT}").stdout).split()
        return sorted(
            (name for name in listed if re.fullmatch(r"cpu\d+", name)),
            key=lambda name: int(name[3:]),
        )

    def set_frequency(self, wanted: str) -> dict[str, int]:
        """Pin every CPU at ``max``, ``min``, ``mid`` (of its available frequencies) or a kHz
        value (the nearest available), checked through ``scaling_cur_freq``. Needs root."""
        pinned = {}
        for cpu in self._cpus():
            folder = f"{CPUFREQ_ROOT}/{cpu}/cpufreq"
            available = sorted(
                int(f)
                for f in str(
                    self._shell(f"cat {folder}/scaling_available_frequencies").stdout
                ).split()
            )
            if not available:
                continue
            target = _pick(available, wanted)
            # Raise the ceiling first when going up, the floor first when going down.
            writes = ["scaling_max_freq", "scaling_min_freq"]
            current = int(str(self._shell(f"cat {folder}/scaling_cur_freq").stdout).strip() or 0)
            for name in writes if target >= current else reversed(writes):
                done = self._shell(f"echo {target} > {folder}/{name}")
                if done.returncode != 0:
                    raise DeviceError(
                        f"android device {self.info.hash}: cannot set {cpu} to "
                        f"{target} kHz ({done.stderr.strip()}); setting "
                        "frequencies needs a rooted device (adb root)"
                    )
            now = int(str(self._shell(f"cat {folder}/scaling_cur_freq").stdout).strip() or 0)
            if now != target:
                raise DeviceError(
                    f"android device {self.info.hash}: {cpu} runs at {now} kHz "
                    f"after asking for {target} kHz"
                )
            pinned[cpu] = target
        return pinned

    def run(
        self, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> CommandResult:
        """Run the command; what it logged to logcat meanwhile joins its stderr, so observer
        rows a native program logs there (glog on Android) are read like printed ones."""
        command = shell_command(argv, env=env, cwd=cwd, timeout=timeout, under=self._time_program)
        # one round trip: clear the log, run, then the log to stderr, the exit status kept
        script = f"logcat -c; {command}; status=$?; logcat -d >&2; exit $status"
        started = time.monotonic()
        result = self._shell(script, timeout=timeout + 30)
        seconds = time.monotonic() - started
        report = split_report(result.stderr)
        return CommandResult(
            argv=list(argv),
            returncode=result.returncode,
            stdout=result.stdout,
            stderr=report.stderr,
            seconds=seconds,
            timed_out=result.returncode in (124, 137) and seconds >= timeout,
            peak_memory_kib=report.peak_kib,
        )

    @functools.cached_property
    def _time_program(self) -> list[str] | None:
        """The phone's ``time -v`` (toybox's), asked once (devices/rusage.py)."""
        return chosen(str(self._shell(PROBE).stdout))
