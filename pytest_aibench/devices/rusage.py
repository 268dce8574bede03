"""A benchmark program's peak resident memory on any device with a shell, as the kernel counts it.

The kernel keeps each process's high-water mark of resident memory and hands it to the parent
that reaps it (``wait4``'s ``ru_maxrss``, the largest of the process and the children it reaped).
pytest cannot read it for its own children: they start by ``vfork``, and the kernel books the
memory they ran in before ``exec`` (pytest's own, often hundreds of MiB with a framework
loaded) to their account. So the program runs under the device's ``time -v`` (GNU time on a
Linux host or board, toybox's on Android, busybox's where that is all there is): a small
process whose child starts clean, and whose report gives that child's peak. The report is
taken out of the program's stderr here, so that parsers and error tails see the program alone.
A device with no such program records no memory metric, and says so in the item's extras.
"""

from __future__ import annotations

import functools
import re
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

# Where a ``time`` with ``-v`` may be (every Android since 9 has toybox's); the shells' own
# ``time`` keyword has no ``-v``.
CANDIDATES = ("toybox time", "/usr/bin/time", "/bin/time", "busybox time")

# One shell line that prints the first candidate that runs ``-v true``, or nothing.
PROBE = (
    "for t in "
    + " ".join(shlex.quote(candidate) for candidate in CANDIDATES)
    + '; do if $t -v true >/dev/null 2>&1; then echo "$t"; break; fi; done'
)

NOT_MEASURED = (
    "not measured: the device has no time program with -v (GNU time, toybox or busybox) "
    "to report the program's peak resident memory"
)

_PEAK = re.compile(r"^\s*(?:Maximum resident set size \(kbytes\)|Max RSS \(KiB\)):\s*(\d+)\s*$")
_SIGNAL = re.compile(r"^Command terminated by signal (\d+)$")
# (first line, last line) of each report: GNU time and busybox, then toybox
_REPORTS = (
    (re.compile(r'^\s*Command being timed: "'), re.compile(r"^\s*Exit status: ")),
    (re.compile(r"^Real time \(s\):"), re.compile(r"^Involuntary context switches:")),
)
_STATUS = re.compile(r"^Command (?:exited with non-zero status \d+|terminated by signal \d+)$")


@functools.cache
def probe_host() -> list[str] | None:
    """This machine's ``time -v``, as argv words; ``None`` if it has none."""
    found = subprocess.run(
        ["sh", "-c", PROBE], capture_output=True, text=True, check=False, timeout=30
    )
    return chosen(found.stdout)


def chosen(probe_output: str) -> list[str] | None:
    """The words of the time program :data:`PROBE` printed."""
    lines = probe_output.strip().splitlines()
    return [*lines[-1].split(), "-v"] if lines and lines[-1] in CANDIDATES else None


def measured(time_program: Sequence[str] | None, argv: Sequence[str]) -> list[str]:
    """``argv`` run under the time program, if there is one."""
    return [*time_program, *argv] if time_program else list(argv)


@dataclass(frozen=True)
class Report:
    stderr: str  # the program's own, the report taken out
    peak_kib: int | None
    signal: int | None  # what killed the program, where the report says so

    def returncode(self, reported: int) -> int:
        """The program's own exit status: ``-N`` for signal N, as Python gives it, where GNU
        time exited with 128 + N for it."""
        return -self.signal if self.signal and reported == 128 + self.signal else reported


def split_report(stderr: str) -> Report:
    """Take the last time report out of ``stderr``; what it says of the program's memory and
    of a signal that ended it (GNU time exits 128 + N then, where the program itself gave -N)."""
    lines = stderr.splitlines(keepends=True)
    for first, last in _REPORTS:
        starts = [i for i, line in enumerate(lines) if first.match(line)]
        if not starts:
            continue
        start = starts[-1]
        end = next((i for i in range(start, len(lines)) if last.match(lines[i])), len(lines) - 1)
        if start > 0 and _STATUS.match(lines[start - 1].strip()):
            start -= 1
        report = lines[start : end + 1]
        peaks = [int(m.group(1)) for line in report if (m := _PEAK.match(line))]
        signals = [int(m.group(1)) for line in report if (m := _SIGNAL.match(line.strip()))]
        return Report(
            "".join(lines[:start] + lines[end + 1 :]),
            peaks[0] if peaks else None,
            signals[0] if signals else None,
        )
    return Report(stderr, None, None)
