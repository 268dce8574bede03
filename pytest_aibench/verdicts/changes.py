"""Change points in a series of runs ordered by commit. Pure (numpy, scipy, ruptures).

Candidates come from PELT (``ruptures``) on the log of the values, scaled by the series' noise
(the median absolute difference of neighbours, which a step hardly moves): the penalty
``2 log n`` per change is the BIC's. Each candidate is then tested against its neighbouring
segments with a t-test on the logs: each run weighed by its own uncertainty where it has one,
each segment's wild runs first pulled in to three noise deviations from its median
(winsorized, so that one run cannot hide a step), one spread pooled from both segments;
Bonferroni-corrected over the candidates and over the places its cut could have been (the best
of many cuts is always somewhat significant); the least significant is dropped and the rest
tested again, until every one left is significant at ``alpha``. A change also has to reach
``min_effect``. Tried instead, and found weaker (perf/changes.py): a permutation test of the
best cut (sides of three runs make its null heavy-tailed) and Welch's test per segment.

What this finds is what E-divisive means finds in a series of steps (Otava, Nyrkio); Otava
itself is an application (it pins numpy 2.2 and needs BigQuery and Slack clients) and
MongoDB's signal-processing-algorithms needs numpy < 2 and Python < 3.12, so neither can be a
library of this plugin; ``ruptures`` needs only numpy and scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ALPHA = 0.001
MIN_SEGMENT = 3  # runs on each side of a change: fewer cannot tell a step from an outlier
NOISE_FLOOR = 1e-6  # relative: a series of identical values still has a scale
WILD = 3.0  # a run further than this many noise deviations from its segment's median is wild


@dataclass(frozen=True)
class Step:
    """A change between ``values[index - 1]`` and ``values[index]``."""

    index: int
    before: float  # median of the segment before
    after: float  # median of the segment after
    ratio: float  # after / before, from the segments' mean logs
    low: float  # its interval at 1 - alpha
    high: float
    p_value: float  # the t-test's, Bonferroni-corrected (candidates x places tried)

    @property
    def change(self) -> float:
        return self.ratio - 1


def change_points(
    values: Sequence[float],
    alpha: float = ALPHA,
    min_effect: float = 0.0,
    min_segment: int = MIN_SEGMENT,
    errors: Sequence[float | None] | None = None,
) -> list[Step]:
    """The significant changes in ``values`` (positive numbers, in commit order). ``errors``:
    each run's own standard error, relative (in logs), where it has one (an A/B interval, a
    p50's spread): a run that knew itself to be unsure weighs less."""
    import numpy as np

    logs = np.log(np.asarray(values, dtype=float))
    if len(logs) < 2 * min_segment or not np.all(np.isfinite(logs)):
        return []
    noise = _noise(logs)
    weights = _weights(errors, noise, len(logs))
    cuts = _candidates(logs, min_segment, noise)
    while cuts:
        steps = [
            _test(logs, weights, cuts, at, alpha, min_segment, noise) for at in range(len(cuts))
        ]
        weakest = max(range(len(steps)), key=lambda at: steps[at].p_value)
        if steps[weakest].p_value < alpha:
            return [s for s in steps if abs(math.log(s.ratio)) >= math.log1p(min_effect)]
        del cuts[weakest]
    return []


def _noise(logs: object) -> float:
    """The series' noise (one run's standard deviation, in logs) from the median absolute
    difference of neighbours: a step or a wild run moves it hardly at all."""
    import numpy as np

    neighbours = np.abs(np.diff(np.asarray(logs)))
    return max(float(np.median(neighbours)) / 0.954, NOISE_FLOOR)  # sigma: |N(0,2)| median


def _weights(errors: Sequence[float | None] | None, noise: float, length: int) -> Any:
    """Each run's weight, relative: 1 / (the noise between runs + its own error, squared).
    The series' noise already holds a typical run's own error, so only what a run's error
    has beyond the typical one lowers its weight; a run without one is typical."""
    import numpy as np

    if errors is None or all(error is None for error in errors):
        return np.ones(length)
    known = np.array([np.nan if error is None else float(error) for error in errors])
    typical = float(np.nanmedian(known))
    own = np.where(np.isnan(known), typical, known)
    between = max(noise**2 - typical**2, (NOISE_FLOOR * 10) ** 2)
    variances = between + own**2
    return variances.min() / variances


def _candidates(logs: object, min_segment: int, noise: float) -> list[int]:
    import numpy as np
    import ruptures

    series = np.asarray(logs)
    model = ruptures.Pelt(model="l2", min_size=min_segment, jump=1)
    ends = model.fit((series / noise).reshape(-1, 1)).predict(pen=2 * math.log(len(series)))
    return [int(end) for end in ends[:-1]]  # the last end is the series' length


def _test(
    logs: object,
    weights: Any,
    cuts: Sequence[int],
    at: int,
    alpha: float,
    min_segment: int,
    noise: float,
) -> Step:
    """Candidate ``cuts[at]`` against the segments either side of it: the difference of their
    weighted means over one standard deviation pooled from both (Student's t on ``n - 2``
    degrees of freedom; pooled, since a segment of three runs says little of its own spread).
    Each segment's wild runs (beyond WILD times the noise from its median) are pulled in to
    that bound first: one run far off (a noisy A/B whose own interval spanned +9% to +200%)
    would otherwise widen the spread until a clean +10% step beside it failed the test."""
    import numpy as np
    from scipy import stats

    series, weights = np.asarray(logs), np.asarray(weights)
    start = cuts[at - 1] if at else 0
    end = cuts[at + 1] if at + 1 < len(cuts) else len(series)
    sides = [slice(start, cuts[at]), slice(cuts[at], end)]
    values = [_tamed(series[side], noise) for side in sides]
    weight = [weights[side] for side in sides]
    means = [float(np.average(v, weights=w)) for v, w in zip(values, weight, strict=True)]
    squares = sum(
        float(np.sum(w * (v - m) ** 2)) for v, w, m in zip(values, weight, means, strict=True)
    )
    freedom = end - start - 2
    shift = means[1] - means[0]
    spread = math.sqrt(squares / freedom * sum(1 / float(np.sum(w)) for w in weight))
    if spread == 0:  # two flat segments: a step with no noise around it
        p_value, half = (0.0 if shift else 1.0), 0.0
    else:
        p_value = float(2 * stats.t.sf(abs(shift) / spread, freedom))
        half = float(stats.t.ppf(1 - alpha / 2, freedom)) * spread
    return Step(
        index=cuts[at],
        before=float(np.exp(np.median(values[0]))),
        after=float(np.exp(np.median(values[1]))),
        ratio=math.exp(shift),
        low=math.exp(shift - half),
        high=math.exp(shift + half),
        p_value=min(1.0, p_value * len(cuts) * (end - start - 2 * min_segment + 1)),
    )


def _tamed(segment: Any, noise: float) -> Any:
    """The segment with each run clipped to its median +- WILD x noise (winsorized)."""
    import numpy as np

    values = np.asarray(segment)
    centre = float(np.median(values))
    return np.clip(values, centre - WILD * noise, centre + WILD * noise)
