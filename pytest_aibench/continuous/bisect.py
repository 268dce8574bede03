"""Bisection: the first bad commit between a good and a bad one, each step an A/B run of the
midpoint's build against the good build on one device (the verdicts issue's gate), as
Chromium's Pinpoint does. The range is confirmed first (bad against good); an inconclusive step
is run again, with another block order and twice the A/B budget each time (a loaded machine
leaves a commit identical to the good one undecided within one budget: more pairs decide it),
and if still undecided after its retries, reported, never guessed; a commit that does not
build is skipped, as ``git bisect skip`` does."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..options import OPTIONS
from ..records import IMPROVED, INCONCLUSIVE, REGRESSED, UNCHANGED
from ..verdicts.statistics import Verdict
from .bench import Outcome, run_pytest
from .builds import Build, BuildCache
from .git import Commit, between, resolve


@dataclass(frozen=True)
class Step:
    commit: Commit
    call: str  # regressed, unchanged, improved, inconclusive, failed; "unbuilt" if skipped
    runs: int


@dataclass
class Bisection:
    good: Commit
    bad: Commit
    steps: list[Step] = field(default_factory=list)
    builds: set[str] = field(default_factory=set)  # commits built (or found built) for it
    first_bad: Commit | None = None
    evidence: list[str] = field(default_factory=list)  # the verdicts that convicted it
    problem: str = ""  # why no first bad commit was named

    @property
    def runs(self) -> int:
        return sum(step.runs for step in self.steps)

    def summary(self) -> str:
        again = sum(1 for step in self.steps if step.runs > 1)
        spent = f"{len(self.builds)} builds, {self.runs} pytest runs"
        if again:
            spent += f"; {again} of {len(self.steps)} steps measured again with more time"
        if self.first_bad is None:
            return f"aibench bisect: no first bad commit: {self.problem} ({spent})"
        lines = [
            f"aibench bisect: first bad commit {self.first_bad.id} {self.first_bad.subject}",
            *(f"  {line}" for line in self.evidence),
            f"  ({spent}; good {self.good.short}, bad {self.bad.short})",
        ]
        return "\n".join(lines)


def bisect(
    repo: Path,
    good: str,
    bad: str,
    cache: BuildCache,
    args: Sequence[str],
    retries: int = 3,
    say: Callable[[str], None] = print,
) -> Bisection:
    result = Bisection(resolve(repo, good), resolve(repo, bad))
    commits = between(repo, good, bad)  # after good, up to and including bad
    control = _build(cache, repo, result.good, result)
    if not control.ok:
        result.problem = f"the good commit {result.good.short} does not build: {control.reason}"
        return result
    lo, hi = -1, len(commits) - 1  # commits[lo] is good (-1: the good commit), commits[hi] bad
    unbuilt: set[int] = set()
    call, evidence = _decide(cache, repo, commits[hi], control, args, retries, result, say)
    if call != REGRESSED:
        result.problem = f"{result.bad.short} is {call} against {result.good.short}"
        return result
    while (mid := _midpoint(lo, hi, unbuilt)) is not None:
        call, found = _decide(cache, repo, commits[mid], control, args, retries, result, say)
        if call == "unbuilt":
            unbuilt.add(mid)
        elif call == REGRESSED:
            hi, evidence = mid, found
        elif call in (UNCHANGED, IMPROVED):
            lo = mid
        else:
            result.problem = (
                f"{commits[mid].short} stayed {call}: the first bad commit lies after "
                f"{(commits[lo] if lo >= 0 else result.good).short} and up to {commits[hi].short}"
            )
            return result
    result.first_bad, result.evidence = commits[hi], evidence
    if any(lo < index < hi for index in unbuilt):
        result.evidence.append("(or one of the commits before it that do not build)")
    return result


def _midpoint(lo: int, hi: int, unbuilt: set[int]) -> int | None:
    """The buildable commit nearest the middle of (lo, hi); ``None`` when none is left."""
    middle = (lo + hi) / 2
    left = [index for index in range(lo + 1, hi) if index not in unbuilt]
    return min(left, key=lambda index: (abs(index - middle), index)) if left else None


def _build(cache: BuildCache, repo: Path, commit: Commit, result: Bisection) -> Build:
    result.builds.add(commit.id)
    return cache.get(repo, commit)


def _decide(
    cache: BuildCache,
    repo: Path,
    commit: Commit,
    control: Build,
    args: Sequence[str],
    retries: int,
    result: Bisection,
    say: Callable[[str], None],
) -> tuple[str, list[str]]:
    """The step's call (an inconclusive one run again, up to ``retries`` times, with another
    block order and twice the A/B budget of the run before) and the regressed verdicts'
    lines."""
    build = _build(cache, repo, commit, result)
    if not build.ok:
        say(f"aibench bisect: {commit.short} does not build, skipped: {build.reason}")
        result.steps.append(Step(commit, "unbuilt", 0))
        return "unbuilt", []
    outcome, runs = Outcome(0), 0
    for attempt in range(1 + max(0, retries)):
        budget = [] if attempt == 0 else more_time(args, 2**attempt)
        outcome = run_pytest([*args, *budget, f"--aibench-seed={attempt}"], build, control)
        runs += 1
        if outcome.call() != INCONCLUSIVE:
            break
    call = outcome.call()
    say(f"aibench bisect: {commit.short} {commit.subject[:50]}: {call} against the good build")
    result.steps.append(Step(commit, call, runs))
    return call, _regressions(outcome)


BUDGET_OPTIONS = ("ab-max-time", "ab-time-limit")


def more_time(args: Sequence[str], factor: int) -> list[str]:
    """The A/B budget options (``--aibench-ab-max-time``, ``--aibench-ab-time-limit``) at
    ``factor`` times what ``args`` give them, or their defaults."""
    options = [option for option in OPTIONS if option.name in BUDGET_OPTIONS]
    return [
        f"{option.flag}={_given(args, option.flag, float(option.default)) * factor:g}"
        for option in options
    ]


def _given(args: Sequence[str], option: str, default: float) -> float:
    """The last value ``args`` give ``option`` (``--opt=X`` or ``--opt X``), else ``default``."""
    value = default
    for index, arg in enumerate(args):
        if arg.startswith(option + "="):
            value = float(arg.split("=", 1)[1])
        elif arg == option and index + 1 < len(args):
            value = float(args[index + 1])
    return value


def _regressions(outcome: Outcome) -> list[str]:
    return [
        f"{item['nodeid']}: {Verdict.from_dict(verdict).explain()}"
        for item in outcome.items
        for verdict in item.get("verdicts", [])
        if verdict["status"] == REGRESSED
    ]
