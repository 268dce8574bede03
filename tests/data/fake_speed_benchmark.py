#!/usr/bin/env python3
"""Stands in for Caffe2's speed_benchmark (which cannot run here): prints Caffe2Observer rows in
the observer's real format, glog prefixes included. Like a device whose log buffer is small, it
delivers at most ROWS_PER_RUN whole-net rows per run. Each run appends a line to $RUNS_FILE, and
its arguments are printed as an info row so tests can check the composed command."""

import json
import os
import sys

ROWS_PER_RUN = 20
OPERATORS = (("conv1", 812.4), ("relu1", 40.5), ("fc", 233.0))


def row(**fields: object) -> None:
    print(
        "I1128 10:00:00.000000  4242 net_observer_reporter_print.cc:29] Caffe2Observer "
        + json.dumps({key: str(value) for key, value in fields.items()})
    )


args = sys.argv[1:]
iterations = int(args[args.index("--iter") + 1])
with open(os.environ["RUNS_FILE"], "a") as runs:
    runs.write(" ".join(args) + "\n")
row(type="NET", unit="", metric="argv", info_string=" ".join(args))
individual = "--run_individual" in args
for i in range(min(iterations, ROWS_PER_RUN)):
    if individual:
        for name, micros in OPERATORS:
            row(type=name, unit="us", metric="latency", value=f"{micros + i:.6f}")
            row(type=name, unit="", metric="tensor_shapes", info_string="[[1, 3, 224, 224, ], ]")
    row(type="NET", unit="us", metric="latency", value=f"{15000 + i:.6f}")
