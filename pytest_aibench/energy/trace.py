"""Power traces and what they tell: the benchmark window, baseline power and energy per
inference. Pure: numpy only, no devices.

A trace is a series of samples; sample ``i`` holds the power drawn from ``seconds[i]`` until the
next sample, so a trace's energy is exactly the sum of power times interval (which for counter
sources, RAPL, reproduces the counter's own difference).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..atomic import atomic_file

if TYPE_CHECKING:  # numpy is imported where a trace is made or analysed, not with the plugin
    import numpy as np

STEP_SECONDS = 10.0  # FAI-PEP's step kernel: 5 s of -1 then 5 s of +1


@dataclass(frozen=True)
class Trace:
    seconds: np.ndarray
    power_mw: np.ndarray
    current_ma: np.ndarray | None = None
    voltage_v: np.ndarray | None = None
    end_s: float | None = None  # when the last sample's interval ends, if the source knows

    @classmethod
    def from_samples(
        cls,
        seconds: list[float],
        power_mw: list[float],
        current_ma: list[float] | None = None,
        voltage_v: list[float] | None = None,
        end_s: float | None = None,
    ) -> Trace:
        import numpy as np

        def array(values: list[float] | None) -> np.ndarray | None:
            return None if values is None else np.asarray(values, dtype=float)

        return cls(
            np.asarray(seconds, dtype=float),
            np.asarray(power_mw, dtype=float),
            array(current_ma),
            array(voltage_v),
            end_s,
        )

    def __len__(self) -> int:
        return len(self.seconds)

    def intervals(self) -> np.ndarray:
        """How long each sample's power lasted; the last sample lasts until ``end_s``, or a
        typical interval."""
        import numpy as np

        if self.end_s is not None:
            return np.diff(np.append(self.seconds, self.end_s))
        if len(self) < 2:
            return np.zeros(len(self))
        gaps = np.diff(self.seconds)
        return np.append(gaps, np.median(gaps))

    def energy_mj(self, start: int = 0, end: int | None = None) -> float:
        import numpy as np

        return float(np.sum((self.power_mw * self.intervals())[start:end]))

    def duration(self, start: int = 0, end: int | None = None) -> float:
        import numpy as np

        return float(np.sum(self.intervals()[start:end]))

    def mean_power(self, start: int = 0, end: int | None = None) -> float:
        seconds = self.duration(start, end)
        return self.energy_mj(start, end) / seconds if seconds > 0 else float("nan")

    def write_csv_gz(self, path: Path) -> Path:
        """time_s, current_mA, voltage_V, power_mW (empty where the source gives no current)."""
        columns = [self.seconds, self.current_ma, self.voltage_v, self.power_mw]
        with atomic_file(path) as raw, gzip.open(raw, "wt", encoding="ascii") as out:
            out.write("time_s,current_mA,voltage_V,power_mW\n")
            for row in range(len(self)):
                out.write(
                    ",".join("" if column is None else f"{column[row]:.6g}" for column in columns)
                    + "\n"
                )
        return path


def find_window(trace: Trace, step_seconds: float = STEP_SECONDS) -> tuple[int, int]:
    """Where the benchmark ran: the sample where the mean power rises most sharply (a step
    kernel's maximum response) and the one where it falls most sharply after it. Each side of
    the step spans half of ``step_seconds``, or an eighth of the trace if that is shorter."""
    import numpy as np

    power, count = trace.power_mw, len(trace)
    if count < 8:
        raise ValueError(f"a power trace of {count} samples is too short to find a window in")
    rate = (count - 1) / max(trace.seconds[-1] - trace.seconds[0], 1e-12)
    half = max(2, min(int(rate * step_seconds / 2), count // 8))
    sums = np.concatenate([[0.0], np.cumsum(power)])
    edges = np.arange(max(1, half // 4), count - max(1, half // 4) + 1)
    before_start, after_end = np.maximum(edges - half, 0), np.minimum(edges + half, count)
    step = (sums[after_end] - sums[edges]) / (after_end - edges) - (
        sums[edges] - sums[before_start]
    ) / (edges - before_start)
    start = int(edges[np.argmax(step)])
    # Sample noise from successive differences (robust to the step itself); a rise that the
    # noise could make is no benchmark.
    noise = 1.4826 * float(np.median(np.abs(np.diff(power)))) / np.sqrt(2)
    if step.max() <= 6 * noise * np.sqrt(2 / half) or step.max() <= 0:
        raise ValueError(
            "the power never rises above its noise: the benchmark does not show "
            "in the trace (did it run within the collection time?)"
        )
    later = edges > start
    if not later.any():
        return start, count
    end = int(edges[later][np.argmin(step[later])])
    return start, end


@dataclass(frozen=True)
class PowerResult:
    window_power_mw: float
    baseline_power_mw: float
    window_seconds: float
    iterations: int
    window: tuple[int, int]

    @property
    def power_mw(self) -> float:
        """The model's own power: the window's, less the idle device's."""
        return self.window_power_mw - self.baseline_power_mw

    @property
    def energy_mj(self) -> float:
        """Energy per inference."""
        return self.power_mw * self.window_seconds / self.iterations

    @property
    def latency_ms(self) -> float:
        return self.window_seconds * 1000 / self.iterations


def analyse(trace: Trace, iterations: int) -> PowerResult:
    """FAI-PEP's power method: window found by the step kernel, baseline = mean power after the
    window (before it, when the trace ends with the benchmark; the collection time should
    outlast the benchmark)."""
    if iterations < 1:
        raise ValueError(f"need at least one iteration, found {iterations}")
    start, end = find_window(trace)
    baseline = trace.mean_power(end) if end < len(trace) else trace.mean_power(0, start)
    return PowerResult(
        window_power_mw=trace.mean_power(start, end),
        baseline_power_mw=baseline,
        window_seconds=trace.duration(start, end),
        iterations=iterations,
        window=(start, end),
    )
