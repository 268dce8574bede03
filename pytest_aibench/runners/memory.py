"""Resident memory of this process, for the in-process runners: the peak of one item, not of
every item the worker ran before it.

Linux keeps a process's high-water mark of resident memory (``VmHWM`` in ``/proc/self/status``)
and lets the process reset it to the current size (``5`` written to ``/proc/self/clear_refs``,
Linux 4.0 and later). An item resets it before loading its model, so the mark it reads after
its runs is its own peak; the model's increment is that peak less what was resident before the
load. Where the reset is refused (another kernel, a restricted /proc) nothing is recorded: a
process-lifetime peak would belong to earlier items.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs: reset the peak resident set size to the current one


def _kib(field: str, status: Path = STATUS) -> int | None:
    try:
        text = status.read_text(encoding="ascii")
    except OSError:
        return None
    found = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class PeakWatch:
    """Started before a model is loaded; :meth:`read` gives (peak, increment) in MiB."""

    resident_before_kib: int

    @classmethod
    def start(cls) -> PeakWatch | None:
        """``None`` where the peak cannot be reset (then no memory metric is recorded)."""
        resident = _kib("VmRSS")
        if resident is None:
            return None
        try:
            CLEAR_REFS.write_text(RESET_PEAK, encoding="ascii")
        except OSError:
            return None
        return cls(resident)

    def read(self) -> tuple[float, float] | None:
        peak = _kib("VmHWM")
        if peak is None:
            return None
        return peak / 1024, max(0, peak - self.resident_before_kib) / 1024
