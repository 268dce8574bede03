"""A/B by paired blocks, decided sequentially. Pure (numpy, no pytest, no I/O).

Each block runs the control and the treatment back to back on one device, in a shuffled order.
The unit of evidence is one block's *pair*: the log of treatment/control of the block's
statistic (p50 by default). Why pairs: a shared machine switches between speed regimes that
last seconds (measured here: 1.9 times apart), so samples from different blocks are not
independent draws and pooling them makes both false alarms and misses; the two halves of one
short block share a regime, and their ratio cancels it.

The estimate is the Hodges-Lehmann median of the pairs' log ratios with its Wilcoxon
signed-rank confidence interval: distribution-free for pairs symmetric about their centre, and
robust to the odd pair that a regime switch splits.

Sequential: the interval is looked at after 10, 15, 22, 33, ... pairs (each look 1.5 times the
last), and look ``j`` is at confidence ``1 - alpha_j`` with ``alpha_j = alpha * 6 / (pi^2 j^2)``.
The ``alpha_j`` sum to ``alpha``, so the chance that *any* look's interval misses the true ratio
is at most ``alpha`` (a union bound over the looks): looking repeatedly and stopping early does
not inflate false alarms.

The decision is a test with an indifference zone, ``theta = 1 + min_effect``: a change smaller
than ``min_effect`` does not matter, one of ``min_effect`` or more must not be missed.

- unchanged: the interval lies within ``1/theta .. theta`` (whatever changed, less than
  ``min_effect``);
- regressed: otherwise, the interval lies wholly on the worse side of 1 (for lower-is-better
  metrics, above 1): a change is established and it reaches beyond ``theta``'s band;
- improved: the same on the better side;
- otherwise more blocks, until the time budget ends the item as inconclusive.

So a false alarm (regressed when nothing changed) needs an interval that misses the true ratio
of 1, and a miss (unchanged when the change is ``min_effect``) one that misses ``theta``: each
at most ``alpha / 2`` over all looks. Changes between 1 and ``theta`` may go either way. The
interval at the end of the budget counts as one more look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

from ..metrics import by_key
from ..metrics import statistic as metric_statistic
from ..records import IMPROVED, INCONCLUSIVE, REGRESSED, UNCHANGED, MetricDict, VerdictStatus
from .rules import Rule
from .statistics import (
    LOWER,
    PAIRED_BLOCKS,
    Verdict,
    detectable_change,
    detectable_for,
    direction,
)

FIRST_LOOK = 10  # pairs; fewer cannot reach the first look's confidence (2 / 2^n > alpha_1)
LOOK_GROWTH = 1.5


def look_points(limit: int = 100_000) -> list[int]:
    """The pair counts at which the interval is looked at."""
    points, n = [], FIRST_LOOK
    while n <= limit:
        points.append(n)
        n = max(n + 1, math.ceil(n * LOOK_GROWTH))
    return points


def spent_alpha(look: int, alpha: float) -> float:
    """The share of ``alpha`` the ``look``-th look (1-based) may spend."""
    return alpha * 6 / (math.pi**2 * look**2)


def signed_rank_interval(
    differences: Sequence[float], confidence: float
) -> tuple[float, float, float]:
    """Hodges-Lehmann estimate of the centre of ``differences`` and its two-sided Wilcoxon
    signed-rank interval at ``confidence`` (normal approximation of the rank statistic's
    distribution); an infinite interval when ``n`` is too small for that confidence."""
    import numpy as np

    values = np.asarray(differences, float)
    n = len(values)
    upper = np.triu_indices(n)
    walsh = np.sort((values[upper[0]] + values[upper[1]]) / 2)
    centre = float(np.median(walsh))
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)  # stdlib: scipy's import takes seconds
    mean, spread = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
    rank = math.floor(mean - z * spread)  # walsh[rank] .. walsh[-rank - 1]
    if rank < 0:
        return centre, -math.inf, math.inf
    return centre, float(walsh[rank]), float(walsh[len(walsh) - rank - 1])


def _block_statistic(metric: MetricDict, statistic: str) -> float | None:
    values = metric.get("values") or []
    return metric_statistic(statistic, sorted(values)) if values else None


@dataclass
class PairedSeries:
    """The pairs of one metric, and its decision so far."""

    rule: Rule
    better: str
    unit: str
    log_ratios: list[float] = field(default_factory=list)
    control: list[float] = field(default_factory=list)  # block statistics, for the report
    treatment: list[float] = field(default_factory=list)
    verdict: Verdict | None = None  # set once decided
    looked: list[tuple[int, float, float]] = field(default_factory=list)  # (pairs, centre, h)

    def add(self, control: MetricDict, treatment: MetricDict) -> None:
        value_c = _block_statistic(control, self.rule.statistic)
        value_t = _block_statistic(treatment, self.rule.statistic)
        if value_c and value_t and value_c > 0 and value_t > 0:
            self.control.append(value_c)
            self.treatment.append(value_t)
            self.log_ratios.append(math.log(value_t / value_c))

    def judge(self, confidence: float) -> Verdict:
        """The verdict from the pairs so far, its interval at ``confidence``; ``inconclusive``
        while the interval straddles a threshold."""
        import numpy as np

        n = len(self.log_ratios)
        centre, low, high = (
            signed_rank_interval(self.log_ratios, confidence) if n else (0.0, -math.inf, math.inf)
        )
        ratio_low, ratio_high = math.exp(low), math.exp(high)
        status = _decide(ratio_low, ratio_high, self.rule.min_effect, self.better)
        if status == INCONCLUSIVE:
            self.looked.append((n, centre, (high - low) / 2))
        control = float(np.median(self.control)) if self.control else None
        return Verdict.of(
            key=self.rule.key,
            status=status,
            method=PAIRED_BLOCKS,
            statistic=self.rule.statistic,
            unit=self.unit,
            control=control,
            treatment=control * math.exp(centre) if control is not None else None,
            low=ratio_low if math.isfinite(low) else None,
            high=ratio_high if math.isfinite(high) else None,
            p_value=None,
            n_control=n,
            n_treatment=n,
            min_effect=self.rule.min_effect,
            confidence=confidence,
            detectable=detectable_for(
                self.better,
                detectable_change(
                    ratio_low, ratio_high, confidence, clear=1, reach=1 + self.rule.min_effect
                ),
            ),
        )


def narrowing(looked: Sequence[tuple[int, float, float]]) -> bool:
    """Whether an undecided interval still narrows: narrower than two looks before (2.25 times
    fewer pairs, a third narrower by the square-root law, so chance rarely hides it as it can
    between two looks 1.5 times apart; measured on a pure-Python program: 3.63% then 3.65%).
    Any interval that narrows reaches a decision in time unless its centre sits on a
    threshold; its centre is too noisy to say how soon, so only the limit says when to give
    up."""
    if len(looked) < 2:
        return False
    before = looked[-3][2] if len(looked) >= 3 else looked[-2][2]
    return looked[-1][2] < before


def _decide(low: float, high: float, min_effect: float, better: str) -> VerdictStatus:
    band = 1 + min_effect
    if 1 / band < low and high < band:
        return UNCHANGED
    if low > 1:
        return REGRESSED if better == LOWER else IMPROVED
    if high < 1:
        return IMPROVED if better == LOWER else REGRESSED
    return INCONCLUSIVE


@dataclass
class SequentialAB:
    """The running decision of one A/B item over every gated metric: feed it block pairs,
    ask it at each look whether every metric is decided."""

    rules: Sequence[Rule]
    alpha: float
    series: dict[str, PairedSeries] = field(default_factory=dict)
    looks: int = 0
    undecided: list[PairedSeries] = field(default_factory=list)  # at the last look
    _points: list[int] = field(default_factory=look_points)

    def add(self, control: Sequence[MetricDict], treatment: Sequence[MetricDict]) -> None:
        """One block's metric records of each side."""
        theirs, mine = by_key(control), by_key(treatment)
        for rule in self.rules:
            if rule.key in theirs and rule.key in mine:
                if rule.key not in self.series:
                    metric = mine[rule.key]
                    self.series[rule.key] = PairedSeries(
                        rule, direction(metric), str(metric.get("unit", ""))
                    )
                self.series[rule.key].add(theirs[rule.key], mine[rule.key])

    @property
    def pairs(self) -> int:
        return min((len(s.log_ratios) for s in self.series.values()), default=0)

    def due(self) -> bool:
        """Whether the pairs so far reach the next look."""
        return self.looks < len(self._points) and self.pairs >= self._points[self.looks]

    def look(self) -> list[Verdict] | None:
        """The verdicts if every metric is decided at this look, else ``None`` (more blocks)."""
        self.looks += 1
        confidence = 1 - spent_alpha(self.looks, self.alpha)
        verdicts = [s.judge(confidence) for s in self.series.values()]
        self.undecided = [
            series
            for series, verdict in zip(self.series.values(), verdicts, strict=True)
            if verdict.status == INCONCLUSIVE
        ]
        return None if self.undecided or not verdicts else verdicts

    def narrowing(self) -> bool:
        """Whether every metric the last look left undecided still narrows (:func:`narrowing`)."""
        return bool(self.undecided) and all(narrowing(s.looked) for s in self.undecided)

    def final(self) -> list[Verdict]:
        """The verdicts when the budget has run out, as one more look: metrics still undecided
        are inconclusive."""
        self.looks += 1
        confidence = 1 - spent_alpha(self.looks, self.alpha)
        return [s.judge(confidence) for s in self.series.values()]
