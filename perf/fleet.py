#!/usr/bin/env python3
"""Fleet speed-up: the same spec on 1, 2 and 4 ssh devices, serially (-n 0) and with one xdist
worker per device (-n D).

The devices are OpenSSH servers on 127.0.0.1 (tests/sshd.py starts them); each item runs a
program that holds its device for HOLD seconds (it sleeps: on a real board the time is spent on
the board, not on the host's two cores). Every case runs on every device, so D devices do D
times the work; the speed-up is wall(-n 0) / wall(-n D). Prints a table; nothing is asserted.

    python perf/fleet.py [--cases 8] [--hold 0.5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests import sshd  # noqa: E402

PROGRAM = (
    "#!/bin/sh\nsleep {hold}\n"
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
                    {"identifier": f"c{i}", "metric": "delay", "commands": ["{files.program}"]}
                    for i in range(cases)
                ],
            }
        )
    )
    (folder / "pytest.ini").write_text("[pytest]\n")


def wall(folder: Path, urls: list[str], options: str, workers: int, dist: list[str]) -> float:
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
            *(dist if workers else []),
            "--aibench-spec=fleet.json",
            f"--aibench-devices={','.join(urls)}",
            f"--aibench-ssh-options={options}",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--hold", type=float, default=0.5)
    parser.add_argument("--dist", help="xdist --dist mode for the -n D runs (default: ours)")
    options = parser.parse_args()
    print(f"{'devices':>7}  {'items':>5}  {'-n 0 s':>7}  {'-n D s':>7}  {'speed-up':>8}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder, options.cases, options.hold)
        for devices in (1, 2, 4):
            with sshd.servers(folder / f"sshd{devices}", devices) as (urls, ssh_options):
                dist = ["--dist", options.dist] if options.dist else []
                serial = wall(folder, urls, ssh_options, 0, dist)
                parallel = wall(folder, urls, ssh_options, devices, dist)
            print(
                f"{devices:>7}  {devices * options.cases:>5}  {serial:>7.2f}  "
                f"{parallel:>7.2f}  {serial / parallel:>7.2f}x"
            )


if __name__ == "__main__":
    main()
