"""One case, start to end: fresh folders, the runner's run, cleanup even when it fails; in A/B
mode, control and treatment programs interleaved on the same device and judged."""

from __future__ import annotations

import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .devices.base import Device
from .energy import PowerSource
from .energy.sources import open_source
from .errors import Regression, RunnerError
from .options import Settings
from .parsers.observer import DEFAULT_PREFIXES
from .recorder import Recorder
from .records import INCONCLUSIVE, MetricDict

if TYPE_CHECKING:
    from .sides import Side, Sides
from .runners.base import CaseFiles, RunContext, Runner, RunsCommands
from .runners.power import measuring_energy, trace_file
from .spec.model import Case
from .verdicts import Rule, Tolerance, Verdict, ab_failure, ab_inconclusive, regressed
from .verdicts.gate import rules_for
from .verdicts.sequential import SequentialAB

DEFAULT_ITERATIONS = 50
DEFAULT_WARMUP = 1


def effective_counts(case: Case, settings: Settings) -> tuple[int, int]:
    """Iterations and warmup: the command line's if given, else the spec's, else defaults."""
    iterations = settings.iterations or case.iterations or DEFAULT_ITERATIONS
    warmup = settings.warmup if settings.warmup is not None else case.test.get("warmup")
    return iterations, DEFAULT_WARMUP if warmup is None else int(warmup)


def observer_prefixes(settings: Settings) -> tuple[str, ...]:
    extra = settings.observer_prefix
    return (extra, *DEFAULT_PREFIXES) if extra else DEFAULT_PREFIXES


@dataclass
class Execution:
    """Everything that stays the same between the runs of one case."""

    case: Case
    runner: Runner
    device: Device
    files: CaseFiles
    settings: Settings
    scratch: Path
    host: Device | None = None
    traces: Path | None = None  # folder for power traces
    control_files: CaseFiles | None = None  # A/B: the files under --aibench-ab-control-root
    outputs: Path | None = None  # --aibench-reference: where outputs wait for the agreement

    def tolerance(self) -> Tolerance:
        return self.settings.error_tolerance or Tolerance()

    def open_power_source(self) -> PowerSource:
        settings = self.settings
        return open_source(
            self.case, self.device, settings.power, settings.monsoon_map, settings.rapl_root
        )

    def run(self, recorder: Recorder, program: str | None, iterations: int) -> None:
        """One run of the case in fresh folders, its metrics into ``recorder``."""
        settings, warmup = self.settings, effective_counts(self.case, self.settings)[1]
        power_test = self.case.metric == "power"
        if power_test and not self.runs_commands(program):
            raise RunnerError(
                f"{self.case.where}: a power test runs a program: give the test "
                "'commands' (FAI-PEP's power specs run {program})"
            )
        self.scratch.mkdir(parents=True, exist_ok=True)
        hostdir = Path(tempfile.mkdtemp(prefix="hostdir-", dir=self.scratch))
        workdir = self.device.new_workdir()
        trace_path = trace_file(
            self.traces, f"{self.case.name}-{self.case.identifier}-{self.device.info.id}"
        )
        energy = self.open_power_source if settings.energy and not power_test else None
        try:
            with measuring_energy(energy, recorder, iterations + warmup, trace_path):
                self.runner.run(
                    RunContext(
                        case=self.case,
                        device=self.device,
                        files=self.files,
                        recorder=recorder,
                        workdir=workdir,
                        hostdir=hostdir,
                        iterations=iterations,
                        warmup=warmup,
                        timeout=self.case.timeout(settings.timeout),
                        program=program,
                        observer_prefixes=observer_prefixes(settings),
                        tolerance=self.tolerance(),
                        backend=settings.backend,
                        host=self.host,
                        power=self.open_power_source if power_test else None,
                        trace_path=trace_path,
                        outputs_dir=self.outputs,
                    )
                )
        finally:
            self.device.remove_workdir(workdir)
            shutil.rmtree(hostdir, ignore_errors=True)

    def runs_commands(self, program: str | None) -> list[str]:
        if isinstance(self.runner, RunsCommands):
            return list(self.runner.commands(self.case, program))
        return []

    def runs_program(self) -> bool:
        """A/B needs a program to swap: the case's commands must run ``{program}``."""
        return any("{program}" in command for command in self.runs_commands(self.settings.program))


COLD_METRICS = ("load", "first_inference", "peak_memory", "memory_increment")
IN_PROCESS_RUNNERS = ("onnxruntime", "tflite", "pytorch")  # what worker.py can run afresh


def cold_start_in_fresh_processes(execution: Execution, recorder: Recorder, count: int) -> None:
    """--aibench-cold N: the cold-start metrics again, one sample from each of N fresh
    processes (worker.py, as A/B's sides run), replacing the one measured in pytest's process,
    where other items ran before and the file cache is warm from the run just done."""
    from .worker import Block, WorkerProcess

    block = Block(
        runner=execution.runner.name,
        case=execution.case,
        files=execution.files,
        iterations=1,
        warmup=0,
        timeout=execution.case.timeout(execution.settings.timeout),
        backend=execution.settings.backend,
        tolerance=execution.tolerance(),
        observer_prefixes=observer_prefixes(execution.settings),
    )
    samples: dict[str, list[float]] = {}
    units: dict[str, str] = {}
    for _ in range(count):
        worker = WorkerProcess(sys.executable)
        try:
            fresh = worker.run(block)
        finally:
            worker.close()
        for name in COLD_METRICS:
            if (record := fresh.records.get(f"NET {name}")) is not None:
                samples.setdefault(name, []).extend(record.values)
                units[name] = record.unit
    for name, values in samples.items():
        recorder.records.pop(f"NET {name}", None)
        recorder.record("NET", name, units[name], values)
    recorder.extra["cold"] = {"fresh_processes": count}


def execute(execution: Execution, recorder: Recorder) -> None:
    """Run the case once, or, in A/B mode, interleaved with its control side (sides.py)."""
    from .sides import ab_sides

    settings = execution.settings
    iterations = effective_counts(execution.case, settings)[0]
    sides = ab_sides(execution)
    if sides is None:
        execution.run(recorder, settings.program, iterations)
        in_process = execution.runner.name in IN_PROCESS_RUNNERS
        if settings.cold and in_process and not execution.runs_commands(settings.program):
            cold_start_in_fresh_processes(execution, recorder, settings.cold)
        return
    try:
        run_ab(execution, sides, recorder, iterations)
    finally:
        sides.close()


@dataclass
class ABRun:
    """One A/B run of an item: both sides' samples, the verdicts, how many blocks it took."""

    control: Recorder
    treatment: Recorder
    verdicts: list[Verdict]
    blocks: int
    seconds: float


def ab_rules(execution: Execution, metrics: Sequence[MetricDict]) -> list[Rule]:
    settings = execution.settings
    return rules_for(metrics, settings.fail_on, settings.ab_min_effect)


TURN = 5  # calls per turn when the sides take turns inside a block
EARLY_EPOCHS = (4, 7)  # blocks after which workers restart before the first look (at 10)


def interleave(execution: Execution, sides: Sides, iterations: int, seed: int) -> ABRun:
    """Control and treatment in blocks on one device, each side once per block (its own warmup
    included) in an order shuffled per block, with a cooldown between blocks. Blocks continue
    until the sequential rule decides every gated metric or ``--aibench-ab-max-time`` runs
    out (verdicts/sequential.py). Worker sides restart after blocks 4 and 7 and after every
    look that leaves the item undecided, so that the blocks come from several processes."""
    settings = execution.settings
    runs = {"control": sides.control, "treatment": sides.treatment}
    samples = {"control": Recorder(1, 0), "treatment": Recorder(1, 0)}
    per_block = max(1, math.ceil(iterations / settings.ab_blocks))
    warmup = effective_counts(execution.case, settings)[1]
    shuffler = random.Random(seed)
    decision: SequentialAB | None = None
    started = time.monotonic()
    blocks, verdicts = 0, None
    while verdicts is None:
        block = _block(runs, per_block, warmup, shuffler)
        for side in runs:
            samples[side].merge(block[side])
        control, treatment = (block[s].results()["metrics"] for s in ("control", "treatment"))
        decision = decision or SequentialAB(ab_rules(execution, treatment), settings.alpha)
        decision.add(control, treatment)
        blocks += 1
        looks = decision.looks
        verdicts = _decided(decision, blocks, time.monotonic() - started, settings)
        if verdicts is None and (decision.looks > looks or blocks in EARLY_EPOCHS):
            # A new epoch: fresh workers, the model loaded again. Two processes (or two
            # sessions) of identical code differ by a steady 0.2-0.5% that pairing cannot
            # cancel (measured here); over several epochs it averages out instead of
            # deciding the item.
            sides.restart()
        if verdicts is None and settings.cooldown:
            time.sleep(settings.cooldown)
    seconds = time.monotonic() - started
    return ABRun(samples["control"], samples["treatment"], verdicts, blocks, seconds)


def _block(
    runs: dict[str, Side], per_block: int, warmup: int, shuffler: random.Random
) -> dict[str, Recorder]:
    """One block: each side's ``per_block`` runs. Sides that can time more calls in place
    (workers) take turns of TURN calls in shuffled order, so that the two sides' samples lie
    milliseconds apart throughout the block: this machine's speed switches between regimes
    within a fraction of a second, and samples this close share one (measured: a pair's spread
    1.5% in turns of 5 calls, 8% in blocks of 50). Other sides run whole, one after the other."""
    order = list(runs)
    shuffler.shuffle(order)
    block = {side: Recorder(1, 0) for side in order}
    timers = {side: timer for side in order if (timer := runs[side].timer()) is not None}
    if len(timers) < len(order):
        for side in order:
            runs[side].run_block(block[side], per_block)
        return block
    taken: dict[str, list[float]] = {side: [] for side in order}
    for done in range(0, per_block, TURN):
        for side in order:
            taken[side] += timers[side](min(TURN, per_block - done), warmup if done == 0 else 0)
        shuffler.shuffle(order)
    for side, values in taken.items():
        block[side].record("NET", "latency", "us", values)
    return block


def _decided(
    decision: SequentialAB, blocks: int, elapsed: float, settings: Settings
) -> list[Verdict] | None:
    """The verdicts once the rule decides or the time budget is spent; ``None``: one more
    block. The blocks asked for (``--aibench-ab-blocks``) come first, budget or not."""
    if blocks < settings.ab_blocks:
        return None
    if not decision.series:
        return []  # no metric of the item is gated: nothing to decide
    if decision.due() and (verdicts := decision.look()) is not None:
        return verdicts
    return decision.final() if elapsed > settings.ab_max_time else None


@contextmanager
def pinned(device: Device) -> Iterator[None]:
    """Both A/B sides on one CPU where the device allows (the host: this process and the
    programs it starts), so that neither side gets a faster core than the other."""
    if device.info.kind != "host" or not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {max(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def run_ab(execution: Execution, sides: Sides, recorder: Recorder, iterations: int) -> None:
    """A/B, then up to ``--aibench-verify`` re-runs of a suspected regression: the item fails
    only if every run regresses (or, with ``--aibench-fail-inconclusive``, stays undecided)."""
    settings = execution.settings
    attempts = 1 + max(0, settings.verify)
    with pinned(execution.device):
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                # A re-run starts afresh (new workers, the model loaded again): whatever offset
                # stays with a worker process and its loaded sessions (two processes of identical
                # code differ here by +0.8%) no pair can cancel; a fresh start does, and a real
                # regression survives it.
                sides.close()
            ab = interleave(execution, sides, iterations, settings.seed + attempt - 1)
            regressions = regressed(ab.verdicts)
            if not regressions:
                break
    _keep(recorder, ab, attempt)
    control = sides.label
    if regressions:
        raise Regression(ab_failure(control, attempt, attempts, regressions))
    undecided = [v for v in ab.verdicts if v.status == INCONCLUSIVE]
    if undecided and settings.fail_inconclusive:
        raise Regression(ab_inconclusive(control, ab.blocks, ab.seconds, undecided))


def _keep(recorder: Recorder, ab: ABRun, attempts: int) -> None:
    """The last A/B run's treatment samples are the item's; the control's go in its extra."""
    recorder.merge(ab.treatment)
    recorder.extra["ab"] = {
        "control": ab.control.results()["metrics"],
        "runs": attempts,
        "blocks": ab.blocks,
        "seconds": round(ab.seconds, 3),
    }
    recorder.comparison = "ab"
    recorder.verdicts = [verdict.to_dict() for verdict in ab.verdicts]
