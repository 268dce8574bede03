#!/usr/bin/env python3
"""The continuous check on a loaded machine: a repository of 20 commits whose 13th makes the
benchmark program 15% slower (tests/test_continuous.py's C program, built with cc at each
commit), and a flat one of 20 commits; ``--load N`` busy processes run the whole time (2: as
many as this machine has cores). Through the command line, as a nightly job runs it:

  aibench commits    each commit A/B'd against the first one's build, stored
  aibench changes    change points in the stored A/B ratios
  aibench regressions  the regressions standing (the dashboard's front page)
  aibench bisect     between the first and the last commit, undecided steps measured again

and the same commits and changes on the flat repository. Prints what each command named and
how long it took; nothing is asserted.

    python perf/continuous_loaded.py [--load 2] [--commits 20] [--slow-at 13] [--slowdown 0.15]
        [--min-effect 5] [--bisect-only] [--ab-budget SECONDS]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from detect import background_load  # noqa: E402  (a sibling script)

from tests.test_continuous import BUILD, SPEC, make_repo  # noqa: E402

# a lab hunting slowdowns of 10% or more says so: the A/B of two identical builds decides
# "unchanged" within its budget instead of running to its limit (1.5%, the default, cannot be
# told from noise on a loaded machine in 120 s)
PYTEST = [
    "--",
    "--aibench-spec=bench.json",
    "--aibench-ab-min-effect=5%",
    "-q",
    "-p",
    "no:cacheprovider",
]


def aibench(folder: Path, *args: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest_aibench", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "AIBENCH_LEASE_DIR": str(folder / "leases")},
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def last_line(text: str, start: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith(start)]
    return lines[-1] if lines else "(no line starting " + start + ")"


def check(folder: Path, options: argparse.Namespace, slow_at: int | None) -> None:
    commits, slowdown = options.commits, options.slowdown
    pytest = [*PYTEST, f"--aibench-ab-min-effect={options.min_effect}%"]
    if options.ab_budget:  # a budget too short to decide at first: bisect's retries at work
        limits = ("max-time", "time-limit")
        pytest += [f"--aibench-ab-{name}={options.ab_budget}" for name in limits]
    (folder / "bench.json").write_text(json.dumps(SPEC))
    # commit k (1-based) is index k - 1; its subject says "change k - 1"
    repo = make_repo(folder / "fw", commits, slow_at and slow_at - 1, None, 1 + slowdown)
    first, last = repo.commits[0], repo.commits[-1]
    label = f"slow from commit {slow_at} ({repo.slow[:10]})" if slow_at else "flat"
    budget = f", A/B budget {options.ab_budget:g} s" if options.ab_budget else ""
    print(f"\n== {commits} commits, {label}, A/B min effect {options.min_effect}%{budget}")
    if slow_at and options.bisect_only:
        bisect(folder, first, last, pytest)
        return
    code, out, took = aibench(
        folder, "commits", "--repo", "fw", "--range", f"{first}..{last}", *BUILD, *pytest
    )
    print(f"commits      exit {code} in {took:6.0f} s: {last_line(out, 'aibench commits')}")
    code, out, took = aibench(folder, "changes")
    rows = [line for line in out.splitlines() if "bench.json" in line]
    print(f"changes      exit {code} in {took:6.0f} s: {last_line(out, 'aibench changes')}")
    for row in rows:
        print("               " + re.sub(r"\s+", " ", row))
    code, out, took = aibench(folder, "regressions")
    print(f"regressions  exit {code} in {took:6.0f} s: {last_line(out, 'aibench regressions')}")
    for row in out.splitlines()[1:-1]:
        print("               " + re.sub(r"\s+", " ", row))
    if slow_at:
        bisect(folder, first, last, pytest)


def bisect(folder: Path, first: str, last: str, pytest: list[str]) -> None:
    code, out, took = aibench(
        folder, "bisect", "--repo", "fw", "--good", first, "--bad", last, *BUILD, *pytest
    )
    print(f"bisect       exit {code} in {took:6.0f} s:")
    for row in out.strip().splitlines():
        print("               " + row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=2, help="busy processes meanwhile (2)")
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--slow-at", type=int, default=13, help="1-based (13)")
    parser.add_argument("--slowdown", type=float, default=0.15)
    parser.add_argument("--min-effect", type=float, default=5.0, help="A/B's, percent (5)")
    parser.add_argument("--bisect-only", action="store_true", help="only bisect the slow one")
    parser.add_argument("--ab-budget", type=float, help="A/B seconds per item (the plugin's)")
    options = parser.parse_args()
    print(f"{options.load} busy processes on {os.cpu_count()} CPUs")
    with background_load(options.load):
        for slow_at in (options.slow_at,) if options.bisect_only else (options.slow_at, None):
            with tempfile.TemporaryDirectory(prefix="aibench-continuous-") as folder:
                check(Path(folder), options, slow_at)


if __name__ == "__main__":
    main()
