"""ExecuTorch's ``executor_runner`` text output → metric records. Pure.

The runner logs through ExecuTorch's ``ET_LOG``: ``I 00:00:00.000412 executorch:executor_runner.cpp:
512] message`` (on Android, logcat may prefix it again), so lines are searched, not matched
whole. What is read:

- ``Iteration I of N: X ms``, one per execution (newer builds): the raw samples;
- ``Model executed successfully N time(s) in X ms.``, the total of all executions: builds
  without per-iteration lines give only this, kept as the tool's own mean over N runs;
- ``Model loaded in X ms.`` (newer builds): the program's parse and its method's load;
- ``Resetting threadpool with num threads = N`` (builds with a threadpool): the threads that
  XNNPACK and the optimized kernels ran on (``--cpu_threads``, else the performant cores).

The runner has no warm-up flag, so the first ``warmup`` executions are left out of the samples;
a build that prints only the total cannot leave them out, and its mean includes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..metrics import MetricRecord

_NUMBER = r"(-?[\d.]+(?:[eE][-+]?\d+)?)"
_ITERATION = re.compile(rf"Iteration (\d+) of (\d+): {_NUMBER} ms")
_TOTAL = re.compile(rf"Model executed successfully (\d+) time\(s\) in {_NUMBER} ms")
_LOADED = re.compile(rf"Model loaded in {_NUMBER} ms")
_THREADS = re.compile(r"Resetting threadpool with num threads = (-?\d+)")
_MS = 1000.0  # us per ms


@dataclass
class RunnerOutput:
    records: dict[str, MetricRecord] = field(default_factory=dict)
    executions: int = 0  # as the runner counted them, warm-ups included
    warmup_left_out: int = 0  # the warm-ups left out of the samples
    threads: int | None = None


def parse_executor_runner(lines: Iterable[str], warmup: int) -> RunnerOutput | None:
    """The runner's timings, or None when it never said it executed the model (it failed, or
    this is not its output). Raises ValueError when every execution was a warm-up."""
    iterations: list[float] = []
    total: tuple[int, float] | None = None
    load: float | None = None
    threads: int | None = None
    for line in lines:
        if found := _ITERATION.search(line):
            iterations.append(float(found.group(3)) * _MS)
        elif found := _TOTAL.search(line):
            total = int(found.group(1)), float(found.group(2)) * _MS
        elif found := _LOADED.search(line):
            load = float(found.group(1)) * _MS
        elif found := _THREADS.search(line):
            threads = int(found.group(1))
    if total is None:
        return None
    executions, spent = total
    output = RunnerOutput(executions=executions, threads=threads)
    if iterations:
        if len(iterations) <= warmup:
            raise ValueError(
                f"the runner executed the model {len(iterations)} time(s), all of them warm-ups "
                f"(warmup is {warmup}); ask --num_executions={{executions}} (warmup + iter)"
            )
        output.warmup_left_out = warmup
        output.records["NET latency"] = MetricRecord("NET", "latency", "us", iterations[warmup:])
    elif executions:
        summary: dict[str, float | None] = {"mean": spent / executions, "p50": None}
        output.records["NET latency"] = MetricRecord(
            "NET", "latency", "us", summary=summary, num_runs=executions
        )
    if load is not None:
        output.records["NET load"] = MetricRecord("NET", "load", "us", [load])
    return output
