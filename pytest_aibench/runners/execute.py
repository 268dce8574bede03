"""One case, start to end: fresh folders, the runner's run, cleanup even when it fails."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from ..devices.base import Device
from ..parsers.observer import DEFAULT_PREFIXES
from ..recorder import Recorder
from ..settings import Settings
from ..spec import Case
from .base import CaseFiles, RunContext, Runner

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


def execute(
    case: Case, runner: Runner, device: Device, files: CaseFiles,
    recorder: Recorder, settings: Settings, scratch: Path, host: Device | None = None,
) -> None:
    """Run ``case`` with ``runner`` on ``device``; its metrics land in ``recorder``."""
    iterations, warmup = effective_counts(case, settings)
    scratch.mkdir(parents=True, exist_ok=True)
    hostdir = Path(tempfile.mkdtemp(prefix="hostdir-", dir=scratch))
    workdir = device.new_workdir()
    try:
        runner.run(RunContext(
            case=case, device=device, files=files,
            recorder=recorder, workdir=workdir, hostdir=hostdir, iterations=iterations,
            warmup=warmup, timeout=settings.timeout, program=settings.program,
            observer_prefixes=observer_prefixes(settings), tolerance=settings.error_tolerance,
            backend=settings.backend, host=host,
        ))
    finally:
        device.remove_workdir(workdir)
        shutil.rmtree(hostdir, ignore_errors=True)
