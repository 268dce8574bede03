"""iOS devices: discovery and device facts through pymobiledevice3 talking to a usbmux daemon
on loopback (tests/usbmuxd.py) and to Debian's usbmuxd; the app lifecycle (install, container
files, benchmark.json, launch, BENCH_DONE/BENCH_LOG) against the fake app side of a phone."""

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest import Pytester, RunResult

from pytest_aibench.devices import ios
from pytest_aibench.devices.base import DeviceInfo
from pytest_aibench.errors import DeviceError

from . import usbmuxd
from .helpers import write_json
from .usbmuxd import FakeApps

pytest.importorskip("pymobiledevice3")

UDID = "00008110-001A2B3C4D5E6F70"
PHONE_VALUES = {
    "ProductType": "iPhone14,5",
    "ProductVersion": "17.4.1",
    "CPUArchitecture": "arm64e",
    "DeviceName": "Lab iPhone",
}

APP = """
import json, os, sys, time
args = json.load(open("tmp/benchmark.json"))
model = open(args["model"], "rb").read()
with open("tmp/BENCH_LOG", "w") as log:
    print(f"model {len(model)} bytes, home {os.environ['HOME']}", file=log)
    for i in range(int(args["iter"])):
        print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms",
                                       "value": 5 + i}), file=log)
if "hang" in args:
    time.sleep(60)
open("tmp/BENCH_DONE", "w").write(os.environ.get("EXIT", ""))
"""


@pytest.fixture
def mux() -> Iterator[str]:
    with usbmuxd.usbmuxd([usbmuxd.FakeIPhone(UDID, PHONE_VALUES)]) as address:
        yield address


class PhonePlugin:
    """What a lab's conftest.py would do to drive apps its own way: answer the hook."""

    def __init__(self, root: Path) -> None:
        self.apps = usbmuxd.FakeApps(root)

    def pytest_aibench_ios_apps(self, config: pytest.Config, device: DeviceInfo) -> FakeApps:
        assert device.hash == UDID
        return self.apps

    def pytest_unconfigure(self) -> None:
        self.apps.reap()


def ios_spec(
    pytester: Pytester,
    command: str = "{program} --model {files.model} --iter {iter}",
    **test: object,
) -> None:
    usbmuxd.make_ipa(pytester.path / "Bench.ipa", "org.example.bench", APP)
    (pytester.path / "net.bin").write_bytes(b"\x00" * 1000)
    write_json(
        pytester.path / "phone.json",
        {
            "model": {
                "name": "net",
                "format": "generic",
                "files": {"model": {"filename": "net.bin", "location": "net.bin"}},
            },
            "tests": [
                {"identifier": "t", "metric": "delay", "iter": 3, "commands": [command], **test}
            ],
        },
    )


def run_on_phone(pytester: Pytester, mux: str, plugin: PhonePlugin, *extra: str) -> RunResult:
    return pytester.runpytest(
        "--aibench-spec=phone.json",
        "--aibench-devices=ios",
        f"--aibench-usbmux={mux}",
        "--aibench-program=Bench.ipa",
        "--aibench-json=run.json",
        *extra,
        plugins=[plugin],
    )


def test_a_spec_runs_end_to_end_on_an_ios_device(
    pytester: Pytester, mux: str, tmp_path: Path
) -> None:
    ios_spec(pytester)
    phone = PhonePlugin(tmp_path / "phone")
    result = run_on_phone(pytester, mux, phone)
    result.assert_outcomes(passed=1)
    item = json.loads((pytester.path / "run.json").read_text())["items"][0]
    assert item["device"] == {
        "kind": "ios",
        "id": f"ios-{UDID}",
        "name": "iPhone14,5",
        "hash": UDID,
        "abi": "arm64e",
        "os": "iOS 17.4.1",
    }
    assert item["metrics"][0]["values"] == [5.0, 6.0, 7.0]
    ((bundle, arguments),) = phone.apps.launched
    assert bundle == "org.example.bench"
    assert arguments[::2] == ["--model", "--iter"] and arguments[3] == "3"
    assert arguments[1].startswith("tmp/aibench-") and arguments[1].endswith("/net.bin")
    container = phone.apps.container(bundle)
    assert json.loads((container / "tmp/benchmark.json").read_text()) == {
        "model": arguments[1],
        "iter": "3",
    }
    assert not list(container.glob("tmp/aibench-*"))  # the case folder went with the case
    result.stdout.fnmatch_lines([f"phone.json::net[[]t-ios-{UDID}[]]*NET latency*"])


def test_the_apps_exit_status_and_a_hang_fail_the_item_clearly(
    pytester: Pytester, mux: str, tmp_path: Path
) -> None:
    ios_spec(pytester, env={"EXIT": "3"})
    result = run_on_phone(pytester, mux, PhonePlugin(tmp_path / "p1"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--iter 3 exited with code 3; its output ended with:"])

    ios_spec(pytester, command="{program} --model {files.model} --iter 1 --hang")
    phone = PhonePlugin(tmp_path / "p2")
    result = run_on_phone(pytester, mux, phone, "--aibench-timeout=1")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*--hang ran past its timeout of 1 s and was killed*"])
    assert all(p.poll() is not None for p in phone.apps._processes.values())  # killed


def test_a_command_that_is_not_an_app_fails_with_what_to_do(
    pytester: Pytester, mux: str, tmp_path: Path
) -> None:
    ios_spec(pytester, command="/bin/echo {files.model}")
    result = run_on_phone(pytester, mux, PhonePlugin(tmp_path / "phone"))
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*iOS devices run apps: the command must start with {program}, an .ipa*"]
    )


def test_list_devices_shows_the_phone_usbmuxd_reports(pytester: Pytester) -> None:
    second = usbmuxd.FakeIPhone(
        "a" * 40,
        {"ProductType": "iPhone10,3", "ProductVersion": "16.7.8", "CPUArchitecture": "arm64"},
        device_id=7,
    )
    with usbmuxd.usbmuxd([usbmuxd.FakeIPhone(UDID, PHONE_VALUES), second]) as address:
        result = pytester.runpytest(
            "--aibench-list-devices",
            "--aibench-devices=ios",
            f"--aibench-usbmux={address}",
            "--aibench-lease-dir=leases",  # not the machine's: other tests hold this phone
        )
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            f"ios*ios-{UDID}*iPhone14,5*{UDID}*arm64e*iOS 17.4.1*free",
            "ios*iPhone10,3*arm64*iOS 16.7.8*free",
        ]
    )


def test_each_lab_host_has_its_usbmuxd(pytester: Pytester) -> None:
    """``ios@HOST:PORT``: a usbmuxd per device set (one per lab host), each phone recorded
    after its host's address, beside the --aibench-usbmux one."""
    other = usbmuxd.FakeIPhone("b" * 40, {**PHONE_VALUES, "ProductType": "iPhone15,2"})
    with (
        usbmuxd.usbmuxd([usbmuxd.FakeIPhone(UDID, PHONE_VALUES)]) as local,
        usbmuxd.usbmuxd([other]) as lab3,
    ):
        result = pytester.runpytest(
            "--aibench-list-devices",
            f"--aibench-devices=ios,ios@{lab3}/{'b' * 40}",
            f"--aibench-usbmux={local}",
        )
    assert result.ret == 0, result.stderr.str()
    lab3_id = "ios-" + lab3.replace(":", "_").replace("/", "_")
    result.stdout.fnmatch_lines(
        [f"ios*ios-{UDID} *{UDID} *", f"ios*{lab3_id}_{'b' * 40}*iPhone15,2*{lab3}/{'b' * 40} *"]
    )


def test_a_missing_phone_or_daemon_is_a_usage_error(pytester: Pytester, mux: str) -> None:
    result = pytester.runpytest(
        "--aibench-list-devices", "--aibench-devices=ios:NOPE", f"--aibench-usbmux={mux}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*iOS device 'NOPE' is not connected (connected: {UDID})*"])

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    result = pytester.runpytest(
        "--aibench-list-devices", "--aibench-devices=ios", f"--aibench-usbmux=127.0.0.1:{port}"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*usbmuxd does not answer at 127.0.0.1:{port}*"])


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        return probe.connect_ex(path) == 0


@pytest.mark.skipif(
    shutil.which("usbmuxd") is None or os.geteuid() != 0,
    reason="needs Debian's usbmuxd (apt install usbmuxd), run as root",
)
def test_debians_usbmuxd_with_no_phone_gives_a_clear_error(pytester: Pytester) -> None:
    socket_path = "/var/run/usbmuxd"
    started = None
    if not _answers(socket_path):
        Path(socket_path).unlink(missing_ok=True)  # usbmuxd leaves a stale socket behind
        started = subprocess.Popen(
            ["usbmuxd", "-f", "-n", "-U", "root"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not _answers(socket_path) and time.monotonic() < deadline:
            time.sleep(0.05)
    try:
        assert ios.connected(socket_path) == []
        result = pytester.runpytest(
            "--aibench-list-devices", "--aibench-devices=ios", f"--aibench-usbmux={socket_path}"
        )
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [f"*no iOS device is connected (usbmuxd at {socket_path} lists none)*"]
        )
    finally:
        if started is not None:
            started.terminate()
            started.wait()
            Path(socket_path).unlink(missing_ok=True)


def test_the_bundle_id_comes_from_the_one_app_in_the_ipa(tmp_path: Path) -> None:
    ipa = usbmuxd.make_ipa(tmp_path / "one.ipa", "org.example.one", "")
    assert ios.bundle_id(ipa) == "org.example.one"
    with pytest.raises(DeviceError, match=r"expected one Payload/\*\.app in the \.ipa, found 2"):
        ios.bundle_id(usbmuxd.make_ipa(tmp_path / "two.ipa", "org.example.two", "", apps=2))
    (tmp_path / "plain.ipa").write_text("not a zip")
    with pytest.raises(DeviceError, match=r"plain\.ipa: not a readable \.ipa"):
        ios.bundle_id(tmp_path / "plain.ipa")


def test_arguments_pair_up_as_fai_pep_writes_them_to_benchmark_json() -> None:
    assert ios.paired_arguments(["--net", "a.pb", "--iter=5", "--verbose", "--x", "1"]) == {
        "net": "a.pb",
        "iter": "5",
        "verbose": "true",
        "x": "1",
    }
    with pytest.raises(DeviceError, match="'stray' is not one"):
        ios.paired_arguments(["--net", "a.pb", "stray"])
