"""pytest on one build: the build's program as ``{program}`` (or, for a control, the A/B
control), its build record as ``--aibench-build-info``, the run file read back; and the
``aibench commits`` loop over many builds."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import AibenchError
from ..records import ItemRecord
from .builds import Build, BuildCache
from .git import Commit

Call = Literal["regressed", "improved", "unchanged", "inconclusive", "failed", "measured"]
BUILD, CONTROL = "{build}", "{control}"  # placeholders in pytest arguments


@dataclass(frozen=True)
class Outcome:
    """One pytest run of a build: its exit code and the items of its run file."""

    exit_code: int
    items: list[ItemRecord] = field(default_factory=list)

    def call(self) -> Call:
        """The run in one word: an A/B verdict where the items have one, ``measured`` for a
        plain run that passed, ``failed`` where pytest did not get that far."""
        statuses = {v["status"] for item in self.items for v in item.get("verdicts", [])}
        if "regressed" in statuses:
            return "regressed"
        if self.exit_code not in (0, 1) or not self.items:
            return "failed"
        if "inconclusive" in statuses:
            return "inconclusive"
        if self.exit_code == 1:
            return "failed"  # items failed, and not as regressions
        if "improved" in statuses:
            return "improved"
        return "unchanged" if statuses else "measured"


def pytest_command(args: Sequence[str], build: Build, control: Build | None) -> list[str]:
    """The pytest command line for ``build``: ``{build}`` and ``{control}`` in the user's
    arguments stand for the builds' products; without them the product is the program (and
    the control's the A/B control program)."""
    if control is None and any(CONTROL in arg for arg in args):
        raise AibenchError(f"{CONTROL} in the pytest arguments needs an A/B base (--ab-base)")
    placed = [
        arg.replace(BUILD, str(build.program)).replace(CONTROL, str(control and control.program))
        for arg in args
    ]
    command = [sys.executable, "-m", "pytest", *placed, f"--aibench-build-info={build.info_file}"]
    if not any(BUILD in arg for arg in args):
        command.append(f"--aibench-program={build.program}")
    if control is not None and not any(CONTROL in arg for arg in args):
        command.append(f"--aibench-ab-control={control.program}")
    return command


def run_pytest(args: Sequence[str], build: Build, control: Build | None = None) -> Outcome:
    """Run pytest on ``build`` (A/B against ``control`` when given); its output goes to this
    process's, as a CI log wants it."""
    with tempfile.TemporaryDirectory(prefix="aibench-run-") as scratch:
        run_file = Path(scratch) / "run.json"
        command = [*pytest_command(args, build, control), f"--aibench-json={run_file}"]
        sys.stdout.flush()
        code = subprocess.run(command, check=False).returncode
        if not run_file.is_file():
            return Outcome(code)
        items = json.loads(run_file.read_text(encoding="utf-8")).get("items", [])
        return Outcome(code, items)


@dataclass(frozen=True)
class CommitResult:
    commit: Commit
    built: bool
    call: Call | None  # None: not benchmarked (its build failed)


def benchmark_commits(
    repo: Path,
    commits: Sequence[Commit],
    cache: BuildCache,
    args: Sequence[str],
    base: Commit | None,
    say: Callable[[str], None] = print,
) -> list[CommitResult]:
    """Build and benchmark each commit, oldest first; A/B against ``base``'s build when given.
    A failed build is recorded and skipped."""
    control = cache.get(repo, base) if base is not None else None
    if control is not None and not control.ok:
        raise AibenchError(
            f"the A/B base {base.short if base else ''} does not build: "
            f"{control.reason}; choose another with --ab-base"
        )
    results = []
    for number, commit in enumerate(commits, 1):
        where = f"[{number}/{len(commits)}] {commit.short} {commit.subject[:50]}"
        build = cache.get(repo, commit)
        if not build.ok:
            say(f"aibench: {where}: build failed, skipped: {build.reason}")
            results.append(CommitResult(commit, False, None))
            continue
        say(f"aibench: {where}: built; benchmarking")
        outcome = run_pytest(args, build, control)
        call = outcome.call()
        say(f"aibench: {where}: {call} (pytest exit code {outcome.exit_code})")
        results.append(CommitResult(commit, True, call))
    return results
