"""Outputs against golden outputs: the error metrics and the pass/fail rule. Pure (numpy only).

Per output: max absolute error, mean absolute error, relative L2 error (||a - g|| / ||g||) and
cosine similarity. An output passes when every element satisfies ``|a - g| <= atol + rtol * |g|``
(numpy's ``allclose`` rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import AibenchError
from .rules import Tolerance


class GoldenMismatch(AibenchError):
    """An output differs from its golden output beyond the tolerance."""


@dataclass(frozen=True)
class Comparison:
    name: str
    max_abs: float
    mean_abs: float
    rel_l2: float | None
    cosine: float | None
    worst_index: tuple[int, ...]
    actual: float
    expected: float
    passed: bool

    def metrics(self) -> dict[str, float | None]:
        return {
            "max_abs_error": self.max_abs,
            "mean_abs_error": self.mean_abs,
            "rel_l2_error": self.rel_l2,
            "cosine_similarity": self.cosine,
        }

    def explain(self, tolerance: Tolerance) -> str:
        return (
            f"output {self.name!r} differs from its golden output beyond atol={tolerance.atol:g}"
            f" rtol={tolerance.rtol:g}: worst element {list(self.worst_index)} is "
            f"{self.actual!r}, golden {self.expected!r} (max abs error {self.max_abs:.3g}"
            + (f", relative L2 error {self.rel_l2:.3g})" if self.rel_l2 is not None else ")")
        )


def compare(name: str, actual: Any, golden: Any, tolerance: Tolerance) -> Comparison:
    """Compare two arrays of the same shape (or the same size, compared flat)."""
    import numpy as np

    got, want = np.asarray(actual, dtype=np.float64), np.asarray(golden, dtype=np.float64)
    if got.shape != want.shape:
        if got.size != want.size:
            raise GoldenMismatch(
                f"output {name!r} has shape {list(got.shape)}, its golden output {list(want.shape)}"
            )
        got = got.reshape(want.shape)
    diff = np.abs(got - want)
    # The element furthest beyond its own bound atol + rtol*|g| (a NaN counts as furthest), not
    # the largest absolute error, which may lie within rtol of a large golden value.
    bound = tolerance.atol + tolerance.rtol * np.abs(want)
    excess = np.where(np.isnan(diff), np.inf, diff - bound)
    worst = np.unravel_index(int(np.argmax(excess)), diff.shape) if diff.size else ()
    norms = float(np.linalg.norm(got)) * float(np.linalg.norm(want))
    error_norm, golden_norm = float(np.linalg.norm(got - want)), float(np.linalg.norm(want))
    return Comparison(
        name=name,
        max_abs=float(diff.max()) if diff.size else 0.0,
        mean_abs=float(diff.mean()) if diff.size else 0.0,
        # Undefined against an all-zero golden (as cosine is): left out, never an infinity.
        rel_l2=error_norm / golden_norm if golden_norm else None,
        cosine=float(np.dot(got.ravel(), want.ravel())) / norms if norms else None,
        worst_index=tuple(int(i) for i in worst),
        actual=float(got[worst]) if diff.size else math.nan,
        expected=float(want[worst]) if diff.size else math.nan,
        passed=bool(np.all(diff <= tolerance.atol + tolerance.rtol * np.abs(want))),
    )
