#!/usr/bin/env python3
"""Stands in for PyTorch's speed_benchmark_torch --report_pep true: its banner lines, one
PyTorchObserver NET row per iteration, its closing line. Arguments go to $RUNS_FILE."""

import json
import os
import sys

args = sys.argv[1:]
iterations = int(args[args.index("--iter") + 1])
with open(os.environ["RUNS_FILE"], "a") as runs:
    runs.write(" ".join(args) + "\n")
print("Starting benchmark.")
print("Running warmup runs.")
print("Main runs.")
for i in range(iterations):
    print(
        "PyTorchObserver "
        + json.dumps({"type": "NET", "unit": "us", "metric": "latency", "value": str(8100 + i)})
    )
print(
    f"Main run finished. Microseconds per iter: {8100 + iterations / 2:.1f}. "
    f"Iters per second: {1e6 / 8100:.1f}"
)
