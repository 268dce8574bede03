"""Android devices through a real adb server (adbutils' binary) talking to a device daemon on
loopback that speaks the adb transport protocol (tests/adbd.py)."""

import json
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest import MonkeyPatch, Pytester, TempPathFactory

from . import adbd
from .helpers import generic_spec, write_json, write_program

adbutils = pytest.importorskip("adbutils")

PROGRAM = """#!/usr/bin/env python3
import json, os, sys, time
if os.environ.get("VANISH") and os.environ.get("SERIAL") == os.environ.get("DOOMED"):
    open(os.environ["VANISH"], "w").write("now")
    time.sleep(30)
print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "us", "value": 42}))
print("to stderr", file=sys.stderr)
open(sys.argv[1], "w").write(os.getcwd())
sys.exit(int(os.environ.get("CODE", "0")))
"""


@pytest.fixture(scope="module")
def adb_port(tmp_path_factory: TempPathFactory) -> Iterator[int]:
    """One real adb server for the module, on a private port with its own HOME."""
    with adbd.adb_server(tmp_path_factory.mktemp("adbhome")) as port:
        yield port


@dataclass
class Phones:
    """Plugs new phones (FakeAdbd daemons) into the adb server on ``port``."""

    folder: Path
    port: int
    daemons: list[adbd.FakeAdbd] = field(default_factory=list)

    def __call__(self, name: str = "phone") -> tuple[adbd.FakeAdbd, str]:
        daemon = adbd.FakeAdbd(self.folder / name)
        self.daemons.append(daemon)
        return daemon, adbd.connect(self.port, daemon)

    def unplug_all(self) -> None:
        client = adbutils.AdbClient(host="127.0.0.1", port=self.port)
        for daemon in self.daemons:
            client.disconnect(f"127.0.0.1:{daemon.port}")
            daemon.stop()


@pytest.fixture
def phones(tmp_path: Path, adb_port: int) -> Iterator[Phones]:
    plug = Phones(tmp_path, adb_port)
    yield plug
    plug.unplug_all()


def phone_spec(pytester: Pytester, **env: str) -> None:
    write_program(pytester.path / "prog.py", PROGRAM)
    write_json(
        pytester.path / "phone.json",
        generic_spec(
            "phone",
            tests=[
                {
                    "identifier": f"t{i}",
                    "metric": "delay",
                    "iter": 1,
                    "env": env,
                    "platform_args": {"taskset": "1"} if i == 1 else {},
                    "output_files": {
                        "cwd": {"filename": "cwd.txt", "location": "{TGTDIR}/cwd.txt"}
                    },
                    "commands": ["{files.program} {output_files.cwd}"],
                }
                for i in range(2)
            ],
        ),
    )


def test_a_spec_runs_end_to_end_on_an_android_device(pytester: Pytester, phones: Phones) -> None:
    daemon, serial = phones()
    phone_spec(pytester)
    (daemon.root / "data/local/tmp/aibench").mkdir(parents=True)
    (daemon.root / "data/local/tmp/aibench/keep.txt").write_text("not ours")
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android",
        f"--aibench-adb-port={phones.port}",
        "--aibench-json=run.json",
    )
    result.assert_outcomes(passed=2)
    items = json.loads((pytester.path / "run.json").read_text())["items"]
    device = items[0]["device"]
    assert device == {
        "kind": "android",
        "id": adbd_id(serial),
        "name": "FeasPhone",
        "hash": serial,
        "abi": "arm64-v8a",
        "os": "Android 14 (SDK 34)",
    }
    assert items[0]["metrics"][0]["values"] == [42.0]
    # the phone's toybox ``time -v`` (tests/adbd.py runs its report format) gave the peak
    [peak] = [m for m in items[0]["metrics"] if m["metric"] == "peak_memory"]
    assert peak["unit"] == "MiB" and len(peak["values"]) == 1 and peak["values"][0] > 1
    leftovers = sorted(p.name for p in (daemon.root / "data/local/tmp/aibench").iterdir())
    assert leftovers == ["keep.txt"]  # the case folders are gone, nothing else was touched
    result.stdout.fnmatch_lines([f"phone.json::phone[[]t0-{adbd_id(serial)}[]]*NET latency*"])


def adbd_id(serial: str) -> str:
    return "android-" + serial.replace(":", "_")


def test_exit_codes_and_stderr_come_from_the_program(pytester: Pytester, phones: Phones) -> None:
    phones()
    phone_spec(pytester, CODE="5")
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android",
        f"--aibench-adb-port={phones.port}",
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*exited with code 5; its output ended with:", "*to stderr*"])
    result.stdout.no_fnmatch_line("*Max RSS*")  # time's report is not the program's output


def test_a_missing_android_device_is_a_clear_error(pytester: Pytester, phones: Phones) -> None:
    _, serial = phones()
    phone_spec(pytester)
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android:nope",
        f"--aibench-adb-port={phones.port}",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    where = "this host's adb server"
    result.stderr.fnmatch_lines(
        [f"*android device 'nope' is not connected to {where} (connected: {serial})*"]
    )


def test_a_device_that_disappears_fails_its_item_and_the_others_go_on(
    pytester: Pytester, phones: Phones
) -> None:
    doomed, doomed_serial = phones("doomed")
    _, healthy_serial = phones("healthy")
    signal = pytester.path / "vanish.txt"
    write_program(pytester.path / "prog.py", PROGRAM)
    write_json(
        pytester.path / "phone.json",
        generic_spec(
            "phone",
            tests=[
                {
                    "identifier": "t",
                    "metric": "delay",
                    "iter": 1,
                    "env": {
                        "VANISH": str(signal),
                        "DOOMED": doomed_serial,
                        "SERIAL": "{DEVICEHASH}",
                    },
                    "commands": ["{files.program} /dev/null"],
                }
            ],
        ),
    )

    def pull_the_plug() -> None:  # as soon as the doomed phone's program has started
        deadline = time.monotonic() + 60
        while not signal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed.stop()

    watcher = threading.Thread(target=pull_the_plug, daemon=True)
    watcher.start()
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "-rA",
        f"--aibench-adb-port={phones.port}",
        f"--aibench-devices=android:{doomed_serial},android:{healthy_serial}",
    )
    watcher.join(5)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            f"PASSED phone.json::phone[[]t-{adbd_id(healthy_serial)}[]]",
            f"FAILED phone.json::phone[[]t-{adbd_id(doomed_serial)}[]]*",
            f"*phone.json tests[[]0[]]: android device {doomed_serial} stopped answering*",
        ]
    )


LOGGING_PROGRAM = """#!/usr/bin/env python3
import json, subprocess
row = {"type": "NET", "metric": "latency", "unit": "us", "value": 7}
subprocess.run(["log", "Caffe2Observer " + json.dumps(row)], check=True)
"""


def test_battery_temperature_logcat_and_platform_names(
    pytester: Pytester, phones: Phones, monkeypatch: MonkeyPatch
) -> None:
    from pytest_aibench.devices import fleet

    daemon, serial = phones()
    daemon.set_battery(level=64, temperature=455)  # 45.5 C: too hot to start
    monkeypatch.setattr(fleet, "TEMPERATURE_POLL_S", 0.05)
    cooled = threading.Timer(0.5, lambda: daemon.set_battery(temperature=301))
    cooled.start()
    write_program(pytester.path / "prog.py", LOGGING_PROGRAM)
    write_json(
        pytester.path / "phone.json",
        generic_spec(
            "phone", tests=[{"identifier": "t", "metric": "delay", "commands": ["{files.program}"]}]
        ),
    )
    write_json(pytester.path / "names.json", {serial: "lab-pixel-3"})
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android",
        f"--aibench-adb-port={phones.port}",
        "--aibench-json=run.json",
        "--aibench-max-temperature=40",
        "--aibench-hash-platform-mapping=names.json",
    )
    cooled.join()
    result.assert_outcomes(passed=1)
    item = json.loads((pytester.path / "run.json").read_text())["items"][0]
    assert item["device_state"] == {"battery_level": 64.0, "temperature_c": 30.1}
    assert item["device"]["name"] == "lab-pixel-3"
    assert item["metrics"][0]["values"] == [7.0]  # the observer row came through logcat


def cpufreq(daemon: adbd.FakeAdbd, follows: bool = True) -> list[Path]:
    """Two CPUs whose scaling_cur_freq follows scaling_max_freq (a symlink), unless not."""
    folders = []
    for cpu in ("cpu0", "cpu1"):
        folder = daemon.root / f"sys/devices/system/cpu/{cpu}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_available_frequencies").write_text("300000 1200000 2400000\n")
        (folder / "scaling_min_freq").write_text("300000\n")
        (folder / "scaling_max_freq").write_text("2400000\n")
        if follows:
            (folder / "scaling_cur_freq").symlink_to("scaling_max_freq")
        else:
            (folder / "scaling_cur_freq").write_text("2400000\n")
        folders.append(folder)
    (daemon.root / "sys/devices/system/cpu/online").write_text("0-1\n")
    return folders


@pytest.mark.parametrize(
    ("wanted", "khz"), [("min", 300000), ("mid", 1200000), ("1000000", 1200000), ("max", 2400000)]
)
def test_set_freq_pins_every_cpu_and_checks_it(
    pytester: Pytester, phones: Phones, wanted: str, khz: int
) -> None:
    daemon, _ = phones()
    folders = cpufreq(daemon)
    phone_spec(pytester)
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android",
        f"--aibench-adb-port={phones.port}",
        f"--aibench-set-freq={wanted}",
    )
    result.assert_outcomes(passed=2)
    for folder in folders:
        assert (folder / "scaling_min_freq").read_text().strip() == str(khz)
        assert (folder / "scaling_max_freq").read_text().strip() == str(khz)


def test_set_freq_that_does_not_take_is_an_error(pytester: Pytester, phones: Phones) -> None:
    daemon, serial = phones()
    cpufreq(daemon, follows=False)
    phone_spec(pytester)
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android",
        f"--aibench-adb-port={phones.port}",
        "--aibench-set-freq=min",
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [f"*android device {serial}: cpu0 runs at 2400000 kHz after asking for 300000 kHz*"]
    )


def test_reboot_waits_for_the_device_to_boot(pytester: Pytester, phones: Phones) -> None:
    daemon, _ = phones()
    phone_spec(pytester)
    result = pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=android",
        f"--aibench-adb-port={phones.port}",
        "--aibench-reboot",
    )
    result.assert_outcomes(passed=2)
    assert daemon.reboots == 1  # once per device and process, before its first item


def test_a_lab_adb_server_without_adbutils_names_the_extra(monkeypatch: MonkeyPatch) -> None:
    from pytest_aibench.devices.android import discover
    from pytest_aibench.errors import DeviceError

    monkeypatch.setitem(sys.modules, "adbutils", None)  # as if not installed
    with pytest.raises(
        DeviceError, match=r"needs adbutils: pip install 'pytest-aibench\[android\]'"
    ):
        discover(["android@10.0.0.2:5037"], None)
