#!/usr/bin/env python3
"""Timing bias: the same ONNX model timed by pytest-aibench, by pytest-benchmark and by a bare
``perf_counter_ns`` loop, in one run.

Uses specifications/models/onnx/mlp/mlp.onnx (1 x 64 input). Each round runs, in fresh pytest
processes, a spec item (2,000 timed runs after 100 warmup) and a pytest-benchmark test of the
same ``session.run`` call, then the bare loop in this process; medians per round are printed.
Needs onnxruntime and pytest-benchmark. Nothing is asserted.

--floor: instead, the cost per call of an empty function and of ``sum(range(100))`` under the
``aibench`` fixture and under pytest-benchmark (its defaults), each test in fresh pytest
processes, medians per call in microseconds.

    python perf/timing.py [--rounds 3]
    python perf/timing.py --floor [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL = Path(__file__).resolve().parents[1] / "specifications/models/onnx/mlp/mlp.onnx"
RUNS, WARMUP = 2000, 100
SESSION = (
    "import numpy as np, onnxruntime as ort\n"
    f"session = ort.InferenceSession({str(MODEL)!r}, providers=['CPUExecutionProvider'])\n"
    "feeds = {'x': np.random.default_rng(1).standard_normal((1, 64)).astype(np.float32)}\n"
)


def prepare(folder: Path) -> None:
    shutil.copy(MODEL, folder / "mlp.onnx")
    (folder / "spec.json").write_text(
        json.dumps(
            {
                "model": {
                    "name": "mlp",
                    "format": "onnx",
                    "files": {"model": {"filename": "mlp.onnx", "location": "mlp.onnx"}},
                },
                "tests": [
                    {
                        "identifier": "t",
                        "metric": "delay",
                        "warmup": WARMUP,
                        "iter": RUNS,
                        "inputs": {"x": {"shapes": [[1, 64]], "type": "float"}},
                    }
                ],
            }
        )
    )
    (folder / "test_peer.py").write_text(
        SESSION + "def test_run(benchmark):\n    benchmark(session.run, None, feeds)\n"
    )
    (folder / "pytest.ini").write_text("[pytest]\n")


def pytest_run(folder: Path, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=folder,
        check=True,
        capture_output=True,
    )


def aibench_median(folder: Path) -> float:
    pytest_run(folder, "--aibench-spec=spec.json", "--aibench-json=run.json", "-p", "no:benchmark")
    run = json.loads((folder / "run.json").read_text())
    return float(run["items"][0]["metrics"][0]["summary"]["p50"])


def peer_median(folder: Path) -> float:
    pytest_run(folder, "test_peer.py", "--benchmark-json=peer.json", "-p", "no:aibench")
    stats = json.loads((folder / "peer.json").read_text())["benchmarks"][0]["stats"]
    return float(stats["median"]) * 1e6


def loop_median() -> float:
    namespace: dict[str, Any] = {}  # an onnxruntime session and its feeds
    exec(SESSION, namespace)
    session, feeds = namespace["session"], namespace["feeds"]
    for _ in range(WARMUP):
        session.run(None, feeds)
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter_ns()
        session.run(None, feeds)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(samples)


FLOOR_TESTS = """
import pytest

def empty():
    pass

def small():
    return sum(range(100))

CASES = {"empty": empty, "sum(range(100))": small}

@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.aibench(iterations=200, warmup=20)
def test_ours(aibench, case):
    aibench(CASES[case])

@pytest.mark.parametrize("case", list(CASES))
def test_peer(benchmark, case):
    benchmark(CASES[case])
"""


def floor(rounds: int) -> None:
    print(f"{'round':>5}  {'case':<16}  {'aibench us/call':>15}  {'pytest-benchmark us/call':>24}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        (folder / "test_floor.py").write_text(FLOOR_TESTS)
        (folder / "pytest.ini").write_text("[pytest]\n")
        for index in range(1, rounds + 1):
            pytest_run(folder, "-k", "ours", "--aibench-json=ours.json", "-p", "no:benchmark")
            pytest_run(folder, "-k", "peer", "--benchmark-json=peer.json", "-p", "no:aibench")
            ours = {
                item["nodeid"].split("[")[1][:-1]: item["metrics"][0]["summary"]["p50"]
                for item in json.loads((folder / "ours.json").read_text())["items"]
            }
            peer = {
                bench["param"]: bench["stats"]["median"] * 1e6
                for bench in json.loads((folder / "peer.json").read_text())["benchmarks"]
            }
            for case in ours:
                print(f"{index:>5}  {case:<16}  {ours[case]:>15.4f}  {peer[case]:>24.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="the cost per call of tiny calls")
    options = parser.parse_args()
    rounds = options.rounds
    if options.floor:
        floor(rounds)
        return
    print(
        f"{'round':>5}  {'pytest-aibench us':>17}  {'pytest-benchmark us':>19}  "
        f"{'bare loop us':>12}"
    )
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        prepare(folder)
        for index in range(1, rounds + 1):
            ours, peer, bare = aibench_median(folder), peer_median(folder), loop_median()
            print(f"{index:>5}  {ours:>17.2f}  {peer:>19.2f}  {bare:>12.2f}")


if __name__ == "__main__":
    main()
