"""A/B on one device: an item's control and treatment sides, interleaved in paired blocks,
are judged by the sequential rule (``sequential.py``). A suspected regression is run again
(``--aibench-verify``); the item fails only if every run holds it."""

from __future__ import annotations

from collections.abc import Sequence

from .statistics import Verdict


def ab_inconclusive(
    control_program: str, blocks: int, seconds: float, undecided: Sequence[Verdict]
) -> str:
    """What an item failed for an undecided A/B verdict shows (--aibench-fail-inconclusive)."""
    return (
        f"aibench: A/B against {control_program} undecided after {blocks} paired blocks "
        f"({seconds:.0f} s, --aibench-ab-max-time):\n"
        + "\n".join(verdict.explain() for verdict in undecided)
    )


def ab_failure(control_program: str, held: int, attempts: int, regressed: Sequence[Verdict]) -> str:
    """What a failing A/B item shows."""
    return (
        f"aibench: A/B regression against {control_program}, held in {held} of {attempts} "
        "interleaved runs:\n" + "\n".join(verdict.explain() for verdict in regressed)
    )
