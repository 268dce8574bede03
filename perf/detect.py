#!/usr/bin/env python3
"""How well the regression gate tells a real slowdown from noise, on this machine.

Every trial goes through the command line, as a CI job would run it. Two A/B workloads:

- program: a native benchmark program (C, built here with ``cc``, 0.25-0.5 ms of integer
  arithmetic per run, printing one observer row per run, as TFLite's benchmark_model or
  speed_benchmark_torch do); the control program against one doing s% more work,
  ``--aibench-ab-control``. Each block runs each program once, as a fresh process.
- ort: an ONNX Runtime model run in-process, a chain of 100 MatMul+Relu layers (80-250 us)
  in a base checkout against a chain with s% more layers, ``--aibench-ab-control-root``.

A trial is one spec item; one pytest run holds ``--per-run`` items (one process start for
several trials). The verdict is pytest-aibench's paired sequential rule at its defaults (1.5%
minimum effect, alpha 0.01, 30 s budget); beside it, on the same samples (all of a side's
A/B samples pooled), pytest-benchmark's ``--benchmark-compare-fail=median:5%`` (the median
more than 5% slower) and asv continuous's rule (ratio of medians beyond 1.1 and Mann-Whitney
U p < 0.002).

Stored mode (``--stored-trials``): each run is a fresh process of the program's workload (50
runs); the treatment run is judged against one stored run (statistics.judge, the
``--aibench-compare`` gate) and against the spread of five (statistics.judge_across_runs,
``--aibench-compare-runs 5``).

``--load N`` runs N busy processes (a pure-Python loop each) in the background for the whole
measurement: 1 leaves the A/B its CPU (another job on the runner), 2 on this 2-core machine
shares it.

Prints per mode and condition the false-alarm rate over the A/A trials, the detection rate per
slowdown, the smallest slowdown caught in at least 95% of trials, and seconds per trial.

    python perf/detect.py [--aa-trials 200] [--trials 40] [--workloads program ort] [--load N]
                          [--stored-trials 200] [--slowdowns 0 0.01 0.02 0.03 0.05 0.1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "specifications/models"  # make_mlp.py, the chain models' maker
SLOWDOWNS = (0.0, 0.01, 0.02, 0.03, 0.05, 0.10)
ALPHA = 0.01
PROGRAM_WORK = 300_000
ORT_LAYERS = 100

PROGRAM_SOURCE = ROOT / "specifications/programs/busy_loop.c"


def build_program(folder: Path, factor: float) -> Path:
    """The benchmark program doing ``factor`` times the base work: a copy of one build, so
    that both sides run the same machine code."""
    built = folder / "work"
    if not built.exists():
        source = str(PROGRAM_SOURCE)
        compile_it = ["cc", "-O1", f"-DWORK={PROGRAM_WORK}", "-o", str(built), source]
        subprocess.run(compile_it, cwd=folder, check=True)
    binary = folder / f"work-{factor:.3f}"
    shutil.copy2(built, binary)
    return binary


def spec(tests: int, *, commands: list[str] | None = None, **model: object) -> dict[str, Any]:
    test = {
        "metric": "delay",
        "iter": 50,
        "warmup": 1,
        **({"commands": commands} if commands else {}),
    }
    return {
        "model": {"name": "detect", **model},
        "tests": [{"identifier": f"t{index}", **test} for index in range(tests)],
    }


def program_run(folder: Path, slowdown: float, tests: int) -> list[Any]:
    control, treatment = build_program(folder, 1.0), build_program(folder, 1.0 + slowdown)
    body = spec(tests, format="generic", commands=["{program} {warmup} {iter}"])
    return pytest_items(
        folder,
        body,
        f"--aibench-ab-control={control}",
        f"--aibench-program={treatment}",
    )


def ort_run(folder: Path, slowdown: float, tests: int) -> list[Any]:
    if str(MODELS) not in sys.path:
        sys.path.insert(0, str(MODELS))
    import make_mlp

    layers = {"base": ORT_LAYERS, ".": round(ORT_LAYERS * (1 + slowdown))}
    for root, count in layers.items():
        (folder / root / "models").mkdir(parents=True, exist_ok=True)
        (folder / root / "models/chain.onnx").write_bytes(make_mlp.chain_bytes(count))
    files = {"model": {"filename": "chain.onnx", "location": "models/chain.onnx"}}
    body = spec(tests, format="onnx", framework="onnxruntime", files=files)
    return pytest_items(folder, body, "--aibench-ab-control-root=base")


def pytest_items(folder: Path, body: dict[str, Any], *options: str) -> list[Any]:
    """Run the spec's items through pytest; each item's record from the run file."""
    (folder / "detect.json").write_text(json.dumps(body))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--aibench-spec=detect.json",
            "--aibench-history=off",
            "--aibench-json=run.json",
            *options,
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise SystemExit(f"pytest exited {done.returncode}:\n{done.stdout[-3000:]}")
    return list(json.loads((folder / "run.json").read_text())["items"])


def values(metrics: list[Any]) -> list[float]:
    (net,) = [m for m in metrics if m["type"] == "NET"]
    return list(net["values"])


def peer_rules(control: list[float], treatment: list[float]) -> tuple[bool, bool]:
    """Whether pytest-benchmark's median:5% and asv continuous's rule call this slower."""
    from scipy.stats import mannwhitneyu

    ratio = statistics.median(treatment) / statistics.median(control)
    p_value = mannwhitneyu(treatment, control, alternative="two-sided").pvalue
    return ratio > 1.05, ratio > 1.1 and p_value < 0.002


@dataclass
class Trial:
    """One A/B item: pytest-aibench's verdict and seconds, and the peers' calls."""

    status: str
    seconds: float
    ratio: float  # the A/B's estimate of treatment / control
    benchmark: bool
    asv: bool


def ab_trials(workload: str, slowdown: float, trials: int, per_run: int) -> list[Trial]:
    run = {"program": program_run, "ort": ort_run}[workload]
    outcomes: list[Trial] = []
    while len(outcomes) < trials:
        with tempfile.TemporaryDirectory() as name:
            for item in run(Path(name), slowdown, min(per_run, trials - len(outcomes))):
                ab = item["extra"]["ab"]
                benchmark, asv = peer_rules(values(ab["control"]), values(item["metrics"]))
                verdict = item["verdicts"][0]
                ratio = verdict["treatment"] / verdict["control"]
                outcomes.append(Trial(verdict["status"], ab["seconds"], ratio, benchmark, asv))
    return outcomes


STORED_RUNS = 5


def stored_trials(slowdown: float, trials: int, folder: Path) -> list[dict[str, bool]]:
    """Stored mode: a fresh run of the treatment against one and against five earlier runs."""
    from pytest_aibench.metrics import MetricRecord
    from pytest_aibench.records import MetricDict
    from pytest_aibench.verdicts.rules import Rule
    from pytest_aibench.verdicts.statistics import judge, judge_across_runs

    rule = Rule("NET latency", "p50", 0.05)
    control_program, program = build_program(folder, 1.0), build_program(folder, 1 + slowdown)

    def fresh_run(binary: Path) -> MetricDict:
        out = subprocess.run([str(binary), "1", "50"], capture_output=True, text=True, check=True)
        samples = [json.loads(line.split(" ", 1)[1])["value"] for line in out.stdout.splitlines()]
        return MetricRecord("NET", "latency", "us", samples).to_dict()

    outcomes = []
    for _ in range(trials):
        controls = [fresh_run(control_program) for _ in range(STORED_RUNS)]
        treatment = fresh_run(program)
        benchmark, asv = peer_rules(values([controls[-1]]), values([treatment]))
        outcomes.append(
            {
                "one run": judge(controls[-1], treatment, rule, ALPHA).status == "regressed",
                "five runs": judge_across_runs(controls, treatment, rule, ALPHA).status
                == "regressed",
                "pytest-benchmark": benchmark,
                "asv": asv,
            }
        )
    return outcomes


def busy() -> None:
    while True:
        pass


@contextmanager
def background_load(processes: int) -> Iterator[None]:
    """``processes`` busy processes for the whole measurement."""
    workers = [multiprocessing.Process(target=busy, daemon=True) for _ in range(processes)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()


def row(label: str, found: dict[float, list[bool]], seconds: float | None) -> str:
    cells = []
    for slowdown in SLOWDOWNS:
        hits = found.get(slowdown)
        cells.append(f"{100 * sum(hits) / len(hits):6.1f}%" if hits else f"{'-':>7}")
    caught = [s for s, hits in sorted(found.items()) if s and sum(hits) >= 0.95 * len(hits)]
    smallest = f"{caught[0]:.0%}" if caught else "none"
    per_trial = f"{seconds:7.1f}" if seconds is not None else f"{'-':>7}"
    return f"{label:<40}{''.join(cells)}  {smallest:>8}  {per_trial}"


def ab_rows(
    workload: str, slowdowns: list[float], aa_trials: int, trials: int, per_run: int
) -> list[str]:
    found: dict[str, dict[float, list[bool]]] = {"aibench": {}, "benchmark": {}, "asv": {}}
    seconds: list[float] = []
    for slowdown in slowdowns:
        outcomes = ab_trials(workload, slowdown, aa_trials if slowdown == 0 else trials, per_run)
        statuses = [o.status for o in outcomes]
        spent = [o.seconds for o in outcomes]
        print(
            f"  {workload} +{slowdown:.0%}: "
            + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
            + f"; median {statistics.median(spent):.1f} s, max {max(spent):.1f} s"
            + f"; measured {statistics.median(o.ratio for o in outcomes) - 1:+.2%}",
            flush=True,
        )
        seconds += spent
        found["aibench"][slowdown] = [o.status == "regressed" for o in outcomes]
        found["benchmark"][slowdown] = [o.benchmark for o in outcomes]
        found["asv"][slowdown] = [o.asv for o in outcomes]
    return [
        row(f"A/B {workload}: pytest-aibench", found["aibench"], statistics.mean(seconds)),
        row("  same samples: pytest-benchmark 5%", found["benchmark"], None),
        row("  same samples: asv (1.1, p<0.002)", found["asv"], None),
    ]


def stored_rows(slowdowns: list[float], aa_trials: int, trials: int) -> list[str]:
    found: dict[str, dict[float, list[bool]]] = {}
    with tempfile.TemporaryDirectory() as name:
        for slowdown in slowdowns:
            count = aa_trials if slowdown == 0 else trials
            for outcome in stored_trials(slowdown, count, Path(name)):
                for label, hit in outcome.items():
                    found.setdefault(label, {}).setdefault(slowdown, []).append(hit)
    return [row(f"stored: {label}", hits, None) for label, hits in found.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aa-trials", type=int, default=200, help="A/A trials per workload")
    parser.add_argument("--trials", type=int, default=40, help="trials per slowdown")
    parser.add_argument("--per-run", type=int, default=20, help="trials per pytest run")
    parser.add_argument("--workloads", nargs="*", default=["program", "ort"])
    parser.add_argument("--stored-trials", type=int, default=200)
    parser.add_argument("--load", type=int, default=0, help="busy processes meanwhile")
    parser.add_argument(
        "--slowdowns", nargs="*", type=float, default=list(SLOWDOWNS), help="0 is A/A"
    )
    options = parser.parse_args()
    condition = f"{options.load} busy process(es) in the background" if options.load else "idle"
    print(f"{condition}; A/A trials {options.aa_trials}, {options.trials} per slowdown")
    header = "".join(f"{'A/A' if s == 0 else f'+{s:.0%}':>8}" for s in SLOWDOWNS)
    lines = [f"{'mode':<40}{header}  {'95% from':>8}  {'s/trial':>7}"]
    with background_load(options.load):
        for workload in options.workloads:
            lines += ab_rows(
                workload, options.slowdowns, options.aa_trials, options.trials, options.per_run
            )
        if options.stored_trials:
            lines += stored_rows(options.slowdowns, options.stored_trials, options.trials)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
