"""Control run vs treatment run: the statistical gate, its verdict and its one-line explanation.

Pure (numpy and scipy, no pytest, no I/O). A metric regresses only when both hold:

- a one-sided Mann-Whitney U test says the treatment's samples are worse (p < alpha), and
- the bootstrap confidence interval (fixed seed) of the ratio treatment/control of the rule's
  statistic (p50 by default) lies wholly beyond 1 + min_effect in the worse direction.

Improvements are the mirror image. Where a side has no samples, only a tool's summary
(TFLite's benchmark_model), the verdict falls back to a threshold on the ratio and says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from statistics import NormalDist
from typing import Any, cast

from typing_extensions import Unpack

from ..generation import GATED as GENERATION_GATED
from ..metrics import statistic as metric_statistic
from ..records import (
    IMPROVED,
    INSUFFICIENT,
    REGRESSED,
    UNCHANGED,
    MetricDict,
    VerdictDict,
    VerdictFields,
    VerdictStatus,
)
from .rules import Rule

LOWER, HIGHER = "lower", "higher"
MIN_SAMPLES = 5
RESAMPLES = 2000
SEED = 20260101
CONFIDENCE = 0.95

# Metrics gated by default: time and energy, and a generative model's headline figures. Others
# (custom metrics, golden errors) only when a --aibench-fail-on rule names them.
GATED_METRICS = ("latency", "energy", "power", *GENERATION_GATED)
_HIGHER_IS_BETTER = re.compile(
    r"throughput|tps|fps|ops|qps|accuracy|top\d|correct|cosine|"
    r"per_sec|/s(ec)?$",
    re.IGNORECASE,
)


def direction(metric: MetricDict) -> str:
    """Whether lower or higher values are better: the record's own ``direction`` if it has one,
    else from its metric name and unit (latency, energy, error: lower)."""
    given = metric.get("direction")
    if given in (LOWER, HIGHER):
        return str(given)
    text = f"{metric.get('metric', '')} {metric.get('unit', '')}"
    return HIGHER if _HIGHER_IS_BETTER.search(text) else LOWER


@dataclass(frozen=True)
class Verdict:
    """One metric's judgement: its record, whose fields are declared once, in records.py
    (``VerdictFields``), and what the record means (its explanation)."""

    record: VerdictDict

    @classmethod
    def of(cls, **fields: Unpack[VerdictFields]) -> Verdict:
        control, treatment = fields["control"], fields["treatment"]
        ratio = treatment / control if control and treatment is not None else None
        return cls(cast("VerdictDict", {**fields, "ratio": ratio}))

    @property
    def key(self) -> str:
        return self.record["key"]

    @property
    def status(self) -> VerdictStatus:
        return self.record["status"]

    def to_dict(self) -> VerdictDict:
        return cast("VerdictDict", dict(self.record))

    @classmethod
    def from_dict(cls, data: VerdictDict) -> Verdict:
        return cls(cast("VerdictDict", dict(data)))

    def explain(self) -> str:
        """``NET latency p50 regressed: 3.6 -> 4.3 us (+20.0%, 95% CI +18.1% to +21.9%),
        Mann-Whitney p=1.2e-15, n=200 control / 200 treatment``."""
        return _explained(self.record)


def _explained(v: VerdictDict) -> str:
    control, treatment, ratio = v["control"], v["treatment"], v.get("ratio")
    low, high, detectable = v["low"], v["high"], v.get("detectable")
    method, min_effect = v["method"], v["min_effect"]
    control_runs, confidence = v.get("control_runs", 1), v.get("confidence", CONFIDENCE)
    text = f"{v['key']} {v['statistic']} {v['status']}"
    if control is not None and treatment is not None:
        text += f": {control:.4g} -> {treatment:.4g} {v['unit']}".rstrip()
    if ratio is not None:
        text += f" ({_percent(ratio)}"
        if low is not None and high is not None:
            text += f", {_level(confidence)} CI {_percent(low)} to {_percent(high)}"
        text += ")"
    if v["p_value"] is not None:
        text += f", Mann-Whitney p={v['p_value']:.2g}"
    if method == PAIRED_BLOCKS:
        text += f", {v['n_control']} paired blocks"
    elif method == ACROSS_RUNS:
        text += f", {control_runs} control runs"
    else:
        text += f", n={v['n_control']} control / {v['n_treatment']} treatment"
    if method == MWU_BOOTSTRAP and control_runs == 1:
        text += "; one control run: drift between runs unseen (--aibench-compare-runs)"
    if detectable is not None:
        text += f"; {detection_words(detectable)}"
        noise = math.sqrt(high / low) - 1 if low and high else 0.0  # the half-width
        if method == MWU_BOOTSTRAP and noise >= min_effect:
            text += (
                f"; this item cannot detect {min_effect:.0%} here: its noise is "
                f"±{noise:.1%}; use A/B mode (--aibench-ab-control)"
            )
    if (runs := disagreement(v)) is not None:
        text += f"; {runs}"
    if method not in (MWU_BOOTSTRAP, PAIRED_BLOCKS, ACROSS_RUNS):
        text += f" [{method}]"
    return text


def disagreement(verdict: VerdictDict) -> str | None:
    """Where the stored control runs differ among themselves by more than twice the change
    that matters: their range and regimes, and what decides instead. ``None`` where they
    agree.

    Runs of one workload on one device can sit in regimes that last a whole run (a memory-bound
    program on a shared machine: five saved runs with p50s from 605 to 6,965 us); no change
    smaller than their range can be told from them, and the interval says so only as a huge
    number. A/B pairs both sides within seconds, inside one regime."""
    values = sorted(verdict.get("control_values") or [])
    min_effect = verdict["min_effect"]
    if len(values) < 2 or values[0] <= 0 or values[-1] / values[0] - 1 <= 2 * min_effect:
        return None
    unit = verdict["unit"]
    groups = _regimes(values, min_effect)
    shape = (
        "in regimes " + "; ".join(_regime_words(group, unit) for group in groups)
        if len(groups) > 1
        else "spread evenly between them"
    )
    return (
        f"the {len(values)} control runs disagree: {verdict['statistic']} "
        f"{values[0]:.4g} to {values[-1]:.4g} {unit} ({values[-1] / values[0] - 1:+.0%}), "
        f"{shape}; stored runs cannot tell a {min_effect:.0%} change here: compare by A/B on "
        "this device (--aibench-ab-control or --aibench-ab-control-root)"
    )


def _regimes(values: Sequence[float], min_effect: float) -> list[list[float]]:
    """Sorted values split at the gaps that are wide both against the change that matters
    (twice it) and against their whole range (two fifths of it, in log terms): clusters apart,
    not a steady spread."""
    gap = max(math.log(1 + 2 * min_effect), 0.4 * math.log(values[-1] / values[0]))
    groups = [[values[0]]]
    for value in values[1:]:
        if math.log(value / groups[-1][-1]) > gap:
            groups.append([])
        groups[-1].append(value)
    return groups


def _regime_words(group: Sequence[float], unit: str) -> str:
    runs = f"{len(group)} run{'s' if len(group) > 1 else ''}"
    if len(group) == 1:
        return f"{group[0]:.4g} {unit} ({runs})"
    return f"{group[0]:.4g}-{group[-1]:.4g} {unit} ({runs})"


def regressions(verdicts: Iterable[Verdict]) -> list[Verdict]:
    return [verdict for verdict in verdicts if verdict.status == REGRESSED]


MWU_BOOTSTRAP = "mann-whitney + bootstrap"
PAIRED_BLOCKS = "paired blocks: Wilcoxon signed-rank interval, alpha spent over looks"
ACROSS_RUNS = "across control runs: t prediction interval of the run-to-run spread"
MIN_CONTROL_RUNS = 3  # for a spread between runs
THRESHOLD = "threshold on the tools' summaries: no per-run samples"


def _percent(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.1f}%"


def _level(confidence: float) -> str:
    """95%, or 99.94% for a sequential look's interval."""
    return f"{confidence * 100:.4g}%"


def _statistic(values: Any, statistic: str, axis: int | None = None) -> Any:
    import numpy as np

    if statistic == "mean":
        return np.mean(values, axis=axis)
    return np.percentile(values, float(statistic[1:]), axis=axis)


def judge(control: MetricDict, treatment: MetricDict, rule: Rule, alpha: float = 0.01) -> Verdict:
    """The verdict on one metric (run-file metric dicts of the control and treatment runs)."""
    values_c, values_t = list(control.get("values") or []), list(treatment.get("values") or [])
    if values_c and values_t:
        return _judge_samples(
            values_c, values_t, rule, alpha, direction(treatment), str(treatment.get("unit", ""))
        )
    return _judge_summaries(control, treatment, rule, direction(treatment))


def _judge_samples(
    control: Sequence[float],
    treatment: Sequence[float],
    rule: Rule,
    alpha: float,
    better: str,
    unit: str,
) -> Verdict:
    import numpy as np
    from scipy.stats import mannwhitneyu

    verdict = partial(
        Verdict.of,
        key=rule.key,
        method=MWU_BOOTSTRAP,
        statistic=rule.statistic,
        unit=unit,
        control=float(_statistic(control, rule.statistic)),
        treatment=float(_statistic(treatment, rule.statistic)),
        n_control=len(control),
        n_treatment=len(treatment),
        min_effect=rule.min_effect,
        low=None,
        high=None,
        p_value=None,
    )
    if min(len(control), len(treatment)) < MIN_SAMPLES:
        return verdict(status=INSUFFICIENT)
    worse = "greater" if better == LOWER else "less"
    better_side = "less" if better == LOWER else "greater"
    p_worse = float(mannwhitneyu(treatment, control, alternative=worse).pvalue)
    p_better = float(mannwhitneyu(treatment, control, alternative=better_side).pvalue)
    low, high = _bootstrap_ratio(
        np.asarray(control, float), np.asarray(treatment, float), rule.statistic
    )
    status = _status(low, high, p_worse, p_better, alpha, rule.min_effect, better)
    p_value = p_worse if status != IMPROVED else p_better
    detectable = detectable_change(low, high, CONFIDENCE, clear=1 + rule.min_effect)
    return verdict(
        status=status,
        low=low,
        high=high,
        p_value=p_value,
        detectable=detectable_for(better, detectable),
    )


DETECTION_POWER = 0.9  # a verdict's detectable change is the one it catches this often


def detectable_change(
    low: float, high: float, confidence: float, clear: float, reach: float = 1.0
) -> float | None:
    """The smallest slowdown, relative, that a rule with an interval this wide catches
    DETECTION_POWER of the time (0.02: +2%, caught 9 times in 10).

    A slowdown is caught when the interval's lower end clears ``clear`` and its upper end
    reaches ``reach`` (the stored rule: clear ``1 + min_effect``; A/B: clear 1, reach
    ``1 + min_effect``). With the interval's half-width ``h`` in log terms, its centre must lie
    ``max(log clear + h, log reach - h)`` above 1; the estimate scatters about the true change
    with the standard error ``h / z`` (``z`` of the interval's confidence), so a true change
    ``z_power * h / z`` beyond that point is caught with that power. The 50% point alone (the
    estimate landing exactly there) reads as a promise and misses half the time."""
    if not (0 < low <= high and math.isfinite(high)):
        return None
    half_width = (math.log(high) - math.log(low)) / 2
    normal = NormalDist()
    standard_error = half_width / normal.inv_cdf(1 - (1 - confidence) / 2)
    needed = max(math.log(clear) + half_width, math.log(reach) - half_width)
    return math.exp(needed + normal.inv_cdf(DETECTION_POWER) * standard_error) - 1


def detectable_for(better: str, slowdown: float | None) -> float | None:
    """A detectable change as the metric reads it: a rise for lower-is-better metrics, a drop
    (negative) for higher-is-better ones (tokens/s: +121% in time is -54.8% in rate)."""
    if slowdown is None or better == LOWER:
        return slowdown
    return 1 / (1 + slowdown) - 1


DETECTION_WORDS = f"{round(DETECTION_POWER * 10)} times in 10"


def detection_words(detectable: float) -> str:
    """The one wording of a detectable change: terminal, HTML report and dashboard (a drop,
    for a metric where higher is better)."""
    return f"{detectable:+.1%} or more caught {DETECTION_WORDS}"


def _status(
    low: float,
    high: float,
    p_worse: float,
    p_better: float,
    alpha: float,
    min_effect: float,
    better: str,
) -> VerdictStatus:
    up, down = 1 + min_effect, 1 / (1 + min_effect)
    if better == LOWER:
        if p_worse < alpha and low > up:
            return REGRESSED
        if p_better < alpha and high < down:
            return IMPROVED
    else:
        if p_worse < alpha and high < down:
            return REGRESSED
        if p_better < alpha and low > up:
            return IMPROVED
    return UNCHANGED


def _bootstrap_ratio(control: Any, treatment: Any, statistic: str) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(SEED)
    stat_c = _statistic(
        control[rng.integers(0, len(control), (RESAMPLES, len(control)))], statistic, axis=1
    )
    stat_t = _statistic(
        treatment[rng.integers(0, len(treatment), (RESAMPLES, len(treatment)))], statistic, axis=1
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = stat_t / stat_c
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.nanpercentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def judge_across_runs(
    controls: Sequence[MetricDict], treatment: MetricDict, rule: Rule, alpha: float = 0.01
) -> Verdict:
    """The verdict on one metric against several stored control runs: each run's statistic is
    one draw of what an unchanged run gives, and their spread (on the log scale) is the drift
    between runs that no single run can show. The treatment run's statistic is judged by the
    t prediction interval of a new run, ``exp(mean +- t(1 - alpha/2, K - 1) * s * sqrt(1 +
    1/K))`` over the K control runs; it regresses when the interval of the ratio lies beyond
    ``1 + min_effect`` and the one-sided t test agrees (p < alpha)."""
    from scipy.stats import t as student

    values = [v for v in (_run_statistic(m, rule.statistic) for m in controls) if v]
    value_t = _run_statistic(treatment, rule.statistic)
    logs = [math.log(v) for v in values]
    verdict = partial(
        Verdict.of,
        key=rule.key,
        method=ACROSS_RUNS,
        statistic=rule.statistic,
        unit=str(treatment.get("unit", "")),
        control=math.exp(sum(logs) / len(logs)) if logs else None,
        treatment=value_t,
        n_control=sum(int(m.get("num_runs") or 0) for m in controls),
        n_treatment=int(treatment.get("num_runs") or 0),
        min_effect=rule.min_effect,
        control_runs=len(values),
        control_values=values,
        low=None,
        high=None,
        p_value=None,
    )
    if len(values) < MIN_CONTROL_RUNS or not value_t:
        return verdict(status=INSUFFICIENT)
    mean = sum(logs) / len(logs)
    spread = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
    scale = max(spread, 1e-12) * math.sqrt(1 + 1 / len(logs))
    shift = math.log(value_t) - mean
    quantile = float(student.ppf(1 - alpha / 2, len(logs) - 1))
    low, high = math.exp(shift - quantile * scale), math.exp(shift + quantile * scale)
    p_higher = float(student.sf(shift / scale, len(logs) - 1))
    better = direction(treatment)
    p_worse, p_better = (p_higher, 1 - p_higher) if better == LOWER else (1 - p_higher, p_higher)
    status = _status(low, high, p_worse, p_better, alpha, rule.min_effect, better)
    return verdict(
        status=status,
        low=low,
        high=high,
        p_value=p_worse if status != IMPROVED else p_better,
        confidence=1 - alpha,
        detectable=detectable_for(
            better, detectable_change(low, high, 1 - alpha, clear=1 + rule.min_effect)
        ),
    )


def _run_statistic(metric: MetricDict, statistic: str) -> float | None:
    """One run's statistic of a metric: from its samples, else the tool's summary."""
    values = metric.get("values") or []
    if values:
        return metric_statistic(statistic, sorted(values))
    return _summary_value(metric, statistic)


def _summary_value(metric: MetricDict, statistic: str) -> float | None:
    summary = metric.get("summary") or {}
    value = summary.get(statistic)
    if value is None:
        value = summary.get("mean")  # all a tool such as benchmark_model may give
    return None if value is None else float(value)


def _judge_summaries(
    control: MetricDict, treatment: MetricDict, rule: Rule, better: str
) -> Verdict:
    value_c, value_t = (
        _summary_value(control, rule.statistic),
        _summary_value(treatment, rule.statistic),
    )
    verdict = partial(
        Verdict.of,
        key=rule.key,
        method=THRESHOLD,
        statistic=rule.statistic,
        unit=str(treatment.get("unit", "")),
        control=value_c,
        treatment=value_t,
        n_control=int(control.get("num_runs") or 0),
        n_treatment=int(treatment.get("num_runs") or 0),
        min_effect=rule.min_effect,
        low=None,
        high=None,
        p_value=None,
    )
    if not value_c or value_t is None:
        return verdict(status=INSUFFICIENT)
    ratio = value_t / value_c
    # No test is possible: the ratio alone decides (both "p-values" pass, the interval is a point).
    return verdict(status=_status(ratio, ratio, 0.0, 0.0, 1.0, rule.min_effect, better))


# What makes two items one workload: the inputs' shapes and the model files' MD5s (recorded by
# the plugin in each item's case). A control run that predates them lacks them: not refused.
