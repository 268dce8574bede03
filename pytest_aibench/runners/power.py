"""Power and energy around a runner's work.

Power tests (``metric: power``, FAI-PEP's form): the main command is launched without waiting
(after the test's ``sleep_before_run``, so that the meter settles first), the source samples for
the collection time, and the trace gives the benchmark window, the baseline after it and energy
per inference. Energy during ordinary tests (``--aibench-energy``): the source samples while the
case runs, and energy per run is the trace's energy over the runs made.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..devices.base import CommandResult, Device
from ..energy import PowerSource
from ..energy.sources import collection_time
from ..energy.trace import Trace, analyse
from ..errors import DeviceError, RunnerError
from ..names import path_component
from ..recorder import Recorder
from .base import RunContext


class Launched:
    """A command running on a device in the background, its result kept for later."""

    def __init__(
        self,
        device: Device,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        timeout: float,
        pause: float,
    ) -> None:
        self.result: CommandResult | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, daemon=True, args=(device, argv, env, cwd, timeout, pause)
        )
        self._thread.start()

    def _run(
        self,
        device: Device,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: str,
        timeout: float,
        pause: float,
    ) -> None:
        try:
            time.sleep(pause)
            self.result = device.run(argv, env=env, cwd=cwd, timeout=timeout)
        except BaseException as exc:  # raised again by wait(), in the caller's thread
            self.error = exc

    def wait(self) -> CommandResult:
        self._thread.join()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


def measure_power(
    source: PowerSource,
    device: Device,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: str,
    timeout: float,
    pause: float,
    seconds: float,
) -> tuple[CommandResult, Trace]:
    """Launch, sample for ``seconds``, then wait for the command to end."""
    launched = Launched(device, argv, env, cwd, timeout, pause)
    deadline = time.monotonic() + seconds
    source.start()
    try:
        time.sleep(max(0.0, deadline - time.monotonic()))
    finally:
        trace = source.stop()
    return launched.wait(), trace


def trace_file(folder: Path | None, label: str) -> Path | None:
    if folder is None:
        return None
    return folder / f"{path_component(label, 'trace name')}-{time.time_ns()}.csv.gz"


def keep_trace(
    recorder: Recorder, source: PowerSource, trace: Trace, path: Path | None, **details: Any
) -> None:
    """The trace goes to its own compressed file; the run file names it and sums it up."""
    summary: dict[str, Any] = {
        "source": source.name,
        "samples": len(trace),
        "seconds": round(trace.duration(), 6),
        "mean_power_mW": trace.mean_power(),
        **details,
    }
    if path is not None:
        summary["trace"] = str(trace.write_csv_gz(path))
    recorder.extra.setdefault("power", []).append(summary)


def record_power_test(
    recorder: Recorder,
    source: PowerSource,
    trace: Trace,
    iterations: int,
    path: Path | None,
    seconds: float,
) -> None:
    """FAI-PEP's power records, plus energy per inference; a source that gives no trace (the
    battery charge counter) gives the mean power over the collection time, baseline included."""
    if len(trace) < 8:
        recorder.record("NET", "power", "mW", trace.mean_power())
        recorder.record("NET", "energy", "mJ", trace.energy_mj() / iterations)
        keep_trace(
            recorder,
            source,
            trace,
            path,
            collection_time=seconds,
            note="no trace: mean power over the collection time, baseline included",
        )
        return
    try:
        result = analyse(trace, iterations)
    except ValueError as exc:
        raise RunnerError(f"power trace of {source.name}: {exc}") from None
    recorder.record("NET", "window_power", "mW", result.window_power_mw)
    recorder.record("NET", "baseline_power", "mW", result.baseline_power_mw)
    recorder.record("NET", "power", "mW", result.power_mw)
    recorder.record("NET", "energy", "mJ", result.energy_mj)
    recorder.record("NET", "latency", "ms", result.latency_ms)
    start, end = result.window
    keep_trace(
        recorder,
        source,
        trace,
        path,
        collection_time=seconds,
        window_s=[
            float(trace.seconds[start]),
            float(trace.seconds[end - 1]) + float(trace.intervals()[end - 1]),
        ],
    )


def run_power_test(
    context: RunContext, argv: Sequence[str], env: Mapping[str, str], timeout: float, pause: float
) -> CommandResult:
    """A runner's main command as a power test."""
    if context.power is None:
        raise RunnerError(f"{context.case.where}: a power test needs a power source")
    seconds = collection_time(context.case)
    source = context.power()
    result, trace = measure_power(
        source,
        context.device,
        argv,
        env,
        context.workdir,
        max(timeout, seconds + pause),
        pause,
        seconds,
    )
    if result.returncode != 0 or result.timed_out:
        return result  # the runner reports the failed command
    record_power_test(
        context.recorder, source, trace, context.iterations, context.trace_path, seconds
    )
    return result


@contextlib.contextmanager
def measuring_energy(
    open_source: Callable[[], PowerSource] | None, recorder: Recorder, runs: int, path: Path | None
) -> Iterator[None]:
    """``--aibench-energy``: energy per run (warmup runs included, and whatever the case does
    besides running: loading the model) and mean power while the case ran."""
    if open_source is None:
        yield
        return
    source = open_source()
    source.start()
    try:
        yield
    except BaseException:
        with contextlib.suppress(DeviceError, OSError):
            source.stop()
        raise
    trace = source.stop()
    recorder.record("NET", "energy", "mJ", trace.energy_mj() / runs)
    recorder.record("NET", "average_power", "mW", trace.mean_power())
    keep_trace(recorder, source, trace, path, runs=runs)
