"""Android devices through a real adb server (adbutils' binary) talking to a device daemon on
loopback that speaks the adb transport protocol (tests/adbd.py)."""

import json
import threading
import time

import pytest

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


@pytest.fixture
def phones(tmp_path):
    """An adb server and a function that plugs in a new phone (a FakeAdbd) and returns it."""
    daemons = []
    with adbd.adb_server(tmp_path / "adbhome") as port:
        def plug(name: str = "phone") -> tuple[adbd.FakeAdbd, str]:
            daemon = adbd.FakeAdbd(tmp_path / name)
            daemons.append(daemon)
            return daemon, adbd.connect(port, daemon)
        plug.port = port  # type: ignore[attr-defined]
        yield plug
        for daemon in daemons:
            daemon.stop()


def phone_spec(pytester, **env: str) -> None:
    write_program(pytester.path / "prog.py", PROGRAM)
    write_json(pytester.path / "phone.json", generic_spec("phone", tests=[{
        "identifier": f"t{i}", "metric": "delay", "iter": 1, "env": env,
        "platform_args": {"taskset": "1"} if i == 1 else {},
        "output_files": {"cwd": {"filename": "cwd.txt", "location": "{TGTDIR}/cwd.txt"}},
        "commands": ["{files.program} {output_files.cwd}"]} for i in range(2)]))


def test_a_spec_runs_end_to_end_on_an_android_device(pytester, phones):
    daemon, serial = phones()
    phone_spec(pytester)
    (daemon.root / "data/local/tmp/aibench").mkdir(parents=True)
    (daemon.root / "data/local/tmp/aibench/keep.txt").write_text("not ours")
    result = pytester.runpytest("--aibench-spec=phone.json", "--aibench-devices=android",
                                f"--aibench-adb-port={phones.port}", "--aibench-json=run.json")
    result.assert_outcomes(passed=2)
    items = json.loads((pytester.path / "run.json").read_text())["items"]
    device = items[0]["device"]
    assert device == {"kind": "android", "id": adbd_id(serial), "name": "FeasPhone",
                      "hash": serial, "abi": "arm64-v8a", "os": "Android 14 (SDK 34)"}
    assert items[0]["metrics"][0]["values"] == [42.0]
    leftovers = sorted(p.name for p in (daemon.root / "data/local/tmp/aibench").iterdir())
    assert leftovers == ["keep.txt"]  # the case folders are gone, nothing else was touched
    result.stdout.fnmatch_lines([f"phone.json::phone[[]t0-{adbd_id(serial)}[]]*NET latency*"])


def adbd_id(serial: str) -> str:
    return "android-" + serial.replace(":", "_")


def test_exit_codes_and_stderr_come_from_the_program(pytester, phones):
    phones()
    phone_spec(pytester, CODE="5")
    result = pytester.runpytest("--aibench-spec=phone.json", "--aibench-devices=android",
                                f"--aibench-adb-port={phones.port}")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*exited with code 5; its output ended with:", "*to stderr*"])


def test_a_missing_android_device_is_a_clear_error(pytester, phones):
    _, serial = phones()
    phone_spec(pytester)
    result = pytester.runpytest("--aibench-spec=phone.json", "--aibench-devices=android:nope",
                                f"--aibench-adb-port={phones.port}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*android device 'nope' is not connected (connected: {serial})*"])


def test_a_device_that_disappears_fails_its_item_and_the_others_go_on(pytester, phones):
    doomed, doomed_serial = phones("doomed")
    _, healthy_serial = phones("healthy")
    signal = pytester.path / "vanish.txt"
    write_program(pytester.path / "prog.py", PROGRAM)
    write_json(pytester.path / "phone.json", generic_spec("phone", tests=[{
        "identifier": "t", "metric": "delay", "iter": 1,
        "env": {"VANISH": str(signal), "DOOMED": doomed_serial, "SERIAL": "{DEVICEHASH}"},
        "commands": ["{files.program} /dev/null"]}]))

    def pull_the_plug() -> None:  # as soon as the doomed phone's program has started
        deadline = time.monotonic() + 60
        while not signal.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        doomed.stop()

    watcher = threading.Thread(target=pull_the_plug, daemon=True)
    watcher.start()
    result = pytester.runpytest(
        "--aibench-spec=phone.json", "-rA", f"--aibench-adb-port={phones.port}",
        f"--aibench-devices=android:{doomed_serial},android:{healthy_serial}")
    watcher.join(5)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random([
        f"PASSED phone.json::phone[[]t-{adbd_id(healthy_serial)}[]]",
        f"FAILED phone.json::phone[[]t-{adbd_id(doomed_serial)}[]]*",
        f"*phone.json tests[[]0[]]: android device {doomed_serial} stopped answering*",
    ])
