#!/usr/bin/env python3
"""How well the regression gate tells a real slowdown from noise, on this machine.

The workload is real CPU work (a pure-Python arithmetic loop, about 1 ms); a "slowdown" of s%
is s% more loop iterations. Each trial collects SAMPLES timings per side and asks for a verdict:

- paired sequential A/B (what ``--aibench-ab-control`` does since issue 14, with
  ``--paired-trials N``): each block runs both sides as fresh processes (as benchmark programs
  are), pinned to one CPU, in a shuffled order; the sequential rule (verdicts/sequential.py,
  1% threshold) decides or the ``--budget`` (30 s) ends the trial inconclusive;
- pooled A/B (the rule before issue 14): control and treatment interleaved in BLOCKS blocks in
  one process, order shuffled per block, each block with its own warmup calls, samples pooled,
  then the stored-run gate (``statistics.judge``: one-sided Mann-Whitney U at alpha 0.01 and a
  bootstrap 95% interval of the ratio of medians beyond 1 + min-effect);
- stored control (what ``--aibench-compare`` does): control and treatment each timed in a fresh
  process, one after the other, then the same gate;
- pytest-benchmark's rule ``--benchmark-compare-fail=median:5%`` on the same stored-mode
  samples (current median more than 5% above the stored one), and, with ``--peer-trials K``,
  the real pytest-benchmark run K times per condition with that option.

Prints, per mode, the false-alarm rate over the A/A trials, the detection rate per slowdown,
the smallest slowdown caught in at least 95% of trials, and the seconds each mode took.

    python perf/detect.py [--trials 100] [--samples 100] [--peer-trials 10] [--paired-trials 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pytest_aibench.metrics import MetricRecord
from pytest_aibench.records import MetricDict
from pytest_aibench.verdicts import Rule, judge
from pytest_aibench.verdicts.sequential import SequentialAB

SLOWDOWNS = (0.0, 0.02, 0.03, 0.05, 0.10)
BASE_WORK = 20_000
BLOCKS = 10
WARMUP = 3
RULE = Rule("NET latency", "p50", 0.05)
AB_RULE = Rule("NET latency", "p50", 0.01)  # --aibench-ab-min-effect
ALPHA = 0.01


def workload(factor: float) -> Callable[[], int]:
    count = int(BASE_WORK * factor)

    def run() -> int:
        total = 0
        for i in range(count):
            total += i * i % 7
        return total

    return run


def timed(fn: Callable[[], int], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - start) / 1000)
    return samples


def metric(samples: list[float]) -> MetricDict:
    return MetricRecord("NET", "latency", "us", samples).to_dict()


def ab_trial(slowdown: float, samples: int, seed: int) -> str:
    sides = {"control": workload(1.0), "treatment": workload(1.0 + slowdown)}
    collected: dict[str, list[float]] = {"control": [], "treatment": []}
    order = ["control", "treatment"]
    shuffler = random.Random(seed)
    for _ in range(BLOCKS):
        shuffler.shuffle(order)
        for side in order:
            timed(sides[side], WARMUP)
            collected[side] += timed(sides[side], samples // BLOCKS)
    return judge(metric(collected["control"]), metric(collected["treatment"]), RULE, ALPHA).status


def paired_trial(slowdown: float, per_block: int, seed: int, budget: float) -> tuple[str, float]:
    """What ``--aibench-ab-control`` does now: paired blocks, each side a fresh process (as a
    benchmark program is), both pinned to one CPU, until the sequential rule decides or the
    budget ends it inconclusive. The status and the seconds it took."""
    decision = SequentialAB([AB_RULE], ALPHA)
    factors = {"control": 1.0, "treatment": 1.0 + slowdown}
    order, shuffler, started = ["control", "treatment"], random.Random(seed), time.monotonic()
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(allowed)})
    try:
        while True:
            shuffler.shuffle(order)
            block = {side: collect_in_fresh_process(factors[side], per_block) for side in order}
            decision.add([metric(block["control"])], [metric(block["treatment"])])
            if decision.due() and (verdicts := decision.look()) is not None:
                break
            if time.monotonic() - started > budget:
                verdicts = decision.final()
                break
    finally:
        os.sched_setaffinity(0, allowed)
    return verdicts[0].status, time.monotonic() - started


ORT_LAYERS = 50


def ort_trial(folder: Path, slowdown: float) -> tuple[str, float]:
    """The in-process A/B through the command line: a chain model of ORT_LAYERS MatMul+Relu
    layers as the control (a base checkout under ``base/``) against one with ``slowdown`` more
    layers, ``--aibench-ab-control-root``. The verdict's status and the A/B seconds."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "specifications/models"))
    import make_mlp

    layers = {"base": ORT_LAYERS, ".": round(ORT_LAYERS * (1 + slowdown))}
    for root, count in layers.items():
        (folder / root / "models").mkdir(parents=True, exist_ok=True)
        (folder / root / "models/chain.onnx").write_bytes(make_mlp.chain_bytes(count))
    files = {"model": {"filename": "chain.onnx", "location": "models/chain.onnx"}}
    spec = {
        "model": {"name": "chain", "format": "onnx", "framework": "onnxruntime", "files": files},
        "tests": [{"identifier": "ab", "metric": "delay", "iter": 50, "warmup": 2}],
    }
    (folder / "chain.json").write_text(json.dumps(spec))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--aibench-spec=chain.json",
            "--aibench-ab-control-root=base",
            "--aibench-history=off",
            "--aibench-json=run.json",
        ],
        cwd=folder,
        capture_output=True,
        check=False,
    )
    item = json.loads((folder / "run.json").read_text())["items"][0]
    return item["verdicts"][0]["status"], item["extra"]["ab"]["seconds"]


def collect_in_fresh_process(factor: float, samples: int) -> list[float]:
    done = subprocess.run(
        [sys.executable, __file__, "--collect", str(samples), "--factor", str(factor)],
        capture_output=True,
        text=True,
        check=True,
    )
    return list(json.loads(done.stdout))


def stored_trial(slowdown: float, samples: int) -> tuple[str, bool]:
    control = collect_in_fresh_process(1.0, samples)
    treatment = collect_in_fresh_process(1.0 + slowdown, samples)
    status = judge(metric(control), metric(treatment), RULE, ALPHA).status
    ordered_c, ordered_t = sorted(control), sorted(treatment)
    peer_fails = ordered_t[len(ordered_t) // 2] > 1.05 * ordered_c[len(ordered_c) // 2]
    return status, peer_fails


PEER_TEST = """
import sys
sys.path.insert(0, {perf!r})
from detect import workload
run = workload({factor})
def test_work(benchmark):
    benchmark(run)
"""


def peer_trial(folder: Path, slowdown: float) -> bool:
    """The real pytest-benchmark: save a run of the unchanged workload, then compare a run of
    the (maybe) slower one with --benchmark-compare-fail=median:5%."""

    def pytest_benchmark(factor: float, *args: str) -> int:
        (folder / "test_work.py").write_text(
            PEER_TEST.format(perf=str(Path(__file__).parent), factor=factor)
        )
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:aibench",
                "-p",
                "no:cacheprovider",
                "--benchmark-storage",
                str(folder / "store"),
                *args,
                "test_work.py",
            ],
            cwd=folder,
            capture_output=True,
            check=False,
        ).returncode

    pytest_benchmark(1.0, "--benchmark-save=base")
    return (
        pytest_benchmark(
            1.0 + slowdown, "--benchmark-compare", "--benchmark-compare-fail=median:5%"
        )
        != 0
    )


def sequential_row(mode: str, slowdown: float, outcomes: list[tuple[str, float]]) -> list[bool]:
    """Which trials of a sequential mode failed; prints how many ran out of time undecided
    and the median seconds a trial took."""
    undecided = sum(status == "inconclusive" for status, _ in outcomes)
    seconds = sorted(s for _, s in outcomes)[len(outcomes) // 2]
    print(f"  {mode} +{slowdown:.0%}: {undecided} inconclusive, median {seconds:.1f} s per trial")
    return [status == "regressed" for status, _ in outcomes]


def rates(outcomes: dict[float, list[bool]]) -> str:
    cells = [f"{100 * sum(found) / len(found):5.1f}%" for _, found in sorted(outcomes.items())]
    caught = [s for s, found in sorted(outcomes.items()) if s and sum(found) >= 0.95 * len(found)]
    smallest = f"{caught[0]:.0%}" if caught else "none"
    return "  ".join(cells) + f"  {smallest:>8}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--samples", type=int, default=100, help="timed calls per side")
    parser.add_argument("--peer-trials", type=int, default=10)
    parser.add_argument(
        "--paired-trials", type=int, default=0, help="trials of the paired sequential A/B"
    )
    parser.add_argument("--per-block", type=int, default=10, help="paired A/B: calls per side")
    parser.add_argument(
        "--ort-trials", type=int, default=0, help="trials of the in-process ONNX Runtime A/B"
    )
    parser.add_argument("--budget", type=float, default=30.0, help="paired A/B: seconds")
    parser.add_argument("--collect", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--factor", type=float, default=1.0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.collect:  # child process of the stored-control mode
        run = workload(options.factor)
        timed(run, WARMUP)
        print(json.dumps(timed(run, options.collect)))
        return
    header = "  ".join(f"{'A/A' if s == 0 else f'+{s:.0%}':>6}" for s in SLOWDOWNS)
    print(
        f"trials {options.trials} (peer {options.peer_trials}), {options.samples} samples per "
        f"side, alpha {ALPHA}, min effect {RULE.min_effect:.0%}"
    )
    print(f"{'mode':<38} {header}  {'95% from':>8}  {'seconds':>7}")
    rows: dict[str, dict[float, list[bool]]] = {
        "pytest-aibench A/B in-process ORT": {},
        "pytest-aibench A/B paired, sequential": {},
        "pytest-aibench A/B (interleaved)": {},
        "pytest-aibench stored control": {},
        "pytest-benchmark rule, same samples": {},
        "pytest-benchmark (real), median:5%": {},
    }
    spent = dict.fromkeys(rows, 0.0)
    for slowdown in SLOWDOWNS:
        if options.ort_trials:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as name:
                ort = [ort_trial(Path(name), slowdown) for _ in range(options.ort_trials)]
            label = "pytest-aibench A/B in-process ORT"
            spent[label] += time.perf_counter() - started
            rows[label][slowdown] = sequential_row("ORT", slowdown, ort)
        if options.paired_trials:
            started = time.perf_counter()
            paired = [
                paired_trial(slowdown, options.per_block, seed, options.budget)
                for seed in range(options.paired_trials)
            ]
            label = "pytest-aibench A/B paired, sequential"
            spent[label] += time.perf_counter() - started
            rows[label][slowdown] = sequential_row("paired", slowdown, paired)
        if options.trials:
            started = time.perf_counter()
            rows["pytest-aibench A/B (interleaved)"][slowdown] = [
                ab_trial(slowdown, options.samples, seed) == "regressed"
                for seed in range(options.trials)
            ]
            spent["pytest-aibench A/B (interleaved)"] += time.perf_counter() - started
            started = time.perf_counter()
            stored = [stored_trial(slowdown, options.samples) for _ in range(options.trials)]
            spent["pytest-aibench stored control"] += time.perf_counter() - started
            rows["pytest-aibench stored control"][slowdown] = [s == "regressed" for s, _ in stored]
            rows["pytest-benchmark rule, same samples"][slowdown] = [peer for _, peer in stored]
        if options.peer_trials and slowdown in (0.0, 0.10):
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as name:
                rows["pytest-benchmark (real), median:5%"][slowdown] = [
                    peer_trial(Path(name), slowdown) for _ in range(options.peer_trials)
                ]
            spent["pytest-benchmark (real), median:5%"] += time.perf_counter() - started
    for label, outcomes in rows.items():
        if outcomes:
            missing = {s: outcomes.get(s, [False]) for s in SLOWDOWNS}
            line = (
                rates(missing)
                if len(outcomes) == len(SLOWDOWNS)
                else "  ".join(
                    f"{100 * sum(outcomes[s]) / len(outcomes[s]):5.1f}%"
                    if s in outcomes
                    else f"{'-':>6}"
                    for s in SLOWDOWNS
                )
                + f"  {'-':>8}"
            )
            print(f"{label:<38} {line}  {spent[label]:7.0f}")


if __name__ == "__main__":
    main()
