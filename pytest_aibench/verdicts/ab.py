"""A/B on one device: an item's interleaved control and treatment sides judged against each
other by the gate's statistics. A suspected regression is run again (``--aibench-verify``); the
item fails only if every run holds it."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import MetricDict
from .gate import compare_items
from .statistics import Rule, Verdict


def judge_sides(
    control: Sequence[MetricDict],
    treatment: Sequence[MetricDict],
    rules: Sequence[Rule],
    min_effect: float,
    alpha: float,
) -> list[Verdict]:
    """A verdict for every gated metric both sides measured (their metric records)."""
    return compare_items(control, treatment, rules, min_effect, alpha)


def ab_failure(control_program: str, held: int, attempts: int, regressed: Sequence[Verdict]) -> str:
    """What a failing A/B item shows."""
    return (
        f"aibench: A/B regression against {control_program}, held in {held} of {attempts} "
        "interleaved runs:\n" + "\n".join(verdict.explain() for verdict in regressed)
    )
