"""What a framework runner is given, and what it must offer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..devices.base import Device
from ..energy import PowerSource
from ..errors import RunnerError
from ..recorder import Recorder
from ..spec.model import Case, FileRef
from ..verdicts.rules import Tolerance

Placed = tuple[FileRef, Path]


@dataclass(frozen=True)
class CaseFiles:
    """Host paths of a case's model files and input files, each with its spec entry (whose
    ``filename`` is the name the file gets on the device)."""

    model: tuple[Placed, ...] = ()
    inputs: tuple[Placed, ...] = ()
    goldens: tuple[Placed, ...] = ()

    def model_files(self) -> dict[str, Path]:
        return {ref.name: path for ref, path in self.model}

    def input_paths(self, name: str) -> list[Path]:
        return [path for ref, path in self.inputs if ref.name == name]


@dataclass
class RunContext:
    """Everything one case's run needs. ``workdir`` is the case's ``{TGTDIR}`` on the device,
    ``hostdir`` its ``{HOSTDIR}`` on the host; both are fresh and removed afterwards."""

    case: Case
    device: Device
    files: CaseFiles
    recorder: Recorder
    workdir: str
    hostdir: Path
    iterations: int
    warmup: int
    timeout: float
    program: str | None
    observer_prefixes: tuple[str, ...]
    tolerance: Tolerance = field(default_factory=Tolerance)
    host: Device | None = None  # where preprocess/postprocess steps run; the device if None
    backend: str = "cpu"
    power: Callable[[], PowerSource] | None = None  # opens the source of a power test
    trace_path: Path | None = None  # where a power trace is kept
    # A/B workers: given the one inference call an in-process runner times, to time it again
    # in later blocks without loading the model again (inprocess.time_runs)
    keep_call: Callable[[Callable[[], Any]], None] | None = None
    # A/B: the two sides alternate on one CPU set (ab/cpus.py). ``threads``: what a runtime
    # whose spec leaves its thread count runs; ``alternating``: another session of the runtime
    # runs between this one's calls, so its threads must not spin while idle
    threads: int | None = None
    alternating: bool = False
    # --aibench-reference: where outputs are kept for the agreement across frameworks
    outputs_dir: Path | None = None
    started: float = field(default_factory=time.monotonic)

    def time_left(self) -> float:
        """Seconds left of the case's ``timeout``, which covers all of it: warmup, sleeps,
        every command and every in-process run. A :class:`RunnerError` once none is left."""
        left = self.timeout - (time.monotonic() - self.started)
        if left <= 0:
            raise RunnerError(
                f"{self.case.where}: the case ran past its timeout of "
                f"{self.timeout:g} s (warmup, sleeps and runs together); raise "
                "--aibench-timeout or the spec's timeout, or lower iter/warmup"
            )
        return left


class Runner(Protocol):
    name: str

    def unavailable(self, case: Case, program: str | None) -> str | None:
        """Why this case cannot run here (a missing package, with the extra to install; no
        program for ``{program}``), checked before any file is fetched; ``None`` if it can."""

    def run(self, context: RunContext) -> None:
        """Run the case and add its metric records to ``context.recorder``."""


@runtime_checkable
class RunsCommands(Protocol):
    """An optional capability: a runner whose case runs command lines on the device (power
    tests and A/B with ``{program}`` need them). The built-in generic, Caffe2, TFLite and
    PyTorch runners have it."""

    def commands(self, case: Case, program: str | None) -> list[str]:
        """The case's command templates, with ``{program}`` where the program runs."""
