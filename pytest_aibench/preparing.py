"""What an item needs before it runs, for the fixtures: its runner (a plugin's, through the
``pytest_aibench_runner`` hook, else a built-in one), errors at setup said in one paragraph, and
SIGTERM made an interrupt once something is benchmarked."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .errors import AibenchError

if TYPE_CHECKING:
    from .options import Settings
    from .runners.base import Runner
    from .spec.model import Case


def runner_for(config: pytest.Config, settings: Settings, case: Case) -> Runner:
    """The case's runner; the item fails for a framework no runner knows, and skips where the
    runner cannot run here (its framework is not installed)."""
    runner: Runner | None = config.hook.pytest_aibench_runner(
        config=config, framework=case.framework
    )
    if runner is None:
        from .runners import BUILTIN_RUNNERS

        factory = BUILTIN_RUNNERS.get(case.framework)
        if factory is None:  # a typo must not pass CI as a skip
            pytest.fail(
                f"{case.where}: no runner for framework {case.framework!r} (model format "
                f"{case.format!r}) is installed; runners here: "
                f"{', '.join(sorted(BUILTIN_RUNNERS))}. A plugin adds one with the "
                "pytest_aibench_runner hook",
                pytrace=False,
            )
        runner = factory()
    reason = runner.unavailable(case, settings.program)
    if reason:
        pytest.skip(reason)
    return runner


@contextlib.contextmanager
def one_paragraph() -> Iterator[None]:
    """Our errors at setup (a download, a device) as their message alone: it says where and how
    to fix; pytest's setup traceback through our code would only bury it."""
    try:
        yield
    except AibenchError as exc:
        pytest.fail(str(exc), pytrace=False)


def interrupt_on_sigterm(config: pytest.Config) -> None:
    """SIGTERM (a CI job cancelled, ``kill``) ends the run as Ctrl-C does: the running program is
    killed with all it started and the run is marked interrupted, instead of Python dying at
    once and leaving the benchmark running as an orphan. Installed when the first item that
    benchmarks sets up, so that a run that benchmarks nothing keeps its own signal handling."""
    if threading.current_thread() is not threading.main_thread() or config.stash.get(
        _SIGTERM_HANDLED, False
    ):
        return
    config.stash[_SIGTERM_HANDLED] = True

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, interrupt)

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    config.add_cleanup(restore)


_SIGTERM_HANDLED = pytest.StashKey[bool]()
