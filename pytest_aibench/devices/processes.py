"""Programs on the host that never outlive pytest, nor the time they were given.

A benchmark program runs in a session of its own (so a timeout can kill it and all it started as
one process group) and is killed by the kernel if the pytest process dies, even by ``kill -9``
(``PR_SET_PDEATHSIG``). pytest becomes a *subreaper* (``PR_SET_CHILD_SUBREAPER``): a descendant
that leaves the program's group (``setsid()``, a daemon's double fork) is re-parented to pytest
instead of init, so it is found and killed once the command ends. A descendant that keeps the
program's stdout open no longer holds the wait past the program's own end for more than a few
seconds. Linux only; elsewhere only the process group is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_LINUX = sys.platform.startswith("linux")
# How long the output pipes may stay open after the program itself has ended (a descendant
# holding them): then the leftovers are killed.
PIPE_GRACE_S = 2.0
_POLL_S = 0.2


def _prctl(option: int, value: int) -> None:
    if _LINUX:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(option, value, 0, 0, 0)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def become_subreaper() -> None:
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def children() -> set[int]:
    """The processes whose parent is this one (``/proc``; empty where there is none)."""
    found = set()
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            # the command name, in parentheses, may hold spaces: the fields after it are fixed
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                found.add(int(stat.parent.name))
    return found


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def run_process(argv: Sequence[str], *, env: Mapping[str, str], cwd: str,
                timeout: float) -> Finished:
    """Run ``argv`` and wait at most ``timeout`` seconds; nothing it started is left running.
    ``OSError`` if it cannot start."""
    become_subreaper()
    before = children()
    process = subprocess.Popen(
        list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True,
        preexec_fn=_die_with_parent if _LINUX else None,
    )
    deadline, ended_at = time.monotonic() + timeout, None
    try:
        while True:
            try:
                stdout, stderr = process.communicate(timeout=_POLL_S)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if process.poll() is not None and ended_at is None:
                    ended_at = now
                if now >= deadline or (ended_at is not None and now - ended_at > PIPE_GRACE_S):
                    _kill_leftovers(process.pid, before)
                    stdout, stderr = process.communicate()
                    break
        timed_out = ended_at is None and time.monotonic() >= deadline
    finally:
        _kill_leftovers(process.pid, before)  # whatever the command left behind, even on ^C
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
    return Finished(process.returncode, stdout, stderr, timed_out)


def _kill_leftovers(pgid: int, before: set[int]) -> None:
    """The program's group, then every orphan of it re-parented to us meanwhile, reaped."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in children() - before - {pgid}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
