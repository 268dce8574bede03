"""The sequential A/B rule over paired blocks, pure: its interval, its looks, its decisions."""

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from pytest_aibench.ab.blocks import _decided, _new_epoch
from pytest_aibench.records import MetricDict
from pytest_aibench.verdicts.rules import Rule
from pytest_aibench.verdicts.sequential import (
    FIRST_LOOK,
    SequentialAB,
    look_points,
    narrowing,
    signed_rank_interval,
    spent_alpha,
)

RULE = Rule("NET latency", "p50", 0.015)  # the --aibench-ab-min-effect default


def block(center: float) -> list[MetricDict]:
    """One side of one block: a few samples around ``center`` (no summary: thousands are made)."""
    values = [center * 0.99, center, center * 1.01]
    return [
        MetricDict(
            type="NET",
            metric="latency",
            unit="us",
            values=values,
            num_runs=3,
            summary={},
            summary_source="samples",
            info_string=None,
        )
    ]


def pair_noise(rng: np.random.Generator) -> float:
    """A pair's log ratio on a shared machine: mostly small, sometimes a regime switch."""
    return float(rng.normal(0, 0.01) if rng.random() < 0.7 else rng.normal(0, 0.3))


def run_sequence(
    slowdown: float, seed: int, max_pairs: int = 400, rule: Rule = RULE
) -> tuple[str, int]:
    """Feed pairs until every metric is decided or ``max_pairs``; the status and pairs used."""
    rng = np.random.default_rng(seed)
    ab = SequentialAB([rule], alpha=0.01)
    while ab.pairs < max_pairs:
        ab.add(block(1000.0), block(1000.0 * (1 + slowdown) * math.exp(pair_noise(rng))))
        if ab.due() and (verdicts := ab.look()) is not None:
            return verdicts[0].status, ab.pairs
    return ab.final()[0].status, ab.pairs


def test_the_signed_rank_interval_covers_the_centre_at_its_confidence() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(1000):
        _, low, high = signed_rank_interval(list(rng.normal(0.02, 0.05, 30)), 0.95)
        covered += low <= 0.02 <= high
    assert 0.93 <= covered / 1000 <= 0.97


def test_the_estimate_is_the_median_of_walsh_averages_and_too_few_pairs_say_nothing() -> None:
    centre, low, high = signed_rank_interval([1.0, 2.0, 3.0, 4.0, 100.0], 0.5)
    assert centre == 3.0 and low <= centre <= high  # the outlier moves it little
    assert signed_rank_interval([0.1, 0.2, 0.3], 0.999)[1:] == (-math.inf, math.inf)


def test_the_looks_spend_at_most_alpha_in_all() -> None:
    points = look_points()
    assert points[:5] == [FIRST_LOOK, 15, 23, 35, 53]
    assert sum(spent_alpha(j, 0.01) for j in range(1, 10_000)) <= 0.01
    # the first look is reachable: a signed-rank test on FIRST_LOOK pairs can reach it
    assert spent_alpha(1, 0.01) > 2 / 2**FIRST_LOOK


def test_unchanged_code_almost_never_regresses_and_is_mostly_decided() -> None:
    outcomes = [run_sequence(0.0, seed) for seed in range(200)]
    statuses = [status for status, _ in outcomes]
    assert statuses.count("regressed") <= 2  # at most 1% of 200
    assert statuses.count("unchanged") >= 150  # decided, not left inconclusive


def test_looking_again_and_again_does_not_inflate_false_alarms() -> None:
    # No minimum effect: only the spent alpha stands between noise and a false alarm, over the
    # seven looks up to 120 pairs.
    any_change = Rule("NET latency", "p50", 0.0)
    outcomes = [run_sequence(0.0, seed, 120, any_change)[0] for seed in range(300)]
    assert outcomes.count("regressed") + outcomes.count("improved") <= 3  # alpha: 1%


def test_a_slowdown_of_the_minimum_effect_is_caught_and_stops_early() -> None:
    outcomes = [run_sequence(RULE.min_effect, seed) for seed in range(100)]
    assert sum(status == "regressed" for status, _ in outcomes) >= 95
    assert np.median([pairs for _, pairs in outcomes]) < 400  # stopped before the budget


def test_an_improvement_is_reported_and_an_undecided_item_is_inconclusive() -> None:
    assert run_sequence(-0.05, 1)[0] == "improved"
    half_the_band = RULE.min_effect / 2  # undecided this soon
    status, pairs = run_sequence(half_the_band, 1, max_pairs=30)
    assert (status, pairs) == ("inconclusive", 30)


def test_a_change_established_but_inside_the_band_is_unchanged() -> None:
    ab = SequentialAB([RULE], alpha=0.01)
    rng = np.random.default_rng(5)
    for _ in range(200):  # +0.5%, measured to +-0.1%: real, and smaller than the 1.5% that matters
        ab.add(block(1000.0), block(1005.0 * math.exp(rng.normal(0, 0.002))))
    verdict = ab.final()[0]
    assert (
        verdict.record["low"] is not None and verdict.record["low"] > 1
    )  # the interval excludes no change ...
    assert verdict.status == "unchanged"  # ... but lies within the band


def test_a_verdict_says_its_paired_blocks_and_what_it_could_detect() -> None:
    ab = SequentialAB([RULE], alpha=0.01)
    rng = np.random.default_rng(3)
    for _ in range(60):
        ab.add(block(1000.0), block(1050.0 * math.exp(rng.normal(0, 0.01))))
    verdict = ab.final()[0]
    assert verdict.status == "regressed" and verdict.record["n_control"] == 60
    assert verdict.record["detectable"] is not None and 0 < verdict.record["detectable"] < 0.05
    text = verdict.explain()
    assert "NET latency p50 regressed: 1000 -> 10" in text and "60 paired blocks" in text
    assert f"+{verdict.record['detectable'] * 100:.1f}% or more caught 9 times in 10" in text
    assert verdict.to_dict()["detectable"] == pytest.approx(verdict.record["detectable"])


def test_the_detectable_change_is_caught_nine_times_in_ten() -> None:
    """The stated change is a 90%-power point, not the 50% one: pairs with 2% noise, judged at
    one look of 30 pairs. A change of the size an A/A verdict states is caught in about 90% of
    trials; the old statement (the interval's edge) in about half."""
    rng = np.random.default_rng(11)
    confidence = 1 - spent_alpha(1, 0.01)

    def verdict(change: float) -> Any:
        ab = SequentialAB([RULE], alpha=0.01)
        for _ in range(30):
            ab.add(block(1000.0), block(1000.0 * (1 + change) * math.exp(rng.normal(0, 0.02))))
        return ab.series["NET latency"].judge(confidence).record

    stated = float(np.median([verdict(0.0)["detectable"] for _ in range(200)]))
    caught = np.mean([verdict(stated)["status"] == "regressed" for _ in range(400)])
    assert 0.85 <= caught <= 0.97
    edges = [np.sqrt(v["high"] / v["low"]) - 1 for v in map(verdict, [0.0] * 200)]
    edge = max(float(np.median(edges)), RULE.min_effect - float(np.median(edges)))
    at_edge = np.mean([verdict(edge)["status"] == "regressed" for _ in range(400)])
    assert 0.3 <= at_edge <= 0.7


def test_an_interval_narrows_against_the_look_two_before() -> None:
    assert narrowing([(10, 0.008, 0.03), (15, 0.008, 0.02)])
    assert not narrowing([(10, 0.008, 0.02), (15, 0.008, 0.03)])  # widening
    assert not narrowing([(10, 0.008, 0.03)])  # one look: no pace yet
    # not narrower than the last look, though narrower than the one before: still narrowing
    wobble = [(53, 0.02, 0.063), (80, 0.019, 0.0363), (120, 0.023, 0.0365)]
    assert narrowing(wobble)
    assert not narrowing([(53, 0.02, 0.03), *wobble[1:]])


def test_blocks_go_on_past_the_budget_up_to_the_limit_while_the_interval_narrows() -> None:
    settings = SimpleNamespace(ab_blocks=5, ab_max_time=30.0, ab_time_limit=120.0)
    rng = np.random.default_rng(5)
    ab = SequentialAB([RULE], alpha=0.01)
    for blocks in range(1, 1000):  # a +0.7% change in 1.5% noise: undecided for long
        ab.add(block(1000.0), block(1007.0 * math.exp(rng.normal(0, 0.015))))
        if _decided(ab, blocks, 1.0, settings) is not None:  # type: ignore[arg-type]
            pytest.fail("decided within the budget")
        if ab.looks >= 3:
            break
    assert ab.undecided and ab.narrowing()
    assert _decided(ab, blocks, 60.0, settings) is None  # type: ignore[arg-type]
    verdicts = _decided(ab, blocks, 121.0, settings)  # type: ignore[arg-type]
    assert verdicts and verdicts[0].status == "inconclusive"  # the limit ends it
    ab.undecided[0].looked.append((blocks, 0.007, 1.0))  # the interval widened
    verdicts = _decided(ab, blocks, 31.0, settings)  # type: ignore[arg-type]
    assert verdicts and verdicts[0].status == "inconclusive"  # past the budget, not narrowing


def test_workers_restart_at_looks_once_an_epoch_has_lasted_as_long_as_its_start() -> None:
    assert _new_epoch(looked=False, blocks=4, epoch_seconds=0.0, restart_cost=0.0)
    assert not _new_epoch(looked=False, blocks=5, epoch_seconds=60.0, restart_cost=0.0)
    assert _new_epoch(looked=True, blocks=22, epoch_seconds=0.4, restart_cost=0.3)
    # workers that took 14 s to start (ExecuTorch's import, both sides) wait out 14 s of blocks
    assert not _new_epoch(looked=True, blocks=22, epoch_seconds=3.0, restart_cost=14.0)
    assert _new_epoch(looked=True, blocks=90, epoch_seconds=14.5, restart_cost=14.0)
