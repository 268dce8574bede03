#!/usr/bin/env python3
"""Change points on series with planted steps: ``aibench changes``'s detector as it is, the
same without its taming of wild runs (as it was before issue 37), and Apache Otava's
E-divisive detector (fetched from the package index at run time, its wheel unpacked into a
temporary folder: numpy and scipy are all its analysis needs), on the same series.

Series of 30 runs, seeded: a fifth flat, the others with one step of +3%, +5% or +10% at a
random run between the 8th and the 23rd; each run's noise log-normal with a sigma of 1%, 2% or
3% (what one run's p50 spreads by on this machine, docs/performance.md), and in a third of the
series one wild run (x1.2 to x1.6, as a noisy A/B reads). A detection within one run of the
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
        at = int(rng.integers(8, 23)) if step else None
        if at is not None:
            logs[at:] += np.log1p(step)
        if rng.random() < 1 / 3:
            logs[rng.integers(LENGTH)] += np.log(rng.uniform(1.2, 1.6))
        made.append(Series([float(v) for v in np.exp(logs)], step, at))
    return made


def ours(values: list[float]) -> list[int]:
    return [step.index for step in changes.change_points(values)]


def untamed(values: list[float]) -> list[int]:
    wild, changes.WILD = changes.WILD, float("inf")
    try:
        return ours(values)
    finally:
        changes.WILD = wild


def otava() -> Callable[[list[float]], list[int]]:
    folder = Path(tempfile.mkdtemp(prefix="otava-"))
    fetch = ["pip", "download", "apache-otava==0.8.0", "--no-deps", "-q", "-d", str(folder)]
    subprocess.run([sys.executable, "-m", *fetch], check=True)
    [wheel] = folder.glob("*.whl")
    zipfile.ZipFile(wheel).extractall(folder / "src")
    sys.path.insert(0, str(folder / "src"))
    from otava.analysis import compute_change_points

    def detect(values: list[float]) -> list[int]:
        found, _ = compute_change_points(values, window_len=30, max_pvalue=0.001)
        return [point.index for point in found]

    return detect


def tally(series: list[Series], detect: Callable[[list[float]], list[int]]) -> dict[float, Tally]:
    tallies = {step: Tally() for step in STEPS}
    for one in series:
        found = detect(one.values)
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
    detectors = {"aibench": ours, "aibench untamed": untamed, "otava 0.8.0": otava()}
    print(f"{'detector':<16} {'step':>5} {'series':>6} {'hits':>5} {'misses':>6} {'false':>5} "
          f"{'mean |distance|':>15}")  # fmt: skip
    for name, detect in detectors.items():
        for step, counts in tally(series, detect).items():
            total = sum(1 for one in series if one.step == step)
            mean = np.mean(counts.distances) if counts.distances else float("nan")
            print(
                f"{name:<16} {step:>5.0%} {total:>6} {counts.hits:>5} {counts.misses:>6} "
                f"{counts.false_alarms:>5} {mean:>15.2f}"
            )


if __name__ == "__main__":
    main()
