"""A/B on one device: an item's interleaved control and treatment sides are judged against
each other by the gate's statistics (``gate.compare_items``). A suspected regression is run
again (``--aibench-verify``); the item fails only if every run holds it."""

from __future__ import annotations

from collections.abc import Sequence

from .statistics import Verdict


def ab_failure(control_program: str, held: int, attempts: int, regressed: Sequence[Verdict]) -> str:
    """What a failing A/B item shows."""
    return (
        f"aibench: A/B regression against {control_program}, held in {held} of {attempts} "
        "interleaved runs:\n" + "\n".join(verdict.explain() for verdict in regressed)
    )
