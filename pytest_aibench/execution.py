"""One run of a case, start to end: fresh folders, the runner's run (with energy measured
around it where asked), cleanup even when it fails. running.py chooses how often and on which
side it runs (once, A/B, cold starts in fresh processes); the A/B package runs it per side."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .devices.base import Device
from .energy import PowerSource
from .energy.sources import open_source
from .errors import RunnerError
from .options import Settings
from .parsers.observer import DEFAULT_PREFIXES
from .recorder import Recorder
from .runners.base import CaseFiles, RunContext, Runner, RunsCommands
from .runners.power import measuring_energy, trace_file
from .spec.model import Case
from .verdicts.rules import Tolerance


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

    def counts(self) -> tuple[int, int]:
        """The case's iterations and warmup (options.Settings.spec_counts)."""
        return self.settings.spec_counts(self.case.iterations, self.case.test.get("warmup"))

    def timeout(self) -> float:
        return self.case.timeout(self.settings.timeout)

    def observer_prefixes(self) -> tuple[str, ...]:
        extra = self.settings.observer_prefix
        return (extra, *DEFAULT_PREFIXES) if extra else DEFAULT_PREFIXES

    def tolerance(self) -> Tolerance:
        return self.settings.error_tolerance or Tolerance()

    def power_source(self) -> Callable[[], PowerSource]:
        """What opens the case's power source: energy.sources itself, so that a runner that
        opens it calls down into energy/, never back up into this module."""
        settings = self.settings
        return partial(
            open_source,
            self.case,
            self.device,
            settings.power,
            settings.monsoon_map,
            settings.rapl_root,
        )

    def run(self, recorder: Recorder, program: str | None, iterations: int) -> None:
        """One run of the case in fresh folders, its metrics into ``recorder``."""
        settings, warmup = self.settings, self.counts()[1]
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
        energy = self.power_source() if settings.energy and not power_test else None
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
                        timeout=self.timeout(),
                        program=program,
                        observer_prefixes=self.observer_prefixes(),
                        tolerance=self.tolerance(),
                        backend=settings.backend,
                        host=self.host,
                        power=self.power_source() if power_test else None,
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
