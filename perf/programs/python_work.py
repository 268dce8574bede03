#!/usr/bin/env python3
"""A pure-Python benchmark program for perf/detect.py: each run builds and sorts a list of
tuples and sums a dict (interpreter work, no native library); one observer row per timed run.

    python_work.py WARMUP RUNS

A copy named python_work-1.020.py does 1.02 times the work."""

import json
import re
import sys
import time

WORK = 4000


def factor() -> float:
    found = re.search(r"-(\d+\.\d+)\.py$", sys.argv[0])
    return float(found.group(1)) if found else 1.0


def run(items: int) -> int:
    pairs = [((i * 7919) % 1009, str(i)) for i in range(items)]
    pairs.sort()
    counts: dict[int, int] = {}
    for key, text in pairs:
        counts[key] = counts.get(key, 0) + len(text)
    return sum(counts.values())


def main() -> None:
    warmup, runs = int(sys.argv[1]), int(sys.argv[2])
    items = round(WORK * factor())
    for index in range(-warmup, runs):
        start = time.perf_counter()
        run(items)
        if index >= 0:
            elapsed = (time.perf_counter() - start) * 1e6
            row = {"type": "NET", "metric": "latency", "unit": "us", "value": round(elapsed, 3)}
            print("AIBENCH " + json.dumps(row))


if __name__ == "__main__":
    main()
