"""The two sides of an A/B item, and what runs one block of each.

- A program case (a case with commands): this process runs the case's commands, with the
  control program (``--aibench-ab-control``, where the commands run ``{program}``) and/or the
  control root's files (``--aibench-ab-control-root``) on the control side.
- An in-process case (ONNX Runtime, LiteRT, PyTorch): a worker process runs it
  (worker.py), so that neither side gets the pytest process. With one interpreter both sides
  share one worker and alternate in it: two processes running identical code differ by a
  steady percent or so (measured here: +0.8% between two workers of one A/A pair, beyond any
  interval), which pairs in one process cancel. With a control interpreter
  (``--aibench-ab-control-python``) each side has its own worker.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from ..errors import RunnerError
from ..execution import Execution
from ..generation import GENERATION
from ..recorder import Recorder
from ..runners import BUILTIN_RUNNERS
from ..runners.base import CaseFiles, Placed
from .cpus import CpuShare, cpu_share
from .worker import Block, Timed, WorkerProcess

Timer = Callable[[int, int], list[float]]  # (iterations, warmup) -> samples (us)


class Side(Protocol):
    def run_block(self, recorder: Recorder, iterations: int) -> None:
        """One block of this side: its warmup, then ``iterations`` timed runs."""

    def timer(self) -> Timer | None:
        """Once the side can time more runs with nothing reloaded (a worker side after its
        first block), what does; ``None`` while every block must be a whole run."""

    def load(self) -> None:
        """Make the side ready to time runs (a worker: its case run once, not kept)."""

    def close(self) -> None: ...


@dataclass
class InPlace:
    """A side this process runs through the case's runner."""

    execution: Execution
    program: str | None
    files: CaseFiles

    def run_block(self, recorder: Recorder, iterations: int) -> None:
        replace(self.execution, files=self.files).run(recorder, self.program, iterations)

    def timer(self) -> Timer | None:
        return None  # a program's run is a whole process: each block runs it again

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class LazyWorker:
    """A worker process started on first use: inside the A/B run, so that it starts pinned
    to the run's CPUs (cpus.pinned) like everything else of the run."""

    python: str
    process: WorkerProcess | None = None

    def get(self) -> WorkerProcess:
        if self.process is None:
            self.process = WorkerProcess(self.python)
        return self.process

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
            self.process = None


@dataclass
class InWorker:
    """A side an A/B worker process runs with its own files: the whole case in its first
    block (model loaded, operators, golden check), then only the kept inference call timed."""

    execution: Execution
    worker: LazyWorker
    files: CaseFiles
    key: str  # the side's name in its worker
    threads: int | None  # RunContext.threads
    started: bool = False

    def run_block(self, recorder: Recorder, iterations: int) -> None:
        warmup = self.execution.counts()[1]
        if self.started:
            recorder.record("NET", "latency", "us", self._time(iterations, warmup))
            return
        whole = self._whole_blocks
        self.started = not whole
        block = block_of(
            self.execution, self.files, iterations, warmup, keep=None if whole else self.key
        )
        block = replace(block, threads=self.threads, alternating=True)
        recorder.merge(self.worker.get().run(block))

    @property
    def _whole_blocks(self) -> bool:
        """A generation item runs whole in every block: each generation gives several figures
        (time to first token, decode speed...), which one kept call's clock cannot."""
        return self.execution.case.metric == GENERATION

    def timer(self) -> Timer | None:
        return self._time if self.started else None

    def _time(self, iterations: int, warmup: int) -> list[float]:
        timed = Timed(self.key, iterations, warmup, self.execution.timeout())
        return self.worker.get().time(timed)

    def load(self) -> None:
        if not self.started:
            self.run_block(Recorder(1, 0), 1)

    def close(self) -> None:
        """Stop the worker: a later block starts a fresh one and runs the whole case again."""
        self.worker.close()
        self.started = False


@dataclass(frozen=True)
class Sides:
    control: Side
    treatment: Side
    label: str  # what the control is, in messages
    share: CpuShare  # the CPUs and threads both sides run with

    def close(self) -> None:
        self.control.close()
        self.treatment.close()

    def restart(self) -> None:
        """A new epoch: worker sides start afresh and load their case again, outside any
        block, so that the next block is timed in turns like the others (a block of whole
        runs spreads twice as wide). Program sides: nothing to do."""
        self.close()  # both first: the two sides may share one worker
        self.control.load()
        self.treatment.load()


def ab_sides(execution: Execution) -> Sides | None:
    """The item's A/B sides, or ``None`` when it runs once (no A/B option applies to it)."""
    settings = execution.settings
    control_files = execution.control_files or execution.files
    if execution.runs_commands(settings.program):
        # A program case: this process runs both sides' commands, parsed as any run's are. A
        # control program swaps in only where the commands run {program}.
        swapped = settings.ab_control if execution.runs_program() else None
        if not (swapped or execution.control_files):
            return None
        program = swapped or settings.program
        share = cpu_share(execution.case, execution.runner.name, execution.device)
        return Sides(
            InPlace(execution, program, control_files),
            InPlace(execution, settings.program, execution.files),
            _label(swapped, settings.ab_control_root, None),
            share,
        )
    python = settings.ab_control_python
    if not (execution.control_files or python):
        return None
    if execution.runner.name not in BUILTIN_RUNNERS:
        raise RunnerError(
            f"{execution.case.where}: A/B of an in-process case runs it in a worker process, "
            f"which knows the built-in runners only, not {execution.runner.name!r}"
        )
    treatment_worker = LazyWorker(sys.executable)
    control_worker = LazyWorker(python) if python else treatment_worker
    share = cpu_share(execution.case, execution.runner.name, execution.device)
    threads = share.runtime_threads
    return Sides(
        InWorker(execution, control_worker, control_files, "control", threads),
        InWorker(execution, treatment_worker, execution.files, "treatment", threads),
        _label(None, settings.ab_control_root, python),
        share,
    )


def block_of(
    execution: Execution, files: CaseFiles, iterations: int, warmup: int, keep: str | None = None
) -> Block:
    """What a worker process is asked to run: the case with ``files``, as this process would."""
    return Block(
        runner=execution.runner.name,
        case=execution.case,
        files=files,
        iterations=iterations,
        warmup=warmup,
        timeout=execution.timeout(),
        backend=execution.settings.backend,
        tolerance=execution.tolerance(),
        keep=keep,
        observer_prefixes=execution.observer_prefixes(),
    )


def _label(program: str | None, root: Path | None, python: str | None) -> str:
    parts = [program, f"the files under {root}" if root else None, python]
    return " with ".join(part for part in parts if part)


def files_under(files: CaseFiles, root: Path, control_root: Path) -> CaseFiles:
    """The same files in the control checkout: each file under ``root`` at the same relative
    path under ``control_root``; files elsewhere (downloads in the model cache) are shared."""

    def moved(placed: tuple[Placed, ...]) -> tuple[Placed, ...]:
        return tuple((ref, _in_control(path, root, control_root)) for ref, path in placed)

    return CaseFiles(moved(files.model), moved(files.inputs), moved(files.goldens))


def _in_control(path: Path, root: Path, control_root: Path) -> Path:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return path
    control = control_root / relative
    if not control.exists():
        raise RunnerError(
            f"--aibench-ab-control-root: the control has no {relative} "
            f"(expected {control}, beside this run's {path})"
        )
    return control
