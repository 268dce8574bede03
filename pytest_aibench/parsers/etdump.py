"""ExecuTorch's profile (ETDump events, as its devtools Inspector reads them) -> operator records.
Pure: the runner hands over plain events, in the order the runtime logged them.

Within one execution the runtime logs, per instruction of the program:

- a kernel of the portable (or optimized) library: ``native_call_<op>`` (the kernel), then
  ``OPERATOR_CALL`` (the kernel and the runtime's dispatch around it);
- a delegated block: the delegate's own events, one per operator it ran (XNNPACK: ``Fully
  Connected (NC, F32) GEMM #1``), then ``DELEGATE_CALL`` (the whole block);
- ``Method::execute`` around all of it, once per execution.

Each record is an operator's *own* time, so that no time counts twice and the shares add up to
the whole execution: a kernel as logged; the runtime's dispatch (every ``OPERATOR_CALL`` less
its kernel) as one record; a delegated operator as logged, under its backend's name; each
delegated block's time outside its operators as a record of its own.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..metrics import OperatorRecord

KERNEL_PREFIX = "native_call_"
OPERATOR_CALL = "OPERATOR_CALL"
DELEGATE_CALL = "DELEGATE_CALL"
EXECUTE = "Method::execute"
DISPATCH = "ExecuTorch dispatch"


@dataclass(frozen=True)
class ProfileEvent:
    """One event of the profile over every profiled execution: its name, whether a delegate
    logged it, and its time in each execution (us)."""

    name: str
    values: Sequence[float]
    delegated: bool = False


@dataclass
class ExecutorchProfile:
    operators: list[OperatorRecord]
    execute_mean: float | None  # us: the base of the operators' shares


def operators_from_events(
    events: Sequence[ProfileEvent], delegates: Sequence[str]
) -> ExecutorchProfile:
    """Operator records from one method's events; ``delegates`` names the backends the program
    delegates to, in the order its delegated blocks run (one name for all: ``delegates[0]``
    when the program uses a single backend)."""
    records: dict[str, OperatorRecord] = {}
    dispatch: list[list[float]] = []
    kernel: Sequence[float] = ()
    inside: list[ProfileEvent] = []  # delegated events since the last block
    blocks = 0
    execute: list[float] = []
    for event in events:
        if event.delegated:
            inside.append(event)
        elif event.name.startswith(KERNEL_PREFIX):
            kernel = event.values
            _add(records, event.name.removeprefix(KERNEL_PREFIX), _type(event.name), kernel)
        elif event.name == OPERATOR_CALL:
            dispatch.append(_less(event.values, [kernel]))
            kernel = ()
        elif event.name == DELEGATE_CALL:
            backend = _backend(delegates, blocks)
            blocks += 1
            for operator in inside:
                _add(records, f"{backend}: {operator.name}", _type(operator.name), operator.values)
            own = _less(event.values, [operator.values for operator in inside])
            _add(records, f"{backend} delegate call", DELEGATE_CALL, own)
            inside = []
        elif event.name == EXECUTE:
            execute = list(event.values)
    if dispatch:
        _add(records, DISPATCH, "runtime", [math.fsum(run) for run in zip(*dispatch, strict=True)])
    mean = math.fsum(execute) / len(execute) if execute else None
    return ExecutorchProfile(list(records.values()), mean)


def _add(records: dict[str, OperatorRecord], name: str, kind: str, values: Sequence[float]) -> None:
    """A record of its own for each instance: the second ``addmm.out`` is ``addmm.out #2``."""
    unique, count = name, 1
    while unique in records:
        count += 1
        unique = f"{name} #{count}"
    records[unique] = OperatorRecord(name=unique, type=kind, values=list(values), calls=1)


def _less(outer: Sequence[float], nested: Sequence[Sequence[float]]) -> list[float]:
    """Per execution: the outer event's time less that of the events nested in it (never below
    zero: two clocks, the runtime's and a delegate's, may not agree to the last microsecond)."""
    return [
        max(0.0, value - math.fsum(inner[run] for inner in nested if run < len(inner)))
        for run, value in enumerate(outer)
    ]


def _type(name: str) -> str:
    """The operator's kind: ``native_call_addmm.out`` is ``addmm.out``; a delegate's
    ``Fully Connected (NC, F32) GEMM #1`` is ``Fully Connected (NC, F32) GEMM``."""
    return re.sub(r" #\d+$", "", name.removeprefix(KERNEL_PREFIX))


def _backend(delegates: Sequence[str], block: int) -> str:
    if len(set(delegates)) == 1:
        return delegates[0]
    return delegates[block] if block < len(delegates) else "delegate"
