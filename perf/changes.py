#!/usr/bin/env python3
"""Change points on series with planted steps: ``aibench changes``'s detector as it is (each
run weighed by its own uncertainty), the same without the runs' uncertainties, the same with
Welch's test per segment (as it was before issue 37's pooled spread), and without its taming
of wild runs as well (as it was before issue 37); beside Apache Otava's E-divisive detector
(fetched from the package index at run time, its wheel unpacked into a temporary folder: numpy
and scipy are all its analysis needs), on the same series.

Series of 30 runs, seeded: a fifth flat, the others with one step of +3%, +5% or +10% at a
random run between the 8th and the 23rd; each run's noise log-normal with a sigma of 1%, 2% or
3% (what one run's p50 spreads by on this machine, docs/performance.md), and in a third of the
series one wild run (x1.2 to x1.6, as a noisy A/B reads). Each run has its own standard error,
as a stored run or an A/B item has: a third to a half of the noise, and for the wild run its
own distance (an A/B that read x1.58 said +9% to +200%). A detection within one run of the
planted step is a hit; any other is a false alarm. Nothing is asserted.

    python perf/changes.py [--series 200] [--seed 1]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pytest_aibench.verdicts import changes

LENGTH = 30
PLANTED = (0.03, 0.05, 0.10)
STEPS = (0.0, *PLANTED)
NOISES = (0.01, 0.02, 0.03)


@dataclass
class Series:
    values: list[float]
    step: float
    at: int | None  # the first run after the step
    errors: list[float]  # each run's own standard error, in logs


@dataclass
class Tally:
    hits: int = 0
    misses: int = 0
    false_alarms: int = 0
    distances: list[int] = field(default_factory=list)


def make_series(count: int, seed: int) -> list[Series]:
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        step = PLANTED[index % len(PLANTED)] if index % 5 else 0.0
        sigma = NOISES[rng.integers(len(NOISES))]
        logs = rng.normal(0.0, sigma, LENGTH)
        errors = sigma * rng.uniform(1 / 3, 1 / 2, LENGTH)
        at = int(rng.integers(8, 23)) if step else None
        if at is not None:
            logs[at:] += np.log1p(step)
        if rng.random() < 1 / 3:
            wild = rng.integers(LENGTH)
            errors[wild] = np.log(rng.uniform(1.2, 1.6))
            logs[wild] += errors[wild]
        made.append(Series([float(v) for v in np.exp(logs)], step, at, list(errors)))
    return made


def ours(series: Series) -> list[int]:
    return [step.index for step in changes.change_points(series.values, errors=series.errors)]


def without_errors(series: Series) -> list[int]:
    return [step.index for step in changes.change_points(series.values)]


def welch(series: Series) -> list[int]:
    """As before issue 37: Welch's test on each segment's own spread, runs unweighed."""
    pooled, changes._test = changes._test, _welch_test
    try:
        return without_errors(series)
    finally:
        changes._test = pooled


def welch_untamed(series: Series) -> list[int]:
    wild, changes.WILD = changes.WILD, float("inf")
    try:
        return welch(series)
    finally:
        changes.WILD = wild


def _welch_test(logs, weights, cuts, at, alpha, min_segment, noise):  # type: ignore[no-untyped-def]
    from scipy import stats

    start = cuts[at - 1] if at else 0
    end = cuts[at + 1] if at + 1 < len(cuts) else len(logs)
    before = changes._tamed(logs[start : cuts[at]], noise)
    after = changes._tamed(logs[cuts[at] : end], noise)
    var_b, var_a = before.var(ddof=1) / len(before), after.var(ddof=1) / len(after)
    spread = (var_b + var_a) ** 0.5
    shift = float(after.mean() - before.mean())
    if spread == 0:
        p_value = 0.0 if shift else 1.0
    else:
        freedom = (var_b + var_a) ** 2 / (
            var_b**2 / (len(before) - 1) + var_a**2 / (len(after) - 1)
        )
        p_value = float(2 * stats.t.sf(abs(shift) / spread, freedom))
    ratio = float(np.exp(shift))
    p_value = min(1.0, p_value * len(cuts) * (end - start - 2 * min_segment + 1))
    return changes.Step(cuts[at], 1.0, ratio, ratio, ratio, ratio, p_value)


def otava() -> Callable[[Series], list[int]]:
    folder = Path(tempfile.mkdtemp(prefix="otava-"))
    fetch = ["pip", "download", "apache-otava==0.8.0", "--no-deps", "-q", "-d", str(folder)]
    subprocess.run([sys.executable, "-m", *fetch], check=True)
    [wheel] = folder.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(folder / "src")
    sys.path.insert(0, str(folder / "src"))
    from otava.analysis import compute_change_points

    def detect(series: Series) -> list[int]:
        found, _ = compute_change_points(series.values, window_len=30, max_pvalue=0.001)
        return [point.index for point in found]

    return detect


def tally(series: list[Series], detect: Callable[[Series], list[int]]) -> dict[float, Tally]:
    tallies = {step: Tally() for step in STEPS}
    for one in series:
        found = detect(one)
        counts = tallies[one.step]
        near = [i for i in found if one.at is not None and abs(i - one.at) <= 1]
        if one.at is not None:
            if near:
                counts.hits += 1
                counts.distances.append(abs(near[0] - one.at))
            else:
                counts.misses += 1
        counts.false_alarms += len(found) - (1 if near else 0)
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    series = make_series(options.series, options.seed)
    detectors = {
        "aibench": ours,
        "aibench, no errors": without_errors,
        "Welch": welch,
        "Welch, untamed": welch_untamed,
        "otava 0.8.0": otava(),
    }
    print(f"{'detector':<19} {'step':>5} {'series':>6} {'hits':>5} {'misses':>6} {'false':>5} "
          f"{'mean |distance|':>15}")  # fmt: skip
    for name, detect in detectors.items():
        for step, counts in tally(series, detect).items():
            total = sum(1 for one in series if one.step == step)
            mean = np.mean(counts.distances) if counts.distances else float("nan")
            print(
                f"{name:<19} {step:>5.0%} {total:>6} {counts.hits:>5} {counts.misses:>6} "
                f"{counts.false_alarms:>5} {mean:>15.2f}"
            )


if __name__ == "__main__":
    main()
