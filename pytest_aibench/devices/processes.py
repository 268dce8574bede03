"""Programs on the host that never outlive pytest, nor the time they were given.

Every benchmark program starts in a session of its own (so a timeout kills it and all it started
as one process group) with a tag in its environment, ``AIBENCH_PROCESS_TAG``, that its
descendants inherit even when they leave its group (``setsid()``, a daemon's double fork). When a
command ends, whatever still carries its tag is killed, so a child that keeps stdout open holds
the wait no longer than a moment after the program itself ends. If pytest itself dies, even by
``kill -9``, a small watchdog process (one per pytest process, waiting on a pipe that only the
kernel closes then) kills everything carrying this process's tags. Linux (``/proc``); elsewhere
only process groups.

A descendant that clears its environment (losing the tag) and leaves the session escapes both;
so on Linux the first command makes this process a child subreaper: whatever is orphaned below
it is adopted by it instead of by init, and what was adopted while a command ran is killed and
reaped when the command ends.

Host programs start with no ``preexec_fn`` (the watchdog, not ``PR_SET_PDEATHSIG``, makes them
die with pytest): a ``preexec_fn`` makes Python fork the whole pytest process instead of
``vfork``, measured here at 18.6 ms per start against 0.8 ms, time that every benchmark
program and every A/B block paid. Clients that carry no tag (ssh) still get
:func:`child_dies_with_parent`.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

TAG_VARIABLE = "AIBENCH_PROCESS_TAG"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
ADOPTED_ROUNDS = 20  # kill-and-reap passes: each may orphan the next generation
_LINUX = sys.platform.startswith("linux")
# How long the output pipes may stay open after the program itself has ended (a descendant
# holding them): then the leftovers are killed.
PIPE_GRACE_S = 2.0
_POLL_S = 0.2

# The watchdog: waits for end of file on its stdin (pytest exited, however), then kills every
# process whose environment carries a tag starting with its argument.
_WATCHDOG = """
import os, signal, sys
sys.stdin.buffer.read()
prefix = ("\\0%s=%s" % (sys.argv[1], sys.argv[2])).encode()
for entry in os.listdir("/proc"):
    if entry.isdigit() and int(entry) != os.getpid():
        try:
            with open("/proc/%s/environ" % entry, "rb") as handle:
                if prefix in b"\\0" + handle.read():
                    os.kill(int(entry), signal.SIGKILL)
        except OSError:
            pass
"""


@functools.cache
def _prctl() -> Callable[..., int]:
    import ctypes  # here, not at import: the plugin's import stays light

    return cast("Callable[..., int]", ctypes.CDLL(None, use_errno=True).prctl)


def die_with_parent() -> None:
    """Runs in a child between fork and exec (so nothing may be imported here; the parent
    looked ``prctl`` up first): the kernel kills the child when pytest dies."""
    if _LINUX:
        _prctl()(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def child_dies_with_parent() -> Callable[[], None] | None:
    """The ``preexec_fn`` that makes a child die with pytest, made ready in the parent."""
    if not _LINUX:
        return None
    _prctl()
    return die_with_parent


class _Tags:
    """This process's tags (``<process tag>-<n>``, one per command) and its watchdog."""

    def __init__(self) -> None:
        self.prefix = os.urandom(8).hex()
        self._numbers = itertools.count()
        self._watchdog: subprocess.Popen[bytes] | None = None

    def new(self) -> str:
        if self._watchdog is None and _LINUX:
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, TAG_VARIABLE, self.prefix],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )  # a Ctrl-C to pytest's group must not stop it first
            atexit.register(self._stop_watchdog)
        return f"{self.prefix}-{next(self._numbers)}"

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None and self._watchdog.stdin is not None:
            self._watchdog.stdin.close()  # it kills what is left of ours, then exits
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._watchdog.wait(timeout=10)


_TAGS = _Tags()


def new_tag() -> str:
    """A tag for one more process tree of ours: put it in the environment as
    ``AIBENCH_PROCESS_TAG``; :func:`kill_tree` and the watchdog find what carries it."""
    return _TAGS.new()


def tagged(tag: str) -> list[int]:
    """The processes whose environment carries ``tag``."""
    wanted = f"\0{TAG_VARIABLE}={tag}\0".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if wanted in b"\0" + environ.read_bytes() + b"\0":
                found.append(int(environ.parent.name))
    return found


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def run_process(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
) -> Finished:
    """Run ``argv`` and wait at most ``timeout`` seconds; nothing it started is left running.
    ``OSError`` if it cannot start."""
    tag = new_tag()
    before = _adopting()
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env={**env, TAG_VARIABLE: tag},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
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
                    kill_tree(process.pid, tag)
                    _kill_adopted(before | {process.pid})  # they may hold the pipes too
                    stdout, stderr = process.communicate()
                    break
        timed_out = ended_at is None and time.monotonic() >= deadline
    finally:
        kill_tree(process.pid, tag)  # whatever the command left behind, even on ^C
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        _kill_adopted(before | {process.pid})
    return Finished(process.returncode, stdout, stderr, timed_out)


@functools.cache
def _subreaper() -> bool:
    """Once per process: adopt our orphaned descendants (Linux 3.4+)."""
    return _LINUX and _prctl()(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _adopting() -> set[int]:
    """This process's children now, once it adopts orphans (empty where it cannot)."""
    return _children() if _subreaper() else set()


def _children() -> set[int]:
    me, found = os.getpid(), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat.read_text().rpartition(")")[2].split()[1]) == me:
                found.add(int(stat.parent.name))
    return found


def _kill_adopted(known: set[int]) -> None:
    """Kill and reap the children this process gained during a command that are none of
    ``known``: descendants of the command that left its session and its tag behind."""
    if not _subreaper():
        return
    for _ in range(ADOPTED_ROUNDS):
        adopted = _children() - known
        if not adopted:
            return
        for pid in adopted:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for pid in adopted:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def kill_tree(pgid: int, tag: str) -> None:
    """The process group ``pgid``, then every process that still carries ``tag``."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    for pid in tagged(tag) if _LINUX else ():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
