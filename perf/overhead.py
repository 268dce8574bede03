#!/usr/bin/env python3
"""Harness overhead per benchmark: spec items next to a plain pytest test running the same program.

Writes (in a temporary folder) a tiny program that prints one observer row, then for N items
times, in fresh subprocesses:

- "aibench spec": ``pytest --aibench-spec spec.json`` with N generic tests running the program;
- "pytest + subprocess": a parametrised test that runs the program with ``subprocess.run`` and
  parses nothing (the least any harness can do);
- "program alone": the program run N times in a shell loop.

Overhead per item = (harness wall time - program-alone wall time) / N; pytest's own start-up is
included in both harness rows. Prints a table; nothing is asserted.

    python perf/overhead.py [--items 10 50] [--repeat 5]
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

PROGRAM = (
    "#!/usr/bin/env python3\n"
    'print(\'AIBENCH {"type": "NET", "metric": "latency", "unit": "us", "value": 1}\')\n'
)


def prepare(folder: Path, items: int) -> None:
    program = folder / "prog.py"
    program.write_text(PROGRAM)
    program.chmod(0o755)
    tests = [
        {"identifier": f"t{i}", "metric": "delay", "commands": ["{files.program}"]}
        for i in range(items)
    ]
    (folder / "spec.json").write_text(
        json.dumps(
            {
                "model": {
                    "name": "tiny",
                    "format": "generic",
                    "files": {"program": {"filename": "prog.py", "location": "prog.py"}},
                },
                "tests": tests,
            }
        )
    )
    (folder / "test_plain.py").write_text(
        "import subprocess, pytest\n"
        f"@pytest.mark.parametrize('i', range({items}))\n"
        "def test_run(i):\n"
        "    subprocess.run(['./prog.py'], check=True, capture_output=True)\n"
    )
    (folder / "pytest.ini").write_text("[pytest]\n")


def wall(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(items: int, repeat: int) -> dict[str, list[float]]:
    pytest_cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:benchmark",
    ]
    commands = {
        "aibench spec": [*pytest_cmd, "--aibench-spec=spec.json"],
        "pytest + subprocess": [*pytest_cmd, "test_plain.py"],
        "program alone": ["sh", "-c", f"for i in $(seq {items}); do ./prog.py >/dev/null; done"],
    }
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder, items)
        runs: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(repeat):
            for label, command in commands.items():
                runs[label].append(wall(command, folder))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    header = f"{'items':>5}  {'runner':<20} {'median s':>8} {'overhead/item ms':>16}"
    print(header)
    print("-" * len(header))
    for items in options.items:
        runs = measure(items, options.repeat)
        alone = statistics.median(runs["program alone"])
        for label, seconds in runs.items():
            middle = statistics.median(seconds)
            extra = "" if label == "program alone" else f"{(middle - alone) / items * 1e3:>16.1f}"
            print(f"{items:>5}  {label:<20} {middle:>8.2f} {extra}")


if __name__ == "__main__":
    main()
