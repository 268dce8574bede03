"""The statistical gate, pure."""

from collections.abc import Iterable

import numpy as np
import pytest

from pytest_aibench.metrics import MetricRecord
from pytest_aibench.records import MetricDict
from pytest_aibench.verdicts.fdr import benjamini_hochberg
from pytest_aibench.verdicts.rules import Rule
from pytest_aibench.verdicts.statistics import (
    ACROSS_RUNS,
    HIGHER,
    LOWER,
    THRESHOLD,
    direction,
    judge,
    judge_across_runs,
)


def latency(values: Iterable[float]) -> MetricDict:
    return MetricRecord("NET", "latency", "us", [float(v) for v in values]).to_dict()


def summary_only(mean: float) -> MetricDict:
    """A metric as TFLite's benchmark_model gives it: its statistics, no samples."""
    return MetricRecord("NET", "latency", "us", summary={"mean": mean}, num_runs=50).to_dict()


def noisy(center: float, n: int = 100, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(center, center * 0.03, n)


def test_a_clear_slowdown_regresses_with_interval_p_value_and_sizes() -> None:
    verdict = judge(latency(noisy(100)), latency(noisy(120, seed=1)), Rule("NET latency"))
    assert verdict.status == "regressed"
    assert (
        verdict.record["low"]
        and verdict.record["ratio"]
        and verdict.record["high"]
        and verdict.record["p_value"] is not None
    )
    assert 1.17 < verdict.record["low"] < verdict.record["ratio"] < verdict.record["high"] < 1.23
    assert verdict.record["p_value"] < 1e-20 and (
        verdict.record["n_control"],
        verdict.record["n_treatment"],
    ) == (100, 100)
    text = verdict.explain()
    assert text.startswith("NET latency p50 regressed: ")
    assert "(+19" in text and "95% CI +" in text and "Mann-Whitney p=" in text
    assert "n=100 control / 100 treatment" in text


def test_no_change_and_changes_below_the_minimum_effect_do_not_fail() -> None:
    same = judge(latency(noisy(100)), latency(noisy(100, seed=1)), Rule("NET latency"))
    assert same.status == "unchanged"
    small = judge(
        latency(noisy(100, n=2000)),
        latency(noisy(102, n=2000, seed=1)),
        Rule("NET latency", min_effect=0.05),
    )
    assert small.record["p_value"] is not None
    assert small.status == "unchanged" and small.record["p_value"] < 1e-6  # significant, but small
    assert (
        judge(
            latency(noisy(100, n=2000)),
            latency(noisy(102, n=2000, seed=1)),
            Rule("NET latency", min_effect=0.01),
        ).status
        == "regressed"
    )


def test_improvements_are_reported_not_failed() -> None:
    assert (
        judge(latency(noisy(100)), latency(noisy(80, seed=1)), Rule("NET latency")).status
        == "improved"
    )


def test_higher_is_better_metrics_regress_when_they_drop() -> None:
    def throughput(values: Iterable[float] = ()) -> MetricDict:
        return MetricRecord("NET", "throughput", "frames/s", list(values)).to_dict()

    assert direction(throughput()) == HIGHER and direction(latency([])) == LOWER
    score = MetricRecord("NET", "score", "").to_dict()
    score["direction"] = "higher"
    assert direction(score) == HIGHER
    control, treatment = throughput(noisy(100)), throughput(noisy(80, seed=1))
    assert judge(control, treatment, Rule("NET throughput")).status == "regressed"


def test_too_few_samples_give_no_verdict() -> None:
    verdict = judge(latency([1, 2, 3]), latency([9, 9, 9]), Rule("NET latency"))
    assert verdict.status == "insufficient"


def test_summary_only_metrics_fall_back_to_a_threshold_and_say_so() -> None:
    control, slower = summary_only(100.0), summary_only(110.0)
    verdict = judge(control, slower, Rule("NET latency"))
    assert verdict.status == "regressed" and verdict.record["method"] == THRESHOLD
    assert "no per-run samples" in verdict.explain()
    assert judge(control, summary_only(103.0), Rule("NET latency")).status == "unchanged"


def test_other_statistics_can_be_gated() -> None:
    control, treatment = noisy(100), noisy(100, seed=1)
    treatment[-30:] *= 1.5  # a slow tail
    assert judge(latency(control), latency(treatment), Rule("NET latency")).status == "unchanged"
    assert (
        judge(latency(control), latency(treatment), Rule("NET latency", "p90", 0.05)).status
        == "regressed"
    )


def test_rule_parsing() -> None:
    assert Rule.parse("NET latency:p50:3%") == Rule("NET latency", "p50", 0.03)
    assert Rule.parse("conv1 latency:mean:0.1") == Rule("conv1 latency", "mean", 0.1)
    for bad in ("NET latency", "NET latency:median:3%", "NET latency:p50:lots"):
        with pytest.raises(ValueError):
            Rule.parse(bad)


def test_benjamini_hochberg_matches_its_definition() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx(
        [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5]
    )


def test_a_verdict_says_the_change_it_catches_nine_times_in_ten() -> None:
    verdict = judge(latency(noisy(100)), latency(noisy(120, seed=1)), Rule("NET latency"))
    assert (
        verdict.record["low"]
        and verdict.record["high"]
        and verdict.record["detectable"] is not None
    )
    half_width = (np.log(verdict.record["high"]) - np.log(verdict.record["low"])) / 2
    # the centre must clear the 5% band by the half-width, plus 1.28 standard errors (90%)
    power_margin = half_width * 1.2816 / 1.96
    expected = 1.05 * np.exp(half_width + power_margin) - 1
    assert verdict.record["detectable"] == pytest.approx(expected, rel=1e-3)
    assert 0.05 < verdict.record["detectable"] < 0.1  # 3% noise, 100 samples a side
    caught = f"+{verdict.record['detectable'] * 100:.1f}% or more caught 9 times in 10"
    assert caught in verdict.explain()
    assert "cannot detect" not in verdict.explain()


def test_a_threshold_the_noise_cannot_support_is_said_plainly() -> None:
    rng = np.random.default_rng(4)
    control, treatment = rng.normal(100, 15, 20), rng.normal(100, 15, 20)
    verdict = judge(latency(control), latency(treatment), Rule("NET latency", "p50", 0.02))
    assert verdict.status == "unchanged"
    text = verdict.explain()
    assert "; this item cannot detect 2% here: its noise is ±" in text
    assert text.endswith("; use A/B mode (--aibench-ab-control)")


def runs_of(p50s: Iterable[float], n: int = 50, seed: int = 0) -> list[MetricDict]:
    """One metric record per stored run, each run's samples around its own p50."""
    rng = np.random.default_rng(seed)
    return [latency(rng.normal(p50, p50 * 0.01, n)) for p50 in p50s]


def test_several_control_runs_give_the_drift_between_runs() -> None:
    controls = runs_of([100, 104, 97, 101, 98])
    rule = Rule("NET latency")
    same = judge_across_runs(controls, runs_of([103], seed=1)[0], rule)
    assert (
        same.status == "unchanged"
        and same.record["control_runs"] == 5
        and same.record["method"] == ACROSS_RUNS
    )
    slower = judge_across_runs(controls, runs_of([130], seed=1)[0], rule)
    assert slower.status == "regressed" and slower.record["low"] and slower.record["low"] > 1.05
    assert "5 control runs" in slower.explain() and "caught 9 times in 10" in slower.explain()
    assert judge_across_runs(controls[:2], controls[2], rule).status == "insufficient"


def test_stored_runs_that_disagree_are_said_with_their_regimes_and_the_advice() -> None:
    rule = Rule("NET latency")
    regimes = judge_across_runs(runs_of([605, 700, 6800, 6900, 6965]), runs_of([650])[0], rule)
    text = regimes.explain()
    assert "; the 5 control runs disagree: p50 60" in text
    assert "in regimes 60" in text and "us (2 runs); 68" in text and "us (3 runs)" in text
    assert text.endswith(
        "compare by A/B on this device (--aibench-ab-control or --aibench-ab-control-root)"
    )
    even = judge_across_runs(runs_of([100, 120, 140, 160]), runs_of([130])[0], rule)
    assert "control runs disagree" in even.explain() and "spread evenly" in even.explain()
    agree = judge_across_runs(runs_of([100, 104, 97, 101, 98]), runs_of([103])[0], rule)
    assert "disagree" not in agree.explain()


def test_a_drifting_machine_gives_no_false_alarm_with_several_control_runs() -> None:
    rng = np.random.default_rng(11)
    rule, alarms_one, alarms_five = Rule("NET latency"), 0, 0
    for trial in range(300):
        drift = 100 * np.exp(rng.normal(0, 0.04, 6))  # each process runs at its own speed
        *controls, treatment = runs_of(drift, seed=trial)
        alarms_five += judge_across_runs(controls, treatment, rule).status == "regressed"
        alarms_one += judge(controls[-1], treatment, rule).status == "regressed"
    assert alarms_five <= 3  # at most 1%
    assert alarms_one > 3 * alarms_five + 10  # what one stored run alone does here


def test_one_control_run_says_it_cannot_see_drift() -> None:
    verdict = judge(latency(noisy(100)), latency(noisy(100, seed=1)), Rule("NET latency"))
    assert "; one control run: drift between runs unseen (--aibench-compare-runs); " in (
        verdict.explain()
    )
