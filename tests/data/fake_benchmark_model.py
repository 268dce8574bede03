#!/usr/bin/env python3
"""Stands in for TFLite's benchmark_model: prints the recorded output named by
$RECORDED_OUTPUT (next to this file) and records its arguments in $RUNS_FILE."""

import os
import sys
from pathlib import Path

with open(os.environ["RUNS_FILE"], "a") as runs:
    runs.write(" ".join(sys.argv[1:]) + "\n")
sys.stdout.write((Path(__file__).resolve().parent / os.environ["RECORDED_OUTPUT"]).read_text())
