"""A report worth looking at: three runs of the repository's ONNX model and of a program with
two sizes, the third an A/B run in which the large size became 20% slower.

    python -m tests.report_demo FOLDER [SCREENSHOT.png]

builds FOLDER/report.html (and, with a path, checks it in Chromium and saves the screenshot
the README shows). The HTML test runs the same demo.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .helpers import write_json, write_program

REPOSITORY = Path(__file__).resolve().parent.parent
RUNS = 3

PROGRAM = """#!/usr/bin/env python3
import json, random, sys
args = sys.argv[1:]
size = args[args.index("--size") + 1]
iterations = int(args[args.index("--iter") + 1])
base = {"small": 1.6, "large": 6.4}[size] * (SLOWDOWN if size == "large" else 1.0)
rng = random.Random()
for _ in range(iterations):
    print("AIBENCH " + json.dumps({"type": "NET", "metric": "latency", "unit": "ms",
                                   "value": base * rng.gauss(1, 0.03)}))
"""


def _setup(folder: Path) -> None:
    models = REPOSITORY / "specifications" / "models"
    for part in ("onnx/mlp", "golden/mlp"):
        shutil.copytree(models / part, folder / "specs" / "models" / part, dirs_exist_ok=True)
    write_program(folder / "fast.py", PROGRAM.replace("SLOWDOWN", "1.0"))
    write_program(folder / "slower.py", PROGRAM.replace("SLOWDOWN", "1.2"))
    tests = [
        {
            "identifier": size,
            "metric": "delay",
            "iter": 40,
            "warmup": 1,
            "commands": [f"{{program}} --size {size} --iter {{iter}}"],
        }
        for size in ("small", "large")
    ]
    write_json(
        folder / "specs" / "sizes.json",
        {"model": {"name": "sizes", "format": "generic"}, "tests": tests},
    )
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def build(folder: Path) -> list[subprocess.CompletedProcess[str]]:
    """Three runs; the last writes report.html. Returns the finished pytest processes."""
    _setup(folder)
    base = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "--aibench-spec=specs",
        "--aibench-ops=5",
    ]
    runs = [[f"--aibench-program={folder / 'fast.py'}"]] * (RUNS - 1) + [
        [
            f"--aibench-program={folder / 'slower.py'}",
            f"--aibench-ab-control={folder / 'fast.py'}",
            "--aibench-ab-blocks=4",
            "--aibench-ab-min-effect=5%",  # decided in a few blocks: the report is the point
            "--aibench-html=report.html",
            "--aibench-json=last.json",
        ]
    ]
    return [
        subprocess.run(
            base + options, cwd=folder, capture_output=True, text=True, timeout=600, check=False
        )
        for options in runs
    ]


if __name__ == "__main__":
    from .chromium import main as check

    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    finished = build(target)
    print(finished[-1].stdout[-3000:])
    if len(sys.argv) > 2:
        raise SystemExit(check([str(target / "report.html"), sys.argv[2]]))
