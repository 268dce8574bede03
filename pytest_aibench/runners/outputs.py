"""A run's outputs against the case's golden files: error metrics and mismatches recorded (the
item recorder fails the item for a mismatch)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import kept_outputs
from ..errors import RunnerError
from ..tensors import read_tensor
from ..verdicts.golden import compare
from .base import RunContext


def check_outputs(context: RunContext, outputs: Mapping[str, Any]) -> None:
    """Record each golden output's error metrics (``"<output> max_abs_error"``, ...) and, as a
    failure of the item, every output beyond the tolerance. A model with one output
    and one golden file is compared whatever the output is called. With --aibench-reference,
    the outputs are also kept for the agreement across frameworks (verdicts/agreement.py)."""
    case, goldens = context.case, context.files.goldens
    if context.outputs_dir is not None:
        context.recorder.extra["outputs"] = kept_outputs.keep(context.outputs_dir, outputs)
    tolerance = context.tolerance.overriding(case.test.get("tolerance"))
    failures = []
    for ref, path in goldens:
        actual = outputs.get(ref.name)
        if actual is None and len(outputs) == 1 and len(goldens) == 1:
            actual = next(iter(outputs.values()))
        if actual is None:
            raise RunnerError(
                f"{case.where} {ref.where}: the model has no output {ref.name!r}; its outputs "
                f"are {sorted(outputs)}"
            )
        comparison = compare(ref.name, actual, read_tensor(path, ref.name), tolerance)
        for metric, value in comparison.metrics().items():
            if value is not None:
                context.recorder.record(ref.name, metric, "", [value])
        if not comparison.passed:
            failures.append(comparison.explain(tolerance))
    if failures:
        context.recorder.failures.append(f"{case.where}: " + "; ".join(failures))
