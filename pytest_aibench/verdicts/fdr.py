"""Many items, one run: the false discovery rate held with Benjamini-Hochberg."""

from __future__ import annotations

from collections.abc import Sequence

from ..records import REGRESSED, UNCHANGED, VerdictDict


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Adjusted p-values controlling the false discovery rate across one run's items."""
    count = len(p_values)
    order = sorted(range(count), key=lambda i: p_values[i])
    adjusted = [0.0] * count
    smallest = 1.0
    for rank in range(count, 0, -1):
        index = order[rank - 1]
        smallest = min(smallest, p_values[index] * count / rank)
        adjusted[index] = smallest
    return adjusted


def adjust_for_many(verdicts: Sequence[VerdictDict], alpha: float) -> list[VerdictDict]:
    """Benjamini-Hochberg over a run's sampled verdicts (dicts, as items carry them): a
    regression stands only if its adjusted p-value is still below ``alpha``."""
    tested = [(v, v["p_value"]) for v in verdicts if v["p_value"] is not None]
    adjusted = benjamini_hochberg([p_value for _, p_value in tested])
    for (verdict, _), p_adjusted in zip(tested, adjusted, strict=True):
        verdict["p_adjusted"] = p_adjusted
        if verdict["status"] == REGRESSED and p_adjusted >= alpha:
            verdict["status"] = UNCHANGED
    return [v for v in verdicts if v["status"] == REGRESSED]
