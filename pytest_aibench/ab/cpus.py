"""The CPUs the two sides of an A/B run share, sized to the threads the workload runs.

Both sides get one CPU set, the same for both, so that neither gets a faster core. Its size is
the workload's thread count: a runtime that starts two intra-op threads inside a one-CPU pin
measures its threads fighting over that CPU, not the model (measured here on a 20-layer
convolutional network with ONNX Runtime's default threads: 7.0 ms a call pinned to one CPU,
1.6 ms on two, 2.8 ms with one thread on one), and that contention swamps a 5% change.

The thread count is the spec's where it gives one (the test's ``threads``, FAI-PEP's field that
commands read as ``{threads}``, or the runtime's own knob); else the runtime's default: as many
as the device has CPUs for ONNX Runtime, PyTorch and ExecuTorch, which the worker then sets
explicitly (ONNX Runtime counts the machine's cores, not the pin), one for LiteRT and for
programs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..devices.base import Device
from ..spec.model import Case

# Where a spec sets an in-process runtime's threads, and whether the runtime's default is one
# thread per CPU of the device (True) or a single thread (False).
RUNTIME_THREADS = {
    "onnxruntime": ("onnxruntime", "intra_op_num_threads", True),
    "pytorch": ("pytorch", "num_threads", True),
    "tflite": ("tflite", "num_threads", False),
    "executorch": ("executorch", "num_threads", True),  # its threadpool: one per core
    "genai": ("genai", "num_threads", True),  # ONNX Runtime's intra-op threads underneath
}
NO_KNOB = ("", "", False)  # programs: only the test's "threads" says
ONE_THREAD = 'one thread, the default (a test\'s "threads" sets more)'


@dataclass(frozen=True)
class CpuShare:
    """What the two sides of one A/B item run on."""

    cpus: tuple[int, ...] | None  # None: a device this process cannot pin (a phone, a board)
    threads: int  # the workload's threads
    set_by: str  # where that number comes from, in words
    runtime_threads: int | None = None  # given to a runtime whose spec leaves its threads
    note: str | None = None  # more threads than CPUs, said plainly

    def record(self) -> dict[str, Any]:
        """The item's record of it (both sides ran so: ``ab.sides``)."""
        side = {
            "cpus": list(self.cpus) if self.cpus is not None else "the device's scheduler",
            "threads": self.threads,
            "threads_from": self.set_by,
        }
        return {"control": side, "treatment": dict(side)}


def cpu_share(case: Case, runner: str, device: Device) -> CpuShare:
    """The CPU set both sides run on: the workload's threads' worth of this machine's CPUs
    (the highest-numbered), or none where the device is not this machine. An in-process
    runtime whose own knob is not set is told the thread count, so that what ran is recorded
    and does not depend on how the runtime counts cores."""
    available = _allowed_cpus() if device.local else None
    section, knob, per_cpu = RUNTIME_THREADS.get(runner, NO_KNOB)
    knob_value = _count((case.test.get(section) or {}).get(knob))
    asked = knob_value or _count(case.test.get("threads"))
    if asked:
        threads, set_by = asked, "the spec"
    elif per_cpu:
        threads, set_by = len(available) if available else 1, "the runtime's default: one per CPU"
    else:
        threads, set_by = 1, ONE_THREAD
    given = threads if knob and not knob_value else None
    if available is None:
        return CpuShare(None, threads, set_by, given)
    note = None
    if threads > len(available):
        note = (
            f"the spec asks for {threads} threads; this device has {len(available)} CPUs for "
            f"the A/B, so the threads contend for them and the timing measures that; ask for "
            f"{len(available)} or fewer"
        )
    return CpuShare(available[-min(threads, len(available)) :], threads, set_by, given, note)


def _count(value: object) -> int | None:
    """A thread count from a spec: ``0`` and ``-1`` mean the runtime's default, as the
    runtimes read them."""
    return value if isinstance(value, int) and value > 0 else None


def _allowed_cpus() -> tuple[int, ...]:
    if not hasattr(os, "sched_getaffinity"):
        return tuple(range(os.cpu_count() or 1))
    return tuple(sorted(os.sched_getaffinity(0)))


@contextmanager
def pinned(share: CpuShare) -> Iterator[None]:
    """This process, and the programs and workers it starts meanwhile, on the share's CPUs."""
    if share.cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(share.cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)
