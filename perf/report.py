#!/usr/bin/env python3
"""What the reports cost at the end of a run, next to pytest-benchmark's.

For N parametrised tests that each time ``sum(range(100))`` 50 times, times in fresh
subprocesses (best of --repeat, interleaved):

- "aibench": the ``aibench`` fixture with no history and no report (``--aibench-history=off``);
- "aibench + history": the same, appending each run to the history store;
- "aibench + history + html": the same, appending to the history store and writing
  ``--aibench-html`` (a box plot and, from the second run on, a trend line per test);
- "pytest-benchmark": the ``benchmark`` fixture with 50 rounds;
- "pytest-benchmark + autosave + histogram": the same with ``--benchmark-autosave
  --benchmark-histogram`` (its SVG needs pygal: ``pip install pygal``).

"report s" is a row's time minus the plain fixture's row above it. Prints a table; asserts nothing.

    python perf/report.py [--tests 10 100] [--repeat 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = """import pytest

@pytest.mark.parametrize("n", range({count}))
@pytest.mark.aibench(iterations=50, warmup=0)
def test_aibench(aibench, n):
    aibench(sum, range(100))

@pytest.mark.parametrize("n", range({count}))
def test_benchmark(benchmark, n):
    benchmark.pedantic(sum, args=(range(100),), rounds=50, iterations=1)
"""

VARIANTS = {
    "aibench": ["-k", "test_aibench", "--aibench-history=off", "-p", "no:benchmark"],
    "aibench + history": ["-k", "test_aibench", "--aibench-history=h.sqlite", "-p", "no:benchmark"],
    "aibench + history + html": [
        "-k",
        "test_aibench",
        "--aibench-history=h.sqlite",
        "--aibench-html=report.html",
        "-p",
        "no:benchmark",
    ],
    "pytest-benchmark": ["-k", "test_benchmark", "-p", "no:aibench"],
    "pytest-benchmark + autosave + histogram": [
        "-k",
        "test_benchmark",
        "-p",
        "no:aibench",
        "--benchmark-autosave",
        "--benchmark-histogram=histogram",
    ],
}


def wall_time(folder: Path, options: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_cost.py", *options],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{options} failed:\n{done.stdout[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'tests':>6}  {'variant':<42}{'best s':>8}{'report s':>10}")
    for count in args.tests:
        with tempfile.TemporaryDirectory() as temporary:
            folder = Path(temporary)
            (folder / "test_cost.py").write_text(TESTS.format(count=count))
            best = {
                name: min(wall_time(folder, options) for _ in range(args.repeat))
                for name, options in VARIANTS.items()
            }
        for name, seconds in best.items():
            base = best["aibench" if name.startswith("aibench") else "pytest-benchmark"]
            extra = f"{seconds - base:10.2f}" if seconds != base else f"{'':>10}"
            print(f"{count:>6}  {name:<42}{seconds:8.2f}{extra}")


if __name__ == "__main__":
    main()
