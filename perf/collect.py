#!/usr/bin/env python3
"""Collection time of spec items next to plain pytest parametrisation of the same count.

For each count N, writes (in a temporary folder) one FAI-PEP-style spec with N tests and one
Python test file with ``@pytest.mark.parametrize`` over N values, then times
``pytest --collect-only -q`` on each in a fresh subprocess (best and median of R runs, wall
clock, start-up included). With ``--shapes`` the spec has one test listing N input shapes
(FAI-PEP's form), which expands to the same N cases. Prints a table; nothing is asserted.

    python perf/collect.py [--counts 1000 10000] [--repeat 5] [--shapes]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = {
    "name": "net",
    "format": "caffe2",
    "files": {
        "predict": {
            "filename": "predict_net.pb",
            "location": "https://example.invalid/p.pb",
            "md5": "0" * 32,
        }
    },
}


def write_spec(folder: Path, count: int, shapes: bool = False) -> Path:
    """N tests, or (``shapes``) one test listing N input shapes: N cases either way."""
    if shapes:
        tests = [
            {
                "identifier": "{ID}",
                "metric": "delay",
                "iter": 50,
                "commands": ["{program} --net {files.predict} --iter {iter}"],
                "inputs": {"data": {"shapes": [[1, 3, i + 1, 224] for i in range(count)]}},
            }
        ]
    else:
        tests = [
            {
                "identifier": f"case-{i}",
                "metric": "delay",
                "warmup": 1,
                "iter": 50,
                "commands": ["{program} --net {files.predict} --iter {iter} --batch " + str(i)],
            }
            for i in range(count)
        ]
    path = folder / "spec.json"
    path.write_text(json.dumps({"model": MODEL, "tests": tests}))
    return path


def write_parametrized(folder: Path, count: int) -> Path:
    path = folder / "test_param.py"
    path.write_text(
        "import pytest\n\n"
        f"@pytest.mark.parametrize('case', range({count}))\n"
        "def test_case(case):\n    pass\n"
    )
    return path


def collect_seconds(args: list[str], cwd: Path, expected: int) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:benchmark",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if f"{expected} tests collected" not in done.stdout:
        raise SystemExit(f"unexpected collection output:\n{done.stdout[-2000:]}{done.stderr}")
    return seconds


def measure(count: int, repeat: int, shapes: bool = False) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "pytest.ini").write_text("[pytest]\n")
        spec, plain = write_spec(folder, count, shapes), write_parametrized(folder, count)
        runs: dict[str, list[float]] = {"aibench spec": [], "pytest parametrize": []}
        for _ in range(repeat):  # interleaved, so drift on a shared machine hits both alike
            runs["aibench spec"].append(collect_seconds([f"--aibench-spec={spec}"], folder, count))
            runs["pytest parametrize"].append(collect_seconds([str(plain)], folder, count))
        return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--shapes", action="store_true", help="one test with N input shapes instead of N tests"
    )
    options = parser.parse_args()
    header = f"{'items':>6}  {'collector':<19} {'best s':>7} {'median s':>8} {'per item us':>11}"
    print(header)
    print("-" * len(header))
    for count in options.counts:
        for label, seconds in measure(count, options.repeat, options.shapes).items():
            best, middle = min(seconds), statistics.median(seconds)
            print(
                f"{count:>6}  {label:<19} {best:>7.2f} {middle:>8.2f} {best / count * 1e6:>11.1f}"
            )


if __name__ == "__main__":
    main()
