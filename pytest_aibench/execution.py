"""One case, start to end: fresh folders, the runner's run, cleanup even when it fails; in A/B
mode, control and treatment programs interleaved on the same device and judged."""

from __future__ import annotations

import math
import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .devices.base import Device
from .energy import PowerSource
from .energy.sources import open_source
from .errors import Regression, RunnerError
from .options import Settings
from .parsers.observer import DEFAULT_PREFIXES
from .recorder import Recorder
from .runners.base import CaseFiles, RunContext, Runner, RunsCommands
from .runners.power import measuring_energy, trace_file
from .spec.model import Case
from .verdicts import Tolerance, Verdict, ab_failure, compare_items, regressed

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
                        tolerance=settings.error_tolerance or Tolerance(),
                        backend=settings.backend,
                        host=self.host,
                        power=self.open_power_source if power_test else None,
                        trace_path=trace_path,
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


def execute(execution: Execution, recorder: Recorder) -> None:
    """Run the case once, or, in A/B mode, interleaved with the control program."""
    settings = execution.settings
    iterations = effective_counts(execution.case, settings)[0]
    if settings.ab_control and execution.runs_program():
        run_ab(execution, recorder, iterations)
    else:
        execution.run(recorder, settings.program, iterations)


def interleave(execution: Execution, iterations: int, seed: int) -> tuple[Recorder, Recorder]:
    """Control and treatment in blocks on one device: each block runs both programs (its own
    warmup included), in an order shuffled per block, with a cooldown between blocks."""
    settings = execution.settings
    sides = {"control": Recorder(1, 0), "treatment": Recorder(1, 0)}
    programs = {"control": settings.ab_control, "treatment": settings.program}
    per_block = max(1, math.ceil(iterations / settings.ab_blocks))
    order = ["control", "treatment"]
    shuffler = random.Random(seed)
    for block in range(settings.ab_blocks):
        shuffler.shuffle(order)
        for side in order:
            execution.run(sides[side], programs[side], per_block)
        if settings.cooldown and block + 1 < settings.ab_blocks:
            time.sleep(settings.cooldown)
    return sides["control"], sides["treatment"]


def run_ab(execution: Execution, recorder: Recorder, iterations: int) -> None:
    """A/B, then up to ``--aibench-verify`` re-runs of a suspected regression: the item fails
    only if every run regresses."""
    settings = execution.settings
    attempts = 1 + max(0, settings.verify)
    for attempt in range(1, attempts + 1):
        control, treatment = interleave(execution, iterations, settings.seed + attempt - 1)
        verdicts = compare_items(
            control.results()["metrics"],
            treatment.results()["metrics"],
            settings.fail_on,
            settings.min_effect,
            settings.alpha,
        )
        regressions = regressed(verdicts)
        if not regressions:
            break
    _keep(recorder, treatment, control, verdicts, attempt)
    if regressions:
        raise Regression(ab_failure(str(settings.ab_control), attempt, attempts, regressions))


def _keep(
    recorder: Recorder,
    treatment: Recorder,
    control: Recorder,
    verdicts: Sequence[Verdict],
    attempts: int,
) -> None:
    """The last A/B run's treatment samples are the item's; the control's go in its extra."""
    for record in treatment.records.values():
        recorder.add(record)
    for operator in treatment.operators.values():
        recorder.add_operator(operator)
    recorder.extra.update(treatment.extra)
    recorder.extra["ab"] = {"control": control.results()["metrics"], "runs": attempts}
    recorder.comparison = "ab"
    recorder.verdicts = [verdict.to_dict() for verdict in verdicts]
