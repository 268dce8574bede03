"""Continuous mode on a real git repository made here: a small C benchmark program, built
with ``cc`` at each commit, one commit of which makes it 40% slower (and one breaks the build).
``aibench commits`` benchmarks the range through pytest, ``aibench changes`` finds the slow
commit in the history store, ``aibench bisect`` names it, ``aibench watch`` follows a branch."""

from __future__ import annotations

import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_aibench.cli import main
from pytest_aibench.continuous import git
from pytest_aibench.continuous.builds import BuildCache
from pytest_aibench.verdicts.changes import change_points

pytestmark = pytest.mark.skipif(
    not (shutil.which("git") and shutil.which("cc")), reason="needs git and a C compiler"
)

PROGRAM = (Path(__file__).parents[1] / "specifications/programs/busy_loop.c").read_text()
BASE_WORK = 200_000  # a fraction of a millisecond a run here
SPEC = {
    "model": {"name": "bench", "format": "generic"},
    "tests": [
        {
            "identifier": "loop",
            "metric": "delay",
            "iter": 20,
            "warmup": 1,
            "commands": ["{program} {warmup} {iter}"],
        },
    ],
}
BUILD = ["--build", 'cc -O1 -DWORK="$(cat work)" -o bench bench.c', "--program", "bench"]


@dataclass
class Repo:
    path: Path
    commits: list[str]  # oldest first
    slow: str = ""  # the commit that made the program slower
    broken: str = ""  # a commit that does not build

    def commit(self, message: str, files: dict[str, str]) -> str:
        for name, text in files.items():
            (self.path / name).write_text(text)
        run_git(self.path, "add", "-A")
        run_git(self.path, "commit", "-q", "-m", message)
        self.commits.append(run_git(self.path, "rev-parse", "HEAD").strip())
        return self.commits[-1]


GIT_USER = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def run_git(repo: Path, *args: str) -> str:
    env = {**os.environ, **GIT_USER}
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


def make_repo(
    path: Path, count: int, slow_at: int | None, broken_at: int | None, factor: float = 1.4
) -> Repo:
    """``count`` commits; from commit ``slow_at`` (0-based) on, ``factor`` times the work;
    commit ``broken_at`` does not compile (the next one fixes it)."""
    path.mkdir()
    run_git(path, "init", "-q", "-b", "main")
    repo = Repo(path, [])
    for index in range(count):
        work = int(BASE_WORK * (factor if slow_at is not None and index >= slow_at else 1.0))
        source = PROGRAM + ("syntax error;\n" if index == broken_at else "")
        sha = repo.commit(
            f"change {index}",
            {"bench.c": source, "work": f"{work}\n", "NOTES": f"commit {index}\n"},
        )
        repo.slow = sha if index == slow_at else repo.slow
        repo.broken = sha if index == broken_at else repo.broken
    return repo


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the user runs aibench: the spec, and the .aibench folder pytest stores runs in."""
    (tmp_path / "bench.json").write_text(json.dumps(SPEC))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def stored_builds(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT json_extract(build, '$.id') FROM runs ORDER BY id")
        return [row[0] for row in rows]


# The slow commit is 40% slower: the A/B needs no 1.5% resolution, which on this machine takes
# identical builds 15-30 s to show (a fresh process's speed differs by about 6% from the next).
PYTEST = [
    "--",
    "--aibench-spec=bench.json",
    "--aibench-ab-min-effect=10%",
    "-q",
    "-p",
    "no:cacheprovider",
]


def test_the_readmes_example_repository_build_and_spec_work_together(tmp_path: Path) -> None:
    """What the README's continuous example pastes: the demo repository, its build by the
    example build.sh in the repository's work tree, and the example spec running the product."""
    examples = Path(__file__).parents[1] / "specifications"
    host = examples / "frameworks/generic/host"
    made = subprocess.run(
        ["sh", str(host / "demo_repo.sh"), str(tmp_path / "fw"), "3", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "3 commits" in made.stdout and "15% slower from commit 2" in made.stdout
    assert run_git(tmp_path / "fw", "log", "--format=%s").split("\n")[:3] == [
        "change 3",
        "change 2",
        "change 1",
    ]
    built = tmp_path / "fw" / "bench"
    subprocess.run(["sh", str(host / "build.sh"), "bench.c", "bench"], cwd=built.parent, check=True)
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--aibench-spec={examples}/models/generic/busy_loop",
    ]
    command += [f"--aibench-program={built}", "-p", "no:cacheprovider", "--aibench-history=off"]
    run = subprocess.run(
        [*command, "--aibench-json=run.json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout
    (item,) = json.loads((tmp_path / "run.json").read_text())["items"]
    (latency,) = [m for m in item["metrics"] if m["metric"] == "latency"]
    assert len(latency["values"]) == 30  # the spec's iter


def test_commits_changes_and_bisect_find_the_slow_commit(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(workdir / "fw", 17, slow_at=11, broken_at=6)
    first, last = repo.commits[0], repo.commits[-1]
    code = main(["commits", "--repo", "fw", "--range", f"{first}..{last}", *BUILD, *PYTEST])
    out = capsys.readouterr().out
    assert code == 0
    # The range is after the first commit: 16 commits, the broken one skipped, the rest stored
    # with their framework commit (the A/B base, the first of them, in each run's control).
    assert "16 commits, 15 built, 15 measured, 1 builds failed" in out
    assert f"{repo.broken[:10]} change 6: build failed, skipped: the build exited 1" in out
    stored = stored_builds(workdir / ".aibench/history.sqlite")
    assert stored == [sha for sha in repo.commits[1:] if sha != repo.broken]
    (broken,) = (workdir / ".aibench/builds").glob(f"{repo.broken}-*")  # commit and recipe
    assert (broken / "build.log").read_text().count("error")

    assert main(["changes"]) == 0
    out = capsys.readouterr().out
    assert "1 change points in 1 series" in out, out
    (row,) = [line for line in out.splitlines() if "bench.json" in line]
    assert f"{repo.slow[:10]} change 11" in row  # the first run after the change
    assert f"{repo.commits[10][:10]} change 10" in row  # and the last before it

    capsys.readouterr()
    code = main(["bisect", "--repo", "fw", "--good", first, "--bad", last, *BUILD, *PYTEST])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"first bad commit {repo.slow} change 11" in out
    assert "NET latency p50 regressed" in out  # the verdict that convicted it
    builds = int(out.split(" builds, ")[0].rsplit("(", 1)[1])
    assert builds <= math.ceil(math.log2(16)) + 2


def test_a_repository_with_no_change_has_no_change_point(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(workdir / "fw", 8, slow_at=None, broken_at=None)
    assert main(["commits", "--repo", "fw", "--last", "8", *BUILD, *PYTEST]) == 0
    assert "8 commits, 8 built, 8 measured" in capsys.readouterr().out
    assert main(["changes"]) == 0
    assert "no change point in 1 series (8 runs)" in capsys.readouterr().out


def test_bisect_refuses_a_range_that_does_not_regress(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(workdir / "fw", 3, slow_at=None, broken_at=None)
    code = main(
        ["bisect", "--repo", "fw", "--good", repo.commits[0], "--bad", "main", *BUILD, *PYTEST]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert f"no first bad commit: {repo.commits[-1][:10]} is unchanged against" in out


def test_watch_benchmarks_a_new_commit_and_stops_on_the_status_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo(workdir / "fw", 2, slow_at=None, broken_at=None)
    status, state = workdir / "status", workdir / "state.json"
    status.write_text("1")

    def add_a_commit_then_stop() -> None:
        wait_for(lambda: state.is_file())  # the tip has been benchmarked
        repo.commit("new", {"NOTES": "a new commit\n"})
        wait_for(lambda: json.loads(state.read_text())["last"] == repo.commits[-1])
        status.write_text("0")

    helper = threading.Thread(target=add_a_commit_then_stop)
    helper.start()
    code = main(
        [
            "watch",
            "--repo",
            "fw",
            "--branch",
            "main",
            "--interval",
            "0.2",
            "--state",
            str(state),
            "--status-file",
            str(status),
            *BUILD,
            *PYTEST,
        ]
    )
    helper.join()
    assert code == 0
    assert "stopped after 2 commits" in capsys.readouterr().out
    assert stored_builds(workdir / ".aibench/history.sqlite") == repo.commits[1:]


def wait_for(condition: object, seconds: float = 120.0) -> None:
    end = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "timed out"
        time.sleep(0.1)


def test_a_build_is_made_in_a_clean_work_tree_and_kept_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "fw", 2, slow_at=None, broken_at=None)
    (repo.path / "bench.c").write_text("the user's own edit\n")  # not committed
    commit = git.resolve(repo.path, "main")
    cache = BuildCache(tmp_path / "builds", BUILD[1], "bench")
    build = cache.get(repo.path, commit)
    assert build.ok and build.program is not None and build.program.is_file()
    assert (repo.path / "bench.c").read_text() == "the user's own edit\n"  # untouched
    assert len(run_git(repo.path, "worktree", "list").splitlines()) == 1  # removed again
    # reused, not rebuilt: a cache folder that exists is the build
    assert cache.get(repo.path, commit).folder == build.folder

    def interrupted(self: BuildCache, repo: Path, commit: git.Commit, out: Path) -> None:
        (out / "build.log").write_text("half a build")
        raise KeyboardInterrupt

    monkeypatch.setattr(BuildCache, "_build", interrupted)
    other = BuildCache(tmp_path / "builds2", "true", "bench")
    with pytest.raises(KeyboardInterrupt):
        other.get(repo.path, commit)
    assert list((tmp_path / "builds2").iterdir()) == []  # no half build left behind


def test_every_step_keeps_the_newest_commit() -> None:
    commits = [git.Commit(str(i), "", "") for i in range(10)]
    assert [c.id for c in git.every(commits, 3)] == ["0", "3", "6", "9"]
    assert [c.id for c in git.every(commits, 4)] == ["1", "5", "9"]
    with pytest.raises(ValueError, match="--step must be 1 or more"):
        git.every(commits, 0)


def test_change_points_find_steps_not_noise_or_outliers() -> None:
    import numpy as np

    noisy = [1000 * math.exp(x) for x in np.random.default_rng(1).normal(0, 0.03, 24)]
    assert change_points(noisy) == []
    stepped = [value * (1.3 if index >= 15 else 1.0) for index, value in enumerate(noisy)]
    (step,) = change_points(stepped)
    assert step.index == 15 and step.low < 1.3 < step.high and step.p_value < 0.001
    outlier = [value * (2.0 if index == 8 else 1.0) for index, value in enumerate(noisy)]
    assert change_points(outlier) == []
    assert change_points(stepped, min_effect=0.5) == []  # smaller than asked for
    flat_then_flat = [100.0] * 6 + [120.0] * 6
    assert [s.index for s in change_points(flat_then_flat)] == [6]


def test_one_wild_run_does_not_hide_a_clean_step() -> None:
    # A/B ratios by commit: +10% from the sixth on, and one run whose own verdict spanned
    # +9% to +200% reading +58%; Welch's t-test on the raw logs found no change here
    ratios = [1.000, 1.001, 0.999, 1.000, 0.999, 1.103, 1.100, 1.096, 1.104, 1.581, 1.095]
    (step,) = change_points(ratios)
    assert step.index == 5 and step.low < 1.10 < step.high and step.p_value < 0.001
    assert change_points([1.000, 1.001, 0.999, 1.000, 0.999, 1.002, 0.998, 1.581, 1.001]) == []


def test_runs_unsure_of_themselves_weigh_less() -> None:
    # a +5% step; three runs after it read the old level, each with an own error of 20% (an
    # A/B that could not decide): weighed alike they hide the step
    before = [1.00, 1.01, 0.99, 1.00, 1.01, 0.99, 1.00, 1.005]
    after = [1.05, 1.04, 0.985, 1.06, 0.99, 1.05, 1.04, 0.99, 1.06, 1.05]
    errors = [0.004] * len(before) + [0.2 if value < 1 else 0.004 for value in after]
    assert change_points(before + after) == []
    (step,) = change_points(before + after, errors=errors)
    assert step.index == len(before) and step.low < 1.05 < step.high


def test_a_runs_own_error_comes_from_its_interval_or_its_samples() -> None:
    from pytest_aibench.store.history import SeriesPoint
    from pytest_aibench.verdicts.regressions import own_error

    ab = SeriesPoint("r", "t", None, None, None, 1.1, low=1.09, high=3.0)
    assert own_error(ab) == pytest.approx(math.log(3.0 / 1.09) / 4)
    # 100 samples from p10 2.0 to p90 2.2: sigma 3.7%, the median's error 0.47%
    stored = SeriesPoint("r", "t", None, None, None, 2.1, p10=2.0, p90=2.2, samples=100)
    assert own_error(stored) == pytest.approx(0.00465, rel=0.01)
    assert own_error(SeriesPoint("r", "t", None, None, None, 2.1)) is None


def test_trend_lines_mark_their_change_points() -> None:
    from pytest_aibench.reporting.html_report import _mark_changes

    class Axes:
        def __init__(self) -> None:
            self.lines: list[float] = []
            self.labels: list[str] = []

        def axvline(self, x: float, **style: object) -> None:
            self.lines.append(x)

        def annotate(self, text: str, *args: object, **style: object) -> None:
            self.labels.append(text)

    axes = Axes()
    trend = [100.0, 101.0, 99.0, 100.0, 100.5, 130.0, 131.0, 129.0, 130.5, 130.0]
    _mark_changes(axes, trend)
    (step,) = change_points(trend)
    assert axes.lines == [4.5]  # between the last run before and the first after
    assert axes.labels == [f"{100 * step.change:+.1f}%"] and 0.29 < step.change < 0.31
    flat = Axes()
    _mark_changes(flat, [100.0, 101.0, 99.0, 100.0, 100.5, 100.2, 99.8, 100.1])
    assert flat.lines == []


def test_a_build_record_that_cannot_be_read_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makefile(".json", bad='{"id": 1}')
    result = pytester.runpytest("--aibench-build-info=missing.json")
    result.stderr.fnmatch_lines(["*--aibench-build-info*cannot read missing.json*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result = pytester.runpytest("--aibench-build-info=bad.json")
    result.stderr.fnmatch_lines(["*bad.json is not a build record: it needs repo, id, time*"])


def test_watch_stops_cleanly_on_sigterm(workdir: Path) -> None:
    import signal
    import sys

    make_repo(workdir / "fw", 1, slow_at=None, broken_at=None)
    state = workdir / "state.json"
    watcher = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest_aibench",
            "watch",
            "--repo",
            "fw",
            "--interval",
            "600",
            "--state",
            str(state),
            *BUILD,
            *PYTEST,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(state.is_file)  # the tip is benchmarked; now it sleeps 600 s
        watcher.send_signal(signal.SIGTERM)
        out, _ = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    assert watcher.returncode == 0
    assert "stopped after 1 commits" in out


def test_build_and_control_placeholders_stand_for_the_products(tmp_path: Path) -> None:
    from pytest_aibench.continuous.bench import pytest_command
    from pytest_aibench.continuous.builds import Build
    from pytest_aibench.errors import AibenchError

    def build(name: str) -> Build:
        commit = git.Commit(name * 40, "2026-12-01T00:00:00+00:00", name)
        product = tmp_path / name / "product/tree"
        return Build(commit, tmp_path / name, True, "", product, "/repo")

    new, base = build("b"), build("a")
    args = ["--aibench-spec", "{build}/specs", "--aibench-ab-control-root={control}"]
    command = pytest_command(args, new, base)
    assert command[-4:] == [
        "--aibench-spec",
        f"{new.program}/specs",
        f"--aibench-ab-control-root={base.program}",
        f"--aibench-build-info={new.info_file}",
    ]  # and no --aibench-program or --aibench-ab-control of their own
    plain = pytest_command(["-q"], new, base)
    assert plain[-2:] == [
        f"--aibench-program={new.program}",
        f"--aibench-ab-control={base.program}",
    ]
    with pytest.raises(AibenchError, match="needs an A/B base"):
        pytest_command(args, new, None)


def test_same_host_builds_wait_for_the_hosts_lease(tmp_path: Path) -> None:
    from pytest_aibench.devices.host import host_info
    from pytest_aibench.devices.lease import lease

    repo = make_repo(tmp_path / "fw", 1, slow_at=None, broken_at=None)
    cache = BuildCache(tmp_path / "builds", BUILD[1], "bench", hold_host=True)
    built_at: list[float] = []

    def build() -> None:
        assert cache.get(repo.path, git.resolve(repo.path, "main")).ok
        built_at.append(time.monotonic())

    with lease(host_info()):  # a benchmark on this host
        builder = threading.Thread(target=build)
        builder.start()
        time.sleep(1.0)  # a build takes a fraction of this
        released_at = time.monotonic()
    builder.join(timeout=60)
    assert built_at and built_at[0] > released_at  # it waited for the lease


def test_the_weeks_base_is_the_first_commit_since_monday(tmp_path: Path) -> None:
    from pytest_aibench.continuous.watch import WEEK, Watch

    path = tmp_path / "fw"
    path.mkdir()
    run_git(path, "init", "-q", "-b", "main")
    shas = []
    for day in ("2026-11-27", "2026-11-30", "2026-12-02"):  # Friday, Monday, Wednesday
        (path / "f").write_text(day)
        run_git(path, "add", "-A")
        dated = {
            "GIT_COMMITTER_DATE": f"{day}T12:00:00+00:00",
            "GIT_AUTHOR_DATE": f"{day}T12:00:00",
        }
        subprocess.run(
            ["git", "-C", str(path), "commit", "-q", "-m", day],
            check=True,
            env={**os.environ, **GIT_USER, **dated},
        )
        shas.append(run_git(path, "rev-parse", "HEAD").strip())
    watcher = Watch(
        path,
        "main",
        1,
        1,
        BuildCache(tmp_path / "b", "true", "f"),
        [],
        tmp_path / "state",
        None,
        WEEK,
    )
    assert watcher._base(git.resolve(path, shas[2])) == git.resolve(path, shas[1])


# -- what the repository holds steers nothing -----------------------------------------------------


def test_a_subject_with_separators_and_a_commit_id_is_one_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fw", 2, slow_at=None, broken_at=None)
    forged = f"fix\x1e{repo.commits[0]}\x1f0\x1fforged\x1e\nsecond line"
    repo.commit(forged, {"NOTES": "three\n"})
    chosen = git.select(repo.path, last=3)
    assert [c.id for c in chosen] == repo.commits
    assert chosen[-1].subject == forged.split("\n")[0] + " second line"


def test_a_range_that_looks_like_an_option_reaches_git_as_a_revision(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fw", 1, slow_at=None, broken_at=None)
    written = tmp_path / "written"
    with pytest.raises(git.RepositoryError, match="bad revision '--output="):
        git.select(repo.path, revisions=f"--output={written}")
    assert not written.exists()


def test_the_repositorys_hooks_do_not_run_in_a_work_tree(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fw", 1, slow_at=None, broken_at=None)
    ran = tmp_path / "hook-ran"
    hook = repo.path / ".git/hooks/post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {ran}\n")
    hook.chmod(0o755)
    with git.worktree(repo.path, git.resolve(repo.path, "main")) as tree:
        assert (tree / "bench.c").is_file()
    assert not ran.exists()


def test_a_committed_link_out_of_the_work_tree_is_no_product(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the build cache\n")
    repo = make_repo(tmp_path / "fw", 1, slow_at=None, broken_at=None)
    (repo.path / "bench").symlink_to(secret)
    repo.commit("a program that is a link", {})
    build = BuildCache(tmp_path / "builds", "true", "bench").get(
        repo.path, git.resolve(repo.path, "main")
    )
    assert not build.ok and "leads out of the work tree" in build.reason
    assert not [
        p
        for p in (tmp_path / "builds").rglob("*")
        if p.is_file() and p.read_text() == secret.read_text()
    ]


def test_a_failed_build_is_built_again_once_its_command_changes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "fw", 1, slow_at=None, broken_at=None)
    commit = git.resolve(repo.path, "main")
    failed = BuildCache(tmp_path / "builds", "exit 3", "bench").get(repo.path, commit)
    assert not failed.ok and "exited 3" in failed.reason
    assert not BuildCache(tmp_path / "builds", "exit 3", "bench").get(repo.path, commit).ok
    fixed = BuildCache(tmp_path / "builds", BUILD[1], "bench").get(repo.path, commit)
    assert fixed.ok and fixed.folder != failed.folder


def test_commits_resumes_without_measuring_again_and_fails_when_nothing_was_measured(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(workdir / "fw", 3, slow_at=None, broken_at=None)
    command = ["commits", "--repo", "fw", "--last", "2", "--ab-base", "none", *BUILD, *PYTEST]
    assert main(command) == 0
    assert capsys.readouterr().out.count("built; benchmarking") == 2
    assert main(command) == 0  # resumed: both were measured
    out = capsys.readouterr().out
    assert "built; benchmarking" not in out
    assert out.count("measured, measured by an earlier run (--again to repeat)") == 2
    assert main([*command[: -len(PYTEST)], "--again", *PYTEST]) == 0
    assert capsys.readouterr().out.count("built; benchmarking") == 2
    broken = [*command[:5], "--ab-base", "none", "--build", "exit 1", "--program", "x"]
    assert main([*broken, *PYTEST]) == 1
    assert "0 measured, 2 builds failed" in capsys.readouterr().out
    assert len(stored_builds(workdir / ".aibench/history.sqlite")) == 4


def test_bisect_of_one_commit_is_a_clear_error(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_repo(workdir / "fw", 2, slow_at=None, broken_at=None)
    code = main(["bisect", "--repo", "fw", "--good", "main", "--bad", "main", *BUILD, *PYTEST])
    assert code == 1
    assert "main and main are one commit: nothing to bisect" in capsys.readouterr().err


def test_an_undecided_bisect_step_is_measured_again_with_a_growing_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from pytest_aibench.continuous import bisect as bisecting
    from pytest_aibench.continuous.bench import Outcome
    from pytest_aibench.continuous.builds import Build
    from pytest_aibench.continuous.git import Commit

    commits = [Commit(str(index) * 12, "2026-12-01T00:00:00Z", f"c{index}") for index in range(9)]
    monkeypatch.setattr(bisecting, "resolve", lambda repo, rev: commits[int(rev)])
    monkeypatch.setattr(bisecting, "between", lambda repo, good, bad: commits[1:])
    asked: list[list[str]] = []

    def run_pytest(args: list[str], build: Build, control: Build) -> Outcome:
        # commit 6 is the first slow one; commit 4 stays undecided until twice the budget
        asked.append(args)
        index = int(build.commit.id[0])
        status = "regressed" if index >= 6 else "unchanged"
        if index == 4 and not any(arg == "--aibench-ab-max-time=120" for arg in args):
            status = "inconclusive"
        item: Any = {"nodeid": "x", "verdicts": [{"status": status, "key": "NET latency"}]}
        return Outcome(1 if status == "regressed" else 0, [item])

    class Builds:
        def get(self, repo: Path, commit: Commit) -> Build:
            return Build(commit, tmp_path, True, "", tmp_path / "bench", str(repo))

    monkeypatch.setattr(bisecting, "run_pytest", run_pytest)
    monkeypatch.setattr(bisecting, "_regressions", lambda outcome: ["NET latency regressed"])
    result = bisecting.bisect(tmp_path, "0", "8", Builds(), [], say=lambda line: None)  # type: ignore[arg-type]
    assert result.first_bad == commits[6]
    assert any("--aibench-ab-max-time=60" in args for args in asked)
    assert any("--aibench-ab-max-time=120" in args for args in asked)
    summary = result.summary()
    assert "; 1 of 4 steps measured again with more time" in summary, summary
