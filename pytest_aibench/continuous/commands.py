"""The continuous commands of ``aibench``: commits, watch, changes, regressions, triage,
bisect. Everything after ``--`` is pytest's command line, run once per build."""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..options import STORAGE
from ..reporting.terminal import render_table
from ..store import history
from ..store.regressions import NEW, OPEN, TRIAGE_STATES, Alert, read_lab, set_triage
from ..verdicts.regressions import series_changes
from .bench import benchmark_commits
from .bisect import bisect
from .builds import BuildCache
from .git import Commit, resolve, select
from .watch import Watch

DEFAULT_BUILDS = Path(STORAGE) / "builds"
FIRST, NONE = "first", "none"


def add_commands(commands: Any, store_options: argparse.ArgumentParser) -> None:
    """``commands``: the ``aibench`` sub-command parsers; ``store_options``: ``--db``."""
    build = argparse.ArgumentParser(add_help=False)
    group = build.add_argument_group("the repository and its builds")
    group.add_argument("--repo", type=Path, default=Path("."), help="the git repository (.)")
    group.add_argument(
        "--build",
        required=True,
        metavar="CMD",
        help="shell command that builds the program, run in a clean work tree "
        "at each commit ($AIBENCH_COMMIT is the commit)",
    )
    group.add_argument(
        "--program",
        required=True,
        metavar="PATH",
        help="what the build produces, relative to the work tree (a program, a "
        "folder): {program} in the specs, or {build} in the pytest arguments",
    )
    group.add_argument(
        "--builds",
        type=Path,
        default=DEFAULT_BUILDS,
        help="the build cache, one folder per commit, reused (%(default)s)",
    )
    group.add_argument("--build-timeout", type=float, default=3600.0, metavar="SECONDS")
    group.add_argument(
        "--same-host",
        action="store_true",
        help="builds take the host's lease, so they never run while a benchmark does on this host",
    )

    every = commands.add_parser(
        "commits", parents=[build], help="build and benchmark each chosen commit of a repository"
    )
    chosen = every.add_mutually_exclusive_group()
    chosen.add_argument("--range", metavar="A..B", help="the commits after A up to B")
    chosen.add_argument("--since", metavar="DATE", help="the commits since DATE")
    chosen.add_argument("--last", type=int, metavar="N", help="the last N commits")
    every.add_argument("--branch", default="HEAD", help="the tip for --since / --last (HEAD)")
    every.add_argument("--step", type=int, default=1, help="every N-th commit (1)")
    every.add_argument(
        "--ab-base",
        default=FIRST,
        metavar="REV|first|none",
        help="A/B each commit against this commit's build (first: the first "
        "chosen; none: plain runs)",
    )
    every.add_argument(
        "--again",
        action="store_true",
        help="measure commits again that an earlier run of the same command measured "
        "(by default a resumed run skips them)",
    )
    every.set_defaults(action=_commits)

    follow = commands.add_parser(
        "watch", parents=[build], help="build and benchmark each new commit of a branch"
    )
    follow.add_argument("--branch", default="main")
    follow.add_argument(
        "--interval",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="seconds between looks for new commits (600)",
    )
    follow.add_argument("--step", type=int, default=1, help="every N-th new commit (1)")
    follow.add_argument(
        "--ab-base",
        default=NONE,
        metavar="REV|week|none",
        help="A/B against this commit, or the week's first commit (none)",
    )
    follow.add_argument(
        "--state",
        type=Path,
        default=Path(STORAGE) / "watch-state.json",
        help="where the last finished commit is kept (%(default)s)",
    )
    follow.add_argument(
        "--status-file", type=Path, help="stop between commits once this file holds 0"
    )
    follow.set_defaults(action=_watch)

    search = commands.add_parser(
        "bisect", parents=[build], help="the first bad commit between a good and a bad one"
    )
    search.add_argument("--good", required=True, metavar="REV")
    search.add_argument("--bad", required=True, metavar="REV")
    search.add_argument(
        "--retries",
        type=int,
        default=3,
        help="re-runs of an inconclusive step, each with twice the A/B budget of the one before "
        "(3: up to 8 times --aibench-ab-max-time and --aibench-ab-time-limit)",
    )
    search.set_defaults(action=_bisect)

    found = commands.add_parser(
        "changes", parents=[store_options], help="change points in the history store's runs"
    )
    found.add_argument("--item", help="pytest node id (glob)")
    found.add_argument("--model", help="model name or spec identifier (glob)")
    found.add_argument("--device", help="device name, id or kind (glob)")
    found.add_argument("--metric", default="NET latency", help="(%(default)s)")
    found.add_argument("--alpha", type=float, default=0.001, help="significance (%(default)s)")
    found.add_argument(
        "--min-effect",
        type=float,
        default=1.0,
        metavar="PERCENT",
        help="smallest change reported (%(default)s%%)",
    )
    found.set_defaults(action=_changes)

    standing = commands.add_parser(
        "regressions",
        parents=[store_options],
        help="the regressions standing in the history store (the dashboard's front page): exit "
        "1 while one is untriaged",
    )
    standing.add_argument("--model", help="model name or spec identifier (glob)")
    standing.add_argument("--device", help="device name, id or kind (glob)")
    standing.add_argument("--branch", help="branch (glob)")
    standing.add_argument(
        "--fail-on",
        choices=("new", "open", "never"),
        default="new",
        help="exit 1 while an alert is new (the default), new or acknowledged (open), or never",
    )
    standing.set_defaults(action=_regressions)

    deciding = commands.add_parser(
        "triage", parents=[store_options], help="mark a regression: acknowledged, fixed, ..."
    )
    deciding.add_argument("alert", help="the alert's id, as aibench regressions shows it")
    deciding.add_argument("state", choices=TRIAGE_STATES)
    deciding.add_argument("--by", required=True, help="who decides (a name or handle)")
    deciding.set_defaults(action=_triage)


def _cache(args: argparse.Namespace) -> BuildCache:
    return BuildCache(args.builds, args.build, args.program, args.build_timeout, args.same_host)


def _commits(args: argparse.Namespace) -> int:

    tip = args.range or args.branch
    commits = select(args.repo, revisions=tip, since=args.since, last=args.last, step=args.step)
    if not commits:
        raise ValueError(f"no commits in {args.repo} match")
    base = _ab_base(args.repo, args.ab_base, commits[0])
    results = benchmark_commits(
        args.repo, commits, _cache(args), args.pytest_args, base, resume=not args.again
    )
    built = sum(result.built for result in results)
    measured = sum(result.call not in (None, "failed") for result in results)
    print(
        f"aibench commits: {len(commits)} commits, {built} built, {measured} measured, "
        f"{len(commits) - built} builds failed"
    )
    return 0 if measured else 1  # nothing measured: a CI job must not pass


def _ab_base(repo: Path, choice: str, first: Commit) -> Commit | None:
    """``--ab-base``: none, the first chosen commit, or a revision."""

    if choice == NONE:
        return None
    return first if choice == FIRST else resolve(repo, choice)


def _watch(args: argparse.Namespace) -> int:

    ab_base = None if args.ab_base == NONE else args.ab_base
    watcher = Watch(
        args.repo,
        args.branch,
        args.interval,
        args.step,
        _cache(args),
        args.pytest_args,
        args.state,
        args.status_file,
        ab_base,
    )
    done = watcher.run()
    print(f"aibench watch: stopped after {done} commits")
    return 0


def _bisect(args: argparse.Namespace) -> int:

    result = bisect(args.repo, args.good, args.bad, _cache(args), args.pytest_args, args.retries)
    print(result.summary())
    return 0 if result.first_bad else 1


def _changes(args: argparse.Namespace) -> int:

    filters = history.Filters(
        model=args.model, item=args.item, device=args.device, metric=args.metric
    )
    with history.connect(args.db, create=False) as db:
        found = history.series(db, filters)
    rows = []
    for (nodeid, device, metric, kind), points in found.items():
        steps = series_changes(points, args.alpha, args.min_effect / 100)
        for step in steps:
            before, after = points[step.index - 1], points[step.index]
            rows.append(
                (
                    nodeid,
                    device or "-",
                    f"{metric} {kind}",
                    _commit(before),
                    _commit(after),
                    _change(step),
                    f"{step.p_value:.1e}",
                    f"{step.index}+{len(points) - step.index}",
                )
            )
    runs = sum(len(points) for points in found.values())
    if not rows:
        print(f"aibench changes: no change point in {len(found)} series ({runs} runs)")
        return 0
    header = ("item", "device", "metric", "before", "after", "change", "p", "runs")
    for line in render_table(rows, header, set(range(len(header))) - {5, 6, 7}):
        print(line)
    print(f"aibench changes: {len(rows)} change points in {len(found)} series ({runs} runs)")
    return 0


def _regressions(args: argparse.Namespace) -> int:
    filters = history.Filters(model=args.model, device=args.device, branch=args.branch)
    with history.connect(args.db, create=False) as db:
        lab = read_lab(db, filters)
    if lab.alerts:
        header = ("alert", "triage", "model", "device", "metric", "change", "since", "bisect")
        rows = [_alert_row(alert) for alert in lab.alerts]
        for line in render_table(rows, header, set(range(len(header))) - {5}):
            print(line)
    states = Counter(lab.states.values())
    shown = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    print(
        f"aibench regressions: {len(lab.alerts)} standing ({len(lab.open_alerts())} open) in "
        f"{lab.series} series ({lab.runs} runs); models on devices: {shown or 'none'}"
    )
    failing = {"new": (NEW,), "open": OPEN, "never": ()}[args.fail_on]
    return 1 if any(alert.triage.state in failing for alert in lab.alerts) else 0


def _alert_row(alert: Alert) -> tuple[str, ...]:
    change = alert.change_words
    if alert.interval_words:
        change += f" ({alert.interval_words})"
    triage = alert.triage.state + (f" by {alert.triage.who}" if alert.triage.who else "")
    return (
        alert.id,
        triage,
        alert.model,
        alert.device,
        f"{alert.metric} {alert.kind}",
        change,
        _commit(alert.bad),
        alert.bisect_range,
    )


def _triage(args: argparse.Namespace) -> int:
    with history.connect(args.db, create=False, write=True) as db:
        decided = set_triage(db, args.alert, args.state, args.by)
    print(f"aibench triage: {args.alert} {decided.state} by {decided.who} at {decided.at}")
    return 0


def _commit(point: history.SeriesPoint) -> str:
    return f"{(point.commit or '-')[:10]} {(point.subject or '')[:30]}".strip()


def _change(step: Any) -> str:
    low, high = (100 * (bound - 1) for bound in (step.low, step.high))
    return f"{100 * step.change:+.1f}% ({low:+.1f}% to {high:+.1f}%)"


def split_pytest_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``aibench ... -- pytest arguments``: the two halves."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]
