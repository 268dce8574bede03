"""Follow a branch: fetch, then build and benchmark each new commit (or every N-th), A/B
against a base when asked; the last finished commit is kept in a state file so that a restart
resumes there. It stops between commits when the status file says ``0`` (FAI-PEP's status
file) or on SIGTERM (a benchmark under way finishes first)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ..atomic import write_json
from .bench import benchmark_commits
from .builds import BuildCache
from .git import Commit, fetch, resolve, select, tip

WEEK = "week"  # --ab-base week: the first commit of the branch since Monday 00:00 UTC


@dataclass(frozen=True)
class Watch:
    repo: Path
    branch: str
    interval: float
    step: int
    cache: BuildCache
    args: Sequence[str]
    state_file: Path
    status_file: Path | None
    ab_base: str | None  # a revision, WEEK, or None (no A/B)
    say: Callable[[str], None] = print

    def run(self, rounds: int | None = None) -> int:
        """Watch until stopped (or for ``rounds`` rounds); the number of commits benchmarked."""
        done, round_number = 0, 0
        with _stop_on_sigterm() as stopping:
            while not (stopping() or self._told_to_stop()):
                done += self._round(stopping)
                round_number += 1
                if rounds is not None and round_number >= rounds:
                    break
                self._sleep(stopping)
        return done

    def _round(self, stopping: Callable[[], bool]) -> int:
        fetch(self.repo)
        head = tip(self.repo, self.branch)
        last = _read_state(self.state_file).get("last")
        if last == head.id:
            return 0
        new = select(
            self.repo,
            revisions=f"{last}..{head.id}" if last else head.id,
            last=None if last else 1,
            step=self.step,
        )
        done = 0
        for commit in new:
            if stopping() or self._told_to_stop():
                break
            base = self._base(commit)
            benchmark_commits(self.repo, [commit], self.cache, self.args, base, self.say)
            write_json(self.state_file, {"last": commit.id, "time": commit.time})
            done += 1
        return done

    def _base(self, commit: Commit) -> Commit | None:
        if self.ab_base is None:
            return None
        if self.ab_base != WEEK:
            return resolve(self.repo, self.ab_base)
        when = datetime.fromisoformat(commit.time)
        monday = (when - timedelta(days=when.weekday())).replace(hour=0, minute=0, second=0)
        week = select(self.repo, revisions=commit.id, since=monday.isoformat())
        return week[0] if week else commit

    def _told_to_stop(self) -> bool:
        if self.status_file is None or not self.status_file.is_file():
            return False
        return self.status_file.read_text(encoding="utf-8").strip() == "0"

    def _sleep(self, stopping: Callable[[], bool]) -> None:
        end = time.monotonic() + self.interval
        while time.monotonic() < end and not (stopping() or self._told_to_stop()):
            time.sleep(min(0.2, max(0.0, end - time.monotonic())))


def _read_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    state = json.loads(path.read_text(encoding="utf-8"))
    return state if isinstance(state, dict) else {}


@contextmanager
def _stop_on_sigterm() -> Iterator[Callable[[], bool]]:
    """SIGTERM sets a flag the loop checks between commits (a benchmark under way finishes and
    is stored); the old handler comes back afterwards."""
    stopped = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopped
        stopped = True

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield lambda: stopped
    finally:
        signal.signal(signal.SIGTERM, previous)
