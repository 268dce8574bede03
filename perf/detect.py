#!/usr/bin/env python3
"""How well the regression gate tells a real slowdown from noise, on this machine.

Every trial goes through the command line, as a CI job would run it. The A/B workloads:

- program: a native benchmark program (C, built here with ``cc``, 0.25-0.5 ms of integer
  arithmetic per run, printing one observer row per run, as TFLite's benchmark_model or
  speed_benchmark_torch do); the control program against one doing s% more work,
  ``--aibench-ab-control``. Each block runs each program once, as a fresh process.
- ort: an ONNX Runtime model run in-process, a chain of 100 MatMul+Relu layers (80-250 us)
  in a base checkout against a chain with s% more layers, ``--aibench-ab-control-root``.
- conv: a convolutional network with ONNX Runtime's default threads (nothing set in the spec):
  20 Conv 3x3 16->16 + Relu layers on 1x16x56x56 (about 2 ms on two threads); the treatment
  adds s% of the FLOPs (whole layers, then one on a slice of the rows), through
  ``--aibench-ab-control-root``.
- memory: a memory-bound native program (perf/programs/pointer_chase.c: 100,000 dependent
  loads a run through a random cycle over 4 MiB), ``--aibench-ab-control``.
- python: a pure-Python program (perf/programs/python_work.py: list building, a sort, a
  dict), ``--aibench-ab-control``.

``--check-detectable`` checks what the verdicts state: after a workload's A/A trials, trials
at the median change they said they detect (the change caught 9 times in 10).

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
CONV_LAYERS, CONV_CHANNELS, CONV_SIDE = 20, 16, 56
PROGRAMS = ROOT / "perf/programs"

PROGRAM_SOURCE = ROOT / "specifications/programs/busy_loop.c"


def build_program(folder: Path, factor: float, source: Path = PROGRAM_SOURCE) -> Path:
    """The benchmark program doing ``factor`` times the base work: a copy of one build, so
    that both sides run the same machine code."""
    built = folder / source.stem
    if not built.exists():
        compile_it = ["cc", "-O1", f"-DWORK={PROGRAM_WORK}", "-o", str(built), str(source)]
        subprocess.run(compile_it, cwd=folder, check=True)
    binary = folder / f"{source.stem}-{factor:.3f}"
    shutil.copy2(built, binary)
    return binary


def python_program(folder: Path, factor: float) -> Path:
    """The pure-Python program doing ``factor`` times the base work (a copy named for it)."""
    script = folder / f"python_work-{factor:.3f}.py"
    shutil.copy2(PROGRAMS / "python_work.py", script)
    script.chmod(0o755)
    return script


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
    return program_items(folder, control, treatment, tests)


def memory_run(folder: Path, slowdown: float, tests: int) -> list[Any]:
    source = PROGRAMS / "pointer_chase.c"
    control = build_program(folder, 1.0, source)
    return program_items(folder, control, build_program(folder, 1.0 + slowdown, source), tests)


def python_run(folder: Path, slowdown: float, tests: int) -> list[Any]:
    control, treatment = python_program(folder, 1.0), python_program(folder, 1.0 + slowdown)
    return program_items(folder, control, treatment, tests)


def program_items(folder: Path, control: Path, treatment: Path, tests: int) -> list[Any]:
    body = spec(tests, format="generic", commands=["{program} {warmup} {iter}"])
    return pytest_items(
        folder,
        body,
        f"--aibench-ab-control={control}",
        f"--aibench-program={treatment}",
    )


def conv_bytes(extra: float) -> bytes:
    """The conv network with ``extra`` more FLOPs (0.05: 5%): whole layers, then one more
    layer on a slice of the rows of the last activation (a second output)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    side, channels = CONV_SIDE, CONV_CHANNELS
    shape = [1, channels, side, side]
    layers = CONV_LAYERS * extra
    whole, rows = int(layers), round((layers - int(layers)) * side)
    nodes, weights, outputs, last = [], [], [], "x"

    def conv(source: str, name: str) -> str:
        kernel = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32) * 0.1
        weights.append(numpy_helper.from_array(kernel, f"{name}_w"))
        nodes.append(helper.make_node("Conv", [source, f"{name}_w"], [f"{name}_c"], pads=[1] * 4))
        nodes.append(helper.make_node("Relu", [f"{name}_c"], [name]))
        return name

    for index in range(CONV_LAYERS + whole):
        last = conv(last, f"layer{index}")
    outputs.append(helper.make_tensor_value_info(last, TensorProto.FLOAT, shape))
    if rows:
        for name, values in (("starts", [0]), ("ends", [rows]), ("axes", [2])):
            weights.append(numpy_helper.from_array(np.array(values, np.int64), name))
        nodes.append(helper.make_node("Slice", [last, "starts", "ends", "axes"], ["rows"]))
        sliced = conv("rows", "extra")
        outputs.append(
            helper.make_tensor_value_info(sliced, TensorProto.FLOAT, [1, channels, rows, side])
        )
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)]
    graph = helper.make_graph(nodes, "conv", inputs, outputs, weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def conv_run(folder: Path, slowdown: float, tests: int) -> list[Any]:
    for root, extra in {"base": 0.0, ".": slowdown}.items():
        (folder / root / "models").mkdir(parents=True, exist_ok=True)
        (folder / root / "models/conv.onnx").write_bytes(conv_bytes(extra))
    files = {"model": {"filename": "conv.onnx", "location": "models/conv.onnx"}}
    body = spec(tests, format="onnx", framework="onnxruntime", files=files)
    return pytest_items(folder, body, "--aibench-ab-control-root=base")


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
    (net,) = [m for m in metrics if (m["type"], m["metric"]) == ("NET", "latency")]
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
    detectable: float | None  # the change it says it catches 9 times in 10


def ab_trials(workload: str, slowdown: float, trials: int, per_run: int) -> list[Trial]:
    run = WORKLOADS[workload]
    outcomes: list[Trial] = []
    while len(outcomes) < trials:
        with tempfile.TemporaryDirectory() as name:
            for item in run(Path(name), slowdown, min(per_run, trials - len(outcomes))):
                ab = item["extra"]["ab"]
                benchmark, asv = peer_rules(values(ab["control"]), values(item["metrics"]))
                verdict = item["verdicts"][0]
                ratio = verdict["treatment"] / verdict["control"]
                outcomes.append(
                    Trial(
                        verdict["status"],
                        ab["seconds"],
                        ratio,
                        benchmark,
                        asv,
                        verdict.get("detectable"),
                    )
                )
    return outcomes


WORKLOADS = {
    "program": program_run,
    "ort": ort_run,
    "conv": conv_run,
    "memory": memory_run,
    "python": python_run,
}
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


def wilson(hits: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a rate of ``hits`` in ``trials``."""
    rate = hits / trials
    centre = (rate + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = (
        z / (1 + z * z / trials) * (rate * (1 - rate) / trials + z * z / (4 * trials**2)) ** 0.5
    )
    return max(0.0, centre - spread), min(1.0, centre + spread)


def rate(hits: list[bool]) -> str:
    """``9/10 [60-98]``: hits of trials, and the rate's 95% interval in percent."""
    low, high = wilson(sum(hits), len(hits))
    return f"{sum(hits)}/{len(hits)} [{low:.0%}-{high:.0%}]".replace("%", "")


CELL = 15


def row(label: str, found: dict[float, list[bool]], seconds: float | None) -> str:
    cells = []
    for slowdown in SLOWDOWNS:
        hits = found.get(slowdown)
        cells.append(f"{rate(hits) if hits else '-':>{CELL}}")
    caught = [s for s, hits in sorted(found.items()) if s and sum(hits) >= 0.95 * len(hits)]
    smallest = f"{caught[0]:.0%}" if caught else "none"
    per_trial = f"{seconds:7.1f}" if seconds is not None else f"{'-':>7}"
    return f"{label:<40}{''.join(cells)}  {smallest:>8}  {per_trial}"


def ab_rows(
    workload: str, slowdowns: list[float], counts: tuple[int, int, int], check: bool
) -> list[str]:
    aa_trials, trials, per_run = counts
    found: dict[str, dict[float, list[bool]]] = {"aibench": {}, "benchmark": {}, "asv": {}}
    seconds: list[float] = []
    stated: list[float] = []
    for slowdown in slowdowns:
        outcomes = ab_trials(workload, slowdown, aa_trials if slowdown == 0 else trials, per_run)
        describe(f"{workload} +{slowdown:.0%}", outcomes)
        seconds += [o.seconds for o in outcomes]
        found["aibench"][slowdown] = [o.status == "regressed" for o in outcomes]
        found["benchmark"][slowdown] = [o.benchmark for o in outcomes]
        found["asv"][slowdown] = [o.asv for o in outcomes]
        if slowdown == 0:
            stated = [o.detectable for o in outcomes if o.detectable is not None]
    lines = [
        row(f"A/B {workload}: pytest-aibench", found["aibench"], statistics.mean(seconds)),
        row("  same samples: pytest-benchmark 5%", found["benchmark"], None),
        row("  same samples: asv (1.1, p<0.002)", found["asv"], None),
    ]
    if check and stated:
        size = statistics.median(stated)
        outcomes = ab_trials(workload, size, trials, per_run)
        describe(f"{workload} at its stated +{size:.1%}", outcomes)
        hits = [o.status == "regressed" for o in outcomes]
        lines.append(
            f"  stated by A/A: +{size:.1%} caught 9 times in 10; at +{size:.1%}: {rate(hits)}"
        )
    return lines


def describe(label: str, outcomes: list[Trial]) -> None:
    """One condition's outcomes as they come: verdicts, seconds, the measured change."""
    statuses = [o.status for o in outcomes]
    spent = [o.seconds for o in outcomes]
    print(
        f"  {label}: "
        + ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses)))
        + f"; median {statistics.median(spent):.1f} s, max {max(spent):.1f} s"
        + f"; measured {statistics.median(o.ratio for o in outcomes) - 1:+.2%}",
        flush=True,
    )


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
    parser.add_argument("--workloads", nargs="*", default=["program", "ort"], choices=WORKLOADS)
    parser.add_argument("--stored-trials", type=int, default=200)
    parser.add_argument("--load", type=int, default=0, help="busy processes meanwhile")
    parser.add_argument(
        "--slowdowns", nargs="*", type=float, default=list(SLOWDOWNS), help="0 is A/A"
    )
    parser.add_argument(
        "--check-detectable",
        action="store_true",
        help="after the A/A trials, trials at the change their verdicts say they catch",
    )
    options = parser.parse_args()
    condition = f"{options.load} busy process(es) in the background" if options.load else "idle"
    print(f"{condition}; A/A trials {options.aa_trials}, {options.trials} per slowdown")
    print("each cell: trials that regressed / trials [95% Wilson interval of the rate, %]")
    header = "".join(f"{'A/A' if s == 0 else f'+{s:.0%}':>{CELL}}" for s in SLOWDOWNS)
    lines = [f"{'mode':<40}{header}  {'95% from':>8}  {'s/trial':>7}"]
    counts = (options.aa_trials, options.trials, options.per_run)
    with background_load(options.load):
        for workload in options.workloads:
            lines += ab_rows(workload, options.slowdowns, counts, options.check_detectable)
        if options.stored_trials:
            lines += stored_rows(options.slowdowns, options.stored_trials, options.trials)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
