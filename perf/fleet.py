#!/usr/bin/env python3
"""Fleet speed-up: the same spec on 1, 2 and 4 ssh devices, serially (-n 0) and with one xdist
worker per device (-n D); and the fixed cost of an item on each kind of device.

The devices are OpenSSH servers on 127.0.0.1 (tests/sshd.py starts them); each item runs a
program that holds its device for HOLD seconds (it sleeps: on a real board the time is spent on
the board, not on the host's two cores) and notes when it started and ended. Every case runs on
every device, so D devices do D times the work. Two ratios: wall(-n 0) / wall(-n D), which
includes starting pytest and D workers once per run, and the throughput ratio, items per second
from the first item's start to the last one's end (the steady state a long run has).

--fixed: per kind of device (the host, an ssh board, an Android phone: tests/adbd.py's device
daemon behind a real adb server), the time an item costs beyond its program, from runs of 1 and
1 + N items that hold for 0 s: (wall(1 + N) - wall(1)) / N. Prints tables; nothing is asserted.

    python perf/fleet.py [--cases 8] [--hold 0.5]
    python perf/fleet.py --fixed [--cases 16]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests import sshd  # noqa: E402

PROGRAM = (
    "#!/bin/sh\nstart=$(date +%s.%N)\nsleep {hold}\n"
    'echo "$start $(date +%s.%N)" >> "$SPANS/$$"\n'
    'echo \'AIBENCH {{"type": "NET", "metric": "latency", "unit": "us", '
    '"value": 1}}\'\n'
)


def prepare(folder: Path, cases: int, hold: float) -> None:
    program = folder / "hold.sh"
    program.write_text(PROGRAM.format(hold=hold))
    program.chmod(0o755)
    (folder / "fleet.json").write_text(
        json.dumps(
            {
                "model": {
                    "name": "fleet",
                    "format": "generic",
                    "files": {"program": {"filename": "hold.sh", "location": "hold.sh"}},
                },
                "tests": [
                    {
                        "identifier": f"c{i}",
                        "metric": "delay",
                        "env": {"SPANS": str(folder / "spans")},
                        "commands": ["{files.program}"],
                    }
                    for i in range(cases)
                ],
            }
        )
    )
    (folder / "pytest.ini").write_text("[pytest]\n")


def wall(
    folder: Path,
    urls: list[str],
    options: str,
    workers: int,
    dist: list[str],
    always: bool = False,
) -> float:
    """Seconds one pytest run takes; ``dist`` (extra options) for -n D runs, or ``always``."""
    shutil.rmtree(folder / "spans", ignore_errors=True)
    (folder / "spans").mkdir()
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:benchmark",
            "-n",
            str(workers),
            *(dist if workers or always else []),
            "--aibench-spec=fleet.json",
            f"--aibench-devices={','.join(urls)}",
            f"--aibench-ssh-options={options}",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def throughput(folder: Path) -> float:
    """Items per second between the first item's start and the last one's end."""
    spans = [
        tuple(map(float, line.split()))
        for path in (folder / "spans").iterdir()
        for line in path.read_text().splitlines()
    ]
    return len(spans) / (max(end for _, end in spans) - min(start for start, _ in spans))


def speed_up(cases: int, hold: float, dist: list[str]) -> None:
    print(f"HOLD {hold:g} s, {cases} cases")
    print(
        f"{'devices':>7}  {'items':>5}  {'-n 0 s':>7}  {'-n D s':>7}  {'wall':>6}  "
        f"{'items/s -n 0':>12}  {'items/s -n D':>12}  {'throughput':>10}"
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder, cases, hold)
        for devices in (1, 2, 4):
            with sshd.servers(folder / f"sshd{devices}", devices) as (urls, ssh_options):
                serial = wall(folder, urls, ssh_options, 0, dist)
                serial_rate = throughput(folder)
                parallel = wall(folder, urls, ssh_options, devices, dist)
                parallel_rate = throughput(folder)
            print(
                f"{devices:>7}  {devices * cases:>5}  {serial:>7.2f}  {parallel:>7.2f}  "
                f"{serial / parallel:>5.2f}x  {serial_rate:>12.3f}  {parallel_rate:>12.3f}  "
                f"{parallel_rate / serial_rate:>9.2f}x"
            )


def fixed_costs(cases: int) -> None:
    """Per kind of device: what an item of a 0 s program costs, from 1 and 1 + cases items."""
    from tests import adbd

    print(f"{'device':>8}  {'1 item s':>8}  {1 + cases:>3} items s  {'per item s':>10}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        with contextlib.ExitStack() as stack:
            urls, ssh_options = stack.enter_context(sshd.servers(folder / "sshd", 1))
            port = stack.enter_context(adbd.adb_server(folder / "adbhome"))
            phone = adbd.FakeAdbd(folder / "phone")
            stack.callback(phone.stop)
            serial = adbd.connect(port, phone)
            kinds = {
                "host": (["host"], []),
                "ssh": (urls, []),
                "android": ([f"android:{serial}"], [f"--aibench-adb-port={port}"]),
            }
            for kind, (devices, extra) in kinds.items():
                walls = []
                for count in (1, 1 + cases):
                    prepare(folder, count, 0)
                    walls.append(wall(folder, devices, ssh_options, 0, extra, always=True))
                per_item = (walls[1] - walls[0]) / cases
                print(f"{kind:>8}  {walls[0]:>8.2f}  {walls[1]:>12.2f}  {per_item:>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--dist", help="xdist --dist mode for the -n D runs (default: ours)")
    parser.add_argument("--fixed", action="store_true", help="the fixed cost per item instead")
    options = parser.parse_args()
    if options.fixed:
        fixed_costs(options.cases)
    else:
        speed_up(options.cases, options.hold, ["--dist", options.dist] if options.dist else [])


if __name__ == "__main__":
    main()
