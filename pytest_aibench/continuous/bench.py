"""pytest on one build: the build's program as ``{program}`` (or, for a control, the A/B
control), its build record as ``--aibench-build-info``, the run file read back; and the
``aibench commits`` loop over many builds."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast, get_args

from ..atomic import write_json
from ..errors import AibenchError
from ..records import (
    FAILED,
    IMPROVED,
    INCONCLUSIVE,
    MEASURED,
    REGRESSED,
    UNCHANGED,
    ItemRecord,
    RunCall,
)
from .builds import Build, BuildCache
from .git import Commit

BUILD, CONTROL = "{build}", "{control}"  # placeholders in pytest arguments


@dataclass(frozen=True)
class Outcome:
    """One pytest run of a build: its exit code and the items of its run file."""

    exit_code: int
    items: list[ItemRecord] = field(default_factory=list)

    def call(self) -> RunCall:
        """The run in one word: an A/B verdict where the items have one, ``measured`` for a
        plain run that passed, ``failed`` where pytest did not get that far."""
        statuses = {v["status"] for item in self.items for v in item.get("verdicts", [])}
        if REGRESSED in statuses:
            return REGRESSED
        if self.exit_code not in (0, 1) or not self.items:
            return FAILED
        if INCONCLUSIVE in statuses:
            return INCONCLUSIVE
        if self.exit_code == 1:
            return FAILED  # items failed, and not as regressions
        if IMPROVED in statuses:
            return IMPROVED
        return UNCHANGED if statuses else MEASURED


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
    call: RunCall | None  # None: not benchmarked (its build failed)


def benchmark_commits(
    repo: Path,
    commits: Sequence[Commit],
    cache: BuildCache,
    args: Sequence[str],
    base: Commit | None,
    say: Callable[[str], None] = print,
    *,
    resume: bool = False,
) -> list[CommitResult]:
    """Build and benchmark each commit, oldest first; A/B against ``base``'s build when given.
    A failed build is recorded and skipped. With ``resume``, a commit this same measurement
    (arguments and base) already measured is not measured again: its call is read back."""
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
        done = _measured(build, args, control)
        if resume and (earlier := _read_call(done)) is not None:
            say(f"aibench: {where}: {earlier}, measured by an earlier run (--again to repeat)")
            results.append(CommitResult(commit, True, earlier))
            continue
        say(f"aibench: {where}: built; benchmarking")
        outcome = run_pytest(args, build, control)
        call = outcome.call()
        say(f"aibench: {where}: {call} (pytest exit code {outcome.exit_code})")
        if call != "failed":
            write_json(done, {"call": call, "exit_code": outcome.exit_code})
        results.append(CommitResult(commit, True, call))
    return results


def _measured(build: Build, args: Sequence[str], control: Build | None) -> Path:
    """Where a build keeps the call of one measurement: its arguments and A/B base."""
    key = json.dumps([list(args), control.commit.id if control else None]).encode("utf-8")
    return build.folder / f"measured-{hashlib.sha256(key).hexdigest()[:12]}.json"


def _read_call(path: Path) -> RunCall | None:
    try:
        call = json.loads(path.read_text(encoding="utf-8"))["call"]
    except (OSError, ValueError, KeyError, TypeError):
        return None  # never measured, or a note that is not ours: measure
    return cast("RunCall", call) if call in get_args(RunCall) else None
