"""A long-lived process that runs blocks of an in-process case for A/B mode:
``python -m pytest_aibench.ab.worker``. Pure (no pytest), so that it starts in any Python
environment that has the case's framework: the plugin's own source is put on its
``PYTHONPATH``, so a control environment needs the framework (and numpy), not this plugin.

The parent writes requests to the worker's stdin and reads replies from its stdout, each a
pickled object after its length (8 bytes, big-endian). A :class:`Block` runs the case from the
start (model loaded, timed runs, operators, golden check) and keeps the one inference call it
timed under its ``keep`` key; its reply is the block's
:class:`~pytest_aibench.recorder.Recorder`. A :class:`Timed` times that kept call again, with
nothing reloaded, so that the blocks of the two sides lie milliseconds apart; its reply is the
samples. An error is replied as its message. Pickle is safe here: both ends are this package,
on one machine, over a pipe.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from ..devices.host import HostDevice, host_info
from ..devices.processes import TAG_VARIABLE, kill_tree, new_tag
from ..errors import RunnerError
from ..recorder import Recorder
from ..runners import BUILTIN_RUNNERS
from ..runners.base import CaseFiles, RunContext
from ..runners.inprocess import timed_calls
from ..spec.model import Case
from ..verdicts.rules import Tolerance

_LENGTH = struct.Struct(">Q")
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Block:
    """Run ``case`` once with ``files``: ``warmup`` untimed runs, ``iterations`` timed ones."""

    runner: str  # a built-in runner's name (runners.BUILTIN_RUNNERS)
    case: Case
    files: CaseFiles
    iterations: int
    warmup: int
    timeout: float
    backend: str
    tolerance: Tolerance
    keep: str | None = None  # keep the timed call under this name, for Timed requests
    observer_prefixes: tuple[str, ...] = ()  # as the pytest process parses program output
    threads: int | None = None  # RunContext.threads
    alternating: bool = False  # RunContext.alternating


@dataclass(frozen=True)
class Timed:
    """Time the call a Block kept under ``key``: ``warmup`` untimed calls, ``iterations``
    timed ones."""

    key: str
    iterations: int
    warmup: int
    timeout: float


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None  # the other end has gone
    (size,) = _LENGTH.unpack(head)
    return pickle.loads(stream.read(size))


Call = Callable[[], Any]


def run_block(block: Block, scratch: Path, kept: dict[str, Call]) -> Recorder:
    device = HostDevice(host_info(), scratch)
    recorder = Recorder(1, 0)
    hostdir = Path(tempfile.mkdtemp(prefix="hostdir-", dir=scratch))
    workdir = device.new_workdir()
    try:
        BUILTIN_RUNNERS[block.runner]().run(
            RunContext(
                case=block.case,
                device=device,
                files=block.files,
                recorder=recorder,
                workdir=workdir,
                hostdir=hostdir,
                iterations=block.iterations,
                warmup=block.warmup,
                timeout=block.timeout,
                program=None,
                observer_prefixes=block.observer_prefixes,
                tolerance=block.tolerance,
                backend=block.backend,
                keep_call=partial(kept.__setitem__, block.keep) if block.keep else None,
                threads=block.threads,
                alternating=block.alternating,
            )
        )
    finally:
        device.remove_workdir(workdir)
    return recorder


def answer(request: Block | Timed, scratch: Path, kept: dict[str, Call]) -> object:
    if isinstance(request, Timed):
        return timed_calls(kept[request.key], request.iterations, request.warmup)
    # the framework imported before the case starts, so that a fresh process's NET load is
    # the model's, as in pytest's process, not the framework's import
    BUILTIN_RUNNERS[request.runner]().unavailable(request.case, None)
    return run_block(request, scratch, kept)


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until the parent closes the pipe."""
    kept: dict[str, Call] = {}
    with tempfile.TemporaryDirectory(prefix="aibench-worker-") as scratch:
        while (request := _receive(requests)) is not None:
            try:
                reply = answer(request, Path(scratch), kept)
            except Exception as exc:  # the parent reports it as the item's failure
                reply = f"{type(exc).__name__}: {exc}"
            _send(replies, reply)


class WorkerProcess:
    """The parent's handle on one worker running under ``python``. Every request is answered
    within its ``timeout`` (the case's) or the worker is killed with all it started and the
    item fails; the worker carries a process tag, so nothing of it outlives pytest
    (devices/processes.py)."""

    def __init__(self, python: str) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE_PARENT), *filter(None, [env.get("PYTHONPATH")])]
        )
        self.python = python
        self.tag = new_tag()
        try:
            self.process = subprocess.Popen(
                [python, "-m", "pytest_aibench.ab.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**env, TAG_VARIABLE: self.tag},
                start_new_session=True,  # its own group: killed as one, spared pytest's ^C
            )
        except OSError as exc:
            raise RunnerError(f"the A/B worker's Python {python!r} cannot start: {exc}") from None

    def run(self, block: Block) -> Recorder:
        recorder: Recorder = self._ask(block, block.timeout)
        return recorder

    def time(self, request: Timed) -> list[float]:
        samples: list[float] = self._ask(request, request.timeout)
        return samples

    def _ask(self, request: Block | Timed, timeout: float) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        with contextlib.suppress(BrokenPipeError):  # the reply below says what happened
            _send(self.process.stdin, request)
        try:
            reply = _receive_within(self.process.stdout.fileno(), time.monotonic() + timeout)
        except TimeoutError:
            self.kill()
            raise RunnerError(
                f"the A/B worker ({self.python}) gave no answer within {timeout:g} s (the "
                "case's timeout, --aibench-timeout): it was killed with all it started"
            ) from None
        if reply is None:
            code = self.process.wait()
            raise RunnerError(
                f"the A/B worker ({self.python}) exited with code {code}: it needs the case's "
                "framework and numpy in that environment"
            )
        if isinstance(reply, str):
            raise RunnerError(f"in the A/B worker ({self.python}): {reply}")
        return reply

    def kill(self) -> None:
        kill_tree(self.process.pid, self.tag)
        self.process.wait()

    def close(self) -> None:
        """End of input: the worker returns; one that does not within a grace is killed."""
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):  # a worker already gone
                    stream.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=CLOSE_GRACE_S)
        self.kill()  # and whatever it started, even after it returned


CLOSE_GRACE_S = 5.0


def _receive_within(descriptor: int, deadline: float) -> Any:
    """One reply read from ``descriptor`` by ``deadline`` (``TimeoutError`` after it);
    ``None`` when the worker has gone."""
    head = _read_within(descriptor, _LENGTH.size, deadline)
    if head is None:
        return None
    (size,) = _LENGTH.unpack(head)
    body = _read_within(descriptor, size, deadline)
    return None if body is None else pickle.loads(body)


def _read_within(descriptor: int, size: int, deadline: float) -> bytes | None:
    chunks, missing = [], size
    while missing:
        ready, _, _ = select.select([descriptor], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise TimeoutError
        chunk = os.read(descriptor, min(missing, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        missing -= len(chunk)
    return b"".join(chunks)


def main() -> None:
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever a framework prints goes to stderr, not into the replies
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    # Run as the package's module, not as __main__, so that the requests the parent pickles
    # (pytest_aibench.ab.worker.Block, .Timed) are the classes this code tests for.
    from pytest_aibench.ab.worker import main as package_main

    package_main()
