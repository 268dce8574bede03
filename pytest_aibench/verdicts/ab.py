"""What an A/B item's verdicts mean for it. Its control and treatment sides ran interleaved in
paired blocks (ab/blocks.py) and the sequential rule (``sequential.py``) judged them; a
suspected regression was run again up to ``--aibench-verify`` times from a fresh start. The
item fails only if the last run, and so every run, still regressed, or, with
``--aibench-fail-inconclusive``, if it stayed undecided."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import INCONCLUSIVE
from .statistics import Verdict, regressions


def ab_failure(
    verdicts: Sequence[Verdict],
    *,
    control: str,
    runs: tuple[int, int],
    spent: tuple[int, float],
    fail_inconclusive: bool,
) -> str | None:
    """The item's failure message, or ``None`` when it passes. ``control`` says what the
    control side was; ``runs`` is (runs made, runs allowed), ``spent`` (blocks, seconds) of
    the last run."""
    held, attempts = runs
    if regressed := regressions(verdicts):
        return (
            f"aibench: A/B regression against {control}, held in {held} of {attempts} "
            "interleaved runs:\n" + "\n".join(verdict.explain() for verdict in regressed)
        )
    undecided = [verdict for verdict in verdicts if verdict.status == INCONCLUSIVE]
    if undecided and fail_inconclusive:
        blocks, seconds = spent
        return (
            f"aibench: A/B against {control} undecided after {blocks} paired blocks "
            f"({seconds:.0f} s, --aibench-ab-max-time):\n"
            + "\n".join(verdict.explain() for verdict in undecided)
        )
    return None
