"""What one series of runs says now: the regressions still standing in it, and its latest
state. Pure; the series come from the store (``store.regressions`` reads them and keeps the
triage).

A regression is a change point in the worse direction whose harm still stands: the latest
level is still worse than the level before it by at least half its size (a later fix that
took back most of it ends it). A series whose latest run's own verdict (an A/B item's, or one
against a control run) says ``regressed`` where no change point explains it yet (too few runs
after it to find one) is a regression since that run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ..records import IMPROVED, INCONCLUSIVE, REGRESSED, UNCHANGED
from .changes import ALPHA, Step, change_points

FAILED = "failed"  # a model's state on a device: its newest run failed, verdicts aside
# a model on a device shows the worst state of its series
STATES = (FAILED, REGRESSED, INCONCLUSIVE, IMPROVED, UNCHANGED)
MIN_EFFECT = 0.01  # smaller steps are not worth a person's look


class Point(Protocol):
    """What a series' run brings: its value (a p50, or an A/B ratio) and its own verdict."""

    @property
    def value(self) -> float: ...
    @property
    def status(self) -> str | None: ...
    @property
    def ratio(self) -> float | None: ...  # the verdict's estimate of treatment / control
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def p10(self) -> float | None: ...  # the run's own spread, where the value is a p50
    @property
    def p90(self) -> float | None: ...
    @property
    def samples(self) -> int | None: ...


@dataclass(frozen=True)
class Regression:
    """Worse from ``points[index]`` on: by ``ratio`` (``low`` to ``high``)."""

    index: int
    ratio: float
    low: float | None
    high: float | None
    p_value: float | None  # the change point's; None where the run's own verdict found it

    @property
    def found_by(self) -> str:
        return "the latest run's verdict" if self.p_value is None else "change point"


@dataclass(frozen=True)
class Reading:
    regressions: list[Regression]
    state: str  # the series' latest state, one of STATES but FAILED


def read_series(
    points: Sequence[Point],
    higher_is_better: bool = False,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
) -> Reading:
    steps = series_changes(points, alpha, min_effect)
    worse = [step for step in steps if _is_worse(step.ratio, higher_is_better)]
    standing = [_regression(step) for step in worse if _still_stands(step, steps)]
    latest = points[-1]
    if latest.status == REGRESSED and not standing:  # too few runs since to find a step
        standing.append(
            Regression(len(points) - 1, latest.ratio or math.nan, latest.low, latest.high, None)
        )
    return Reading(standing, _state(standing, steps, latest.status, higher_is_better))


def series_changes(
    points: Sequence[Point], alpha: float = ALPHA, min_effect: float = 0.0
) -> list[Step]:
    """The change points of a series, each run weighed by its own uncertainty."""
    values = [point.value for point in points]
    return change_points(values, alpha, min_effect, errors=[own_error(p) for p in points])


def own_error(point: Point) -> float | None:
    """A run's own standard error of its value, relative: from the spread of the samples its
    p50 is of (the median's standard error, 1.25 sigma / sqrt(n), sigma from p10 to p90), else
    from its verdict's interval (an A/B ratio's: its half width over two, about one standard
    error of a 95% interval); None where it has neither."""
    if point.p10 and point.p90 and point.samples and point.p10 > 0:
        sigma = math.log(point.p90 / point.p10) / 2.563
        return 1.2533 * sigma / math.sqrt(point.samples)
    if point.low and point.high and point.low > 0:
        return math.log(point.high / point.low) / 4
    return None


def _is_worse(ratio: float, higher_is_better: bool) -> bool:
    return ratio < 1 if higher_is_better else ratio > 1


def _still_stands(step: Step, steps: Sequence[Step]) -> bool:
    """Whether the latest level is still worse than the level before ``step`` by at least
    half of the step (in the step's direction, which is the worse one)."""
    return math.log(steps[-1].after / step.before) / math.log(step.ratio) >= 0.5


def _regression(step: Step) -> Regression:
    return Regression(step.index, step.ratio, step.low, step.high, step.p_value)


def _state(
    standing: Sequence[Regression], steps: Sequence[Step], latest: str | None, better: bool
) -> str:
    if standing:
        return REGRESSED
    if latest in (INCONCLUSIVE, IMPROVED):
        return latest
    if steps and not _is_worse(steps[-1].ratio, better):
        return IMPROVED
    return UNCHANGED


def worst(states: Sequence[str]) -> str:
    """The state a model on a device shows: the worst of its series'."""
    return min(states, key=STATES.index) if states else UNCHANGED
